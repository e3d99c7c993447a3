"""CRLs down a two-node tree in one process (real gRPC over mutual TLS, real files): a child gets its
parent's list when it registers, catches up on a heartbeat answer after a push it missed, and a
connection that was up before its certificate was revoked is refused on its very next call."""
from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from node.transport.grpc_peers import TlsMaterial, open_channel
from node.grpc_errors import reason_of
from node.harness import nodes
from node.harness.inproc import start_tree
from node.harness.waiting import EventWaiter
from node.identity import revocation

P, D = "000.00.00.H53", "000.00.35.H53"
TIMEOUT = 20.0


def took(client, number: int, check=lambda: False) -> None:
    """Until the node reports it took CRL `number` (or `check` shows it did already)."""
    with EventWaiter(client, inbox=False, sent=False, registry=True) as ev:
        if not check():
            ev.wait(lambda evs: any(e.type == "crl" and e.crl_number == number for e in evs), TIMEOUT)


@pytest.fixture
def tree(tmp_path):
    ca = nodes.make_ca(tmp_path)
    crl = revocation.make_crl(ca)  # number 1, the root's tls.crl
    t = start_tree(tmp_path, {P: None, D: P}, per_node={P: {"tls": {"crl": str(crl)}}})
    try:
        yield t, ca
    finally:
        t.stop()


def test_a_child_gets_the_list_on_registering_and_catches_up_after_a_missed_push(tree):
    t, ca = tree
    p, d = t.node(P), t.node(D)
    took(t.client(D), 1, lambda: d.crl.number == 1)  # in the answer to its registration
    p.directory.push_crl = lambda der: None  # the push does not reach D (down, unreachable, ...)
    with EventWaiter(t.client(D), inbox=False, sent=False, registry=True) as ev:
        assert p.crl.offer(revocation.make_crl(ca).read_bytes(), "tls.crl")
        # number 2 by number: D's event for number 1 may come only now (a holder puts a list in use before it
        # says so, and `took` may have seen it in use), and under load it did
        seen = ev.wait(lambda evs: any(e.type == "crl" and e.crl_number == 2 for e in evs), TIMEOUT)
    [event] = [e for e in seen if e.type == "crl" and e.crl_number == 2]
    assert event.peer == P  # from the answer to its next heartbeat: the push was cut
    assert (d.data_dir.path / "crl.der").read_bytes() == p.crl.current.der


def test_a_connection_up_before_the_revocation_is_refused_on_its_next_call(tree, tmp_path):
    t, ca = tree
    keys = tmp_path / D / "keys"
    tls = TlsMaterial((keys / "node.key").read_bytes(), (keys / "node.pem").read_bytes(), (keys / "ca.pem").read_bytes())
    with open_channel(tls, P, t[P][1].listen, 1 << 20) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT).status == \
            health_pb2.HealthCheckResponse.SERVING
        revocation.revoke(ca, keys / "node.pem", "key_compromise")
        assert t.node(P).crl.offer(revocation.make_crl(ca).read_bytes(), "tls.crl")
        with pytest.raises(grpc.RpcError) as e:  # the same connection, the next call
            health.Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT)
        assert (e.value.code(), reason_of(e.value)) == (grpc.StatusCode.PERMISSION_DENIED, "CERT_REVOKED")
