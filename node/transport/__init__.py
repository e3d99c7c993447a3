"""How a node reaches its peers: one interface (interface.py), over gRPC and mutual TLS
(grpc_peers.py, with peer_check.py) or to nodes in the same process (in_process.py).
Nothing outside this package opens a channel or builds a stub to a peer
(tests/transport/test_peer_calls_only_in_transport.py)."""
