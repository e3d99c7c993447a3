"""Codes outside the QCVN 102 form: registered under an explicitly configured parent, and
reachable from anywhere once ancestors learn them from heartbeats."""
from __future__ import annotations

import grpc
import pytest

from node.grpc_errors import reason_of
from node.harness.inproc import start_tree
from node.harness.waiting import EventWaiter
from node.pb import envelope_pb2 as pb

P, D1, D2, C = "000.00.00.H53", "000.00.35.H53", "000.00.38.H53", "000.11.38.H53"
ODD = "vxp.saas.03"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    t = start_tree(tmp_path_factory.mktemp("odd"), {P: None, D1: P, D2: P, C: D2, ODD: D1},
                   per_node={D1: {"parents_of": {ODD: D1}}})
    # one heartbeat from D1 now, rather than waiting for the next tick: P learns where ODD lives
    d1 = t.node(D1).directory
    d1._last_beat_ms = 0
    d1.keepalive()
    yield t
    t.stop()


def test_parent_learns_the_odd_code_from_its_childs_heartbeat(tree):
    assert tree.node(P).directory.hierarchy.parent(ODD) == D1
    assert tree.node(P).directory.hierarchy.is_under(ODD, P)


def test_an_odd_code_resolves_and_receives_from_another_branch(tree):
    found = tree.client(C).lookup(ODD)
    assert (found.code, found.parent) == (ODD, D1)
    with EventWaiter(tree.client(ODD), sent=False) as ev:
        [sent] = tree.client(C).send(pb.Document(subject="tới mã ngoài chuẩn"), [ODD]).envelopes
        ev.wait(lambda evs: sent.message_id in {e.message_id for e in evs}, timeout=30)
    path = [h.code for h in tree.client(ODD).fetch(sent.message_id).path]
    assert path == [C, D2, P, D1, ODD]


def test_a_node_without_the_yaml_entry_refuses_the_odd_code(tree):
    """D2's YAML does not list ODD, so ODD cannot register under D2 (or anywhere but D1)."""
    from node.transport.grpc_peers import TlsMaterial, open_channel
    from node.pb import registry_pb2_grpc as rgrpc
    from node.registry import records
    handle = tree[ODD][1]
    keys = handle.dir / "keys"
    channel = open_channel(TlsMaterial((keys / "node.key").read_bytes(), (keys / "node.pem").read_bytes(),
                                       (keys / "ca.pem").read_bytes()), D2, tree[D2][1].listen, 1 << 20)
    record = records.make(tree.node(ODD).signer, name="x", level=3, parent=D2, endpoint="127.0.0.1:1",
                          now_ms=tree.node(ODD).clock.now_ms())
    with pytest.raises(grpc.RpcError) as e:
        rgrpc.RegistryStub(channel).Register(record, timeout=10)
    channel.close()
    assert reason_of(e.value) == "WRONG_PARENT"
