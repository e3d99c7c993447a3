"""Every call to a peer goes through node/transport/: a module elsewhere that builds a peer stub or opens a
channel to a peer fails this test.

Why: the transport is where a peer is pinned to its code, checked against the CRL, bounded by a deadline
and answered as one error (TransportError); and where the in-process transport stands in for gRPC. A stub
made elsewhere skips all of it, and is a call the in-process node cannot make.
"""
from __future__ import annotations

import ast
from pathlib import Path

NODE = Path(__file__).resolve().parents[2] / "node"
TRANSPORT, GENERATED = NODE / "transport", NODE / "pb"
PEER = {"ExchangeStub", "RegistryStub", "secure_channel", "ssl_channel_credentials", "open_channel"}
# channels and stubs that are fine towards the node's own local API (plain text, loopback, token), and only there
LOCAL = {"insecure_channel", "HealthStub", "channel_ready_future", "unary_unary"}
ALLOWED = {
    "node/client.py": LOCAL,                  # the local API's client (Mailbox, Admin, its health)
    "node/doctor.py": {"HealthStub"},         # the running node's health, on that client's channel
    "node/harness/nodes.py": LOCAL,           # waiting for test nodes' local APIs
    "node/harness/hosts.py": LOCAL,           # waiting on a test host's local API (its health, per agency)
    "node/harness/bare_hop.py": PEER | LOCAL,  # the bare-hop benchmark: gRPC and a signature, no node at all
}


def _name(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def offences(path: Path, root: Path = NODE.parent) -> list[str]:
    where = path.relative_to(root).as_posix()
    allowed = ALLOWED.get(where, set())
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return [f"{where}:{n.lineno}: {_name(n)}(...)" for n in ast.walk(tree)
            if isinstance(n, ast.Call) and _name(n) in (PEER | LOCAL) - allowed]


def test_no_module_outside_the_transport_calls_a_peer_itself():
    found = [o for p in sorted(NODE.rglob("*.py")) if not p.is_relative_to(TRANSPORT) and not p.is_relative_to(GENERATED)
             for o in offences(p)]
    assert found == [], "peer stubs or channels outside node/transport/:\n" + "\n".join(found)


def test_the_check_catches_each_kind_of_peer_call(tmp_path):
    sample = tmp_path / "node" / "registry" / "sample.py"
    sample.parent.mkdir(parents=True)
    sample.write_text("stub = rgrpc.RegistryStub(channel)\n"
                      "ch = grpc.secure_channel(address, creds)\n"
                      "ch = open_channel(tls, code, address, 1)\n"
                      "health_pb2_grpc.HealthStub(grpc.insecure_channel(address)).Check(req)\n"
                      "transport.lookup(peer, request)\n")
    found = offences(sample, tmp_path)
    assert sorted(int(f.split(":")[1]) for f in found) == [1, 2, 3, 4, 4], found


def test_the_local_api_client_may_open_its_own_channels_and_no_peer_ones(tmp_path):
    sample = tmp_path / "node" / "client.py"
    sample.parent.mkdir(parents=True)
    sample.write_text("ch = grpc.insecure_channel(api)\nstub = xgrpc.ExchangeStub(ch)\n")
    assert [f.split(":")[1] for f in offences(sample, tmp_path)] == ["2"]
