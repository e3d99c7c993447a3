"""What a TLS handshake and gRPC's limits refuse, the in-process transport refuses the same way: a caller
whose certificate another CA issued, an address that holds another agency than the one meant (the SAN pin),
an address where nothing answers, and a request over the message limit; each the same status as over gRPC."""
from __future__ import annotations

import grpc
import pytest

from node.harness import nodes
from node.harness.inproc import start_tree
from node.identity import certs
from node.pb import registry_pb2 as rpb
from node.transport.grpc_peers import GrpcTransport, TlsMaterial, grpc_options
from node.transport.in_process import InProcessTransport, LocalNetwork
from node.transport.interface import Peer, TransportError

P, C1 = "000.00.00.H53", "000.21.35.H53"


def _statuses(root, network: LocalNetwork | None) -> dict:
    tree = start_tree(root, {P: None, C1: P}, extra={"parents_of": {C1: P}}, network=network)
    try:
        province = tree[P][1].listen
        node = tree.node(C1)
        certs.init_node(root / "foreign", C1, "not from our CA", nodes.make_ca(root / "other"))
        foreign_tls = TlsMaterial((root / "foreign" / "node.key").read_bytes(),
                                  (root / "foreign" / "node.pem").read_bytes(), node.tls.anchors_pem)
        max_size = node.settings.messages.max_size
        foreign = (GrpcTransport(foreign_tls, max_size) if network is None else
                   InProcessTransport(network, foreign_tls, node.trust, max_size, C1))
        ask = rpb.LookupRequest(code=P)
        cases = {
            "foreign caller": lambda: foreign.lookup(Peer(P, province), ask),
            "another agency at the address": lambda: node.transport.lookup(Peer(C1, province), ask),
            "nothing there": lambda: node.transport.lookup(Peer(P, f"127.0.0.1:{nodes.free_port()}"), ask),
            "over the limit": lambda: node.transport.lookup(
                Peer(P, province), rpb.LookupRequest(code="x" * (dict(grpc_options(max_size))[
                    "grpc.max_send_message_length"] + 1))),
        }
        out = {}
        for what, call in cases.items():
            with pytest.raises(TransportError) as e:
                call()
            out[what] = e.value.status
        assert node.transport.lookup(Peer(P, province), ask).entry.record.record  # and the honest call passes
        foreign.close()
        return out
    finally:
        tree.stop()


def test_handshake_and_limit_refusals_are_the_same_in_process_as_over_grpc(tmp_path):
    local = _statuses(tmp_path / "inproc", LocalNetwork())
    assert local == {"foreign caller": grpc.StatusCode.UNAVAILABLE,
                     "another agency at the address": grpc.StatusCode.UNAVAILABLE,
                     "nothing there": grpc.StatusCode.UNAVAILABLE,
                     "over the limit": grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert _statuses(tmp_path / "grpc", None) == local


def test_a_stopping_server_finishes_the_calls_in_progress_and_refuses_new_ones_unavailable():
    """A co-hosted agency stopping (host shutdown, SIGHUP removal) closed its mailbox under calls still in
    progress from its neighbours: they ended INTERNAL ('Cannot operate on a closed database')."""
    import threading

    from node.transport.in_process import LocalRpcError, LocalServer

    entered, release = threading.Event(), threading.Event()

    def lookup(request, context):
        if not entered.is_set():  # the first call waits to be released; any other answers at once
            entered.set()
            release.wait()
        return rpb.LookupResponse()

    server = LocalServer([], lambda: TlsMaterial(b"", b"", b"", insecure=True), None, 1 << 20)
    server.add_registered_method_handlers("t.S", {"Lookup": grpc.unary_unary_rpc_method_handler(
        lookup, request_deserializer=rpb.LookupRequest.FromString,
        response_serializer=rpb.LookupResponse.SerializeToString)})
    answers = []
    call = threading.Thread(target=lambda: answers.append(
        server.handle("/t.S/Lookup", rpb.LookupRequest(code=P).SerializeToString(), None, C1, 5)))
    call.start()
    entered.wait()
    closing = threading.Thread(target=server.close, args=(60,))
    closing.start()
    server.stopping.wait()

    with pytest.raises(LocalRpcError) as refused:
        server.handle("/t.S/Lookup", rpb.LookupRequest(code=P).SerializeToString(), None, C1, 5)
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE and "stopping" in refused.value.details()
    assert closing.is_alive()  # still waiting for the call in progress
    release.set()
    call.join()
    closing.join()
    assert answers == [b""]
