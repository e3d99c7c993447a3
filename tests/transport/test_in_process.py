"""The in-process transport against gRPC: the same small tree (root, a province, two of its communes, placed
under it as since July 2025) registers, beats, looks up, lists, delivers a document and its automatic 01
back, passes a CRL down and hands audit checkpoints up, once with every peer call over gRPC and mutual TLS,
once with every one in process (no peer port bound at all); the receipts, paths and audit rows come out the
same, and so do the peer's refusals."""
from __future__ import annotations

import grpc
import pytest

from node import receipts
from node.harness import nodes
from node.harness.inproc import start_tree
from node.harness.waiting import EventWaiter, wait_for_statuses
from node.pb import envelope_pb2 as pb
from node.pb import registry_pb2 as rpb
from node.registry import records
from node.clock import SYSTEM
from node.identity import revocation
from node.store import audit as audit_store
from node.transport.grpc_peers import GrpcTransport
from node.transport.in_process import InProcessTransport, LocalNetwork
from node.transport.interface import Peer, TransportError

VN, P, C1, C2 = "VN", "000.00.00.H53", "000.21.35.H53", "000.22.35.H53"
PARENTS = {VN: None, P: VN, C1: P, C2: P}
COMMUNES_UNDER_THE_PROVINCE = {"parents_of": {C1: P, C2: P}}
TIMEOUT = 30.0
CUSTODY = {audit_store.SENT, audit_store.DELIVERED, audit_store.RECEIVED}  # not retries: they say when, not what


def _tree(root, network):
    ca = nodes.make_ca(root)
    crl = revocation.make_crl(ca)  # number 1: the root's tls.crl
    tree = start_tree(root, PARENTS, extra=COMMUNES_UNDER_THE_PROVINCE, network=network,
                      per_node={VN: {"tls": {"crl": str(crl)}}})
    return tree, ca


def _audit(tree, code: str, names: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    """The node's custody rows, per message in the order written: message -> [(event, peer)], message ids
    named in the order they first appear (the rows of two messages may interleave either way: the 01 can
    reach the province before it commits the document's delivery)."""
    ro = audit_store.ReadOnly(tree[code][0].data_dir.mailbox)
    try:
        rows = [r for r in ro.rows() if r.event in CUSTODY]
    finally:
        ro.close()
    out: dict[str, list[tuple[str, str]]] = {}
    for r in rows:
        out.setdefault(names.setdefault(r.message_id, f"m{len(names)}"), []).append((r.event, r.peer))
    return out


def scenario(root, network: LocalNetwork | None) -> dict:
    """Everything a small tree does with its peers; what came of it, with nothing that differs by run."""
    tree, ca = _tree(root, network)
    try:
        expected = InProcessTransport if network is not None else GrpcTransport
        assert all(isinstance(tree.node(c).transport, expected) for c in PARENTS)
        if network is not None:
            assert all(tree.node(c).peer_server is None and tree.node(c).peer_port == 0 for c in PARENTS)
        c1, c2 = tree.client(C1), tree.client(C2)
        out: dict = {}
        # registration happened (start_tree waits for it); heartbeats: both communes beat to the province
        with EventWaiter(tree.client(P), inbox=False, sent=False, registry=True) as ev:
            ev.wait(lambda evs: {e.peer for e in evs if e.type == "heartbeat"} >= {C1, C2}, TIMEOUT)
        # lookup climbs to the province and comes back with C2's own record; the listing walks the tree
        found = c1.lookup(C2)
        out["lookup"] = (found.code, found.parent, found.endpoint == tree[C2][1].listen)
        out["directory"] = sorted(a.code for a in c1.directory())
        # a document C1 -> C2 through the province, and its automatic 01 back
        response = c1.send(pb.Document(subject="Công văn liên thông"), [C2])
        [sent] = response.envelopes
        track = wait_for_statuses(c1, response.doc_id, {C2: ["01"]}, timeout=TIMEOUT)
        out["statuses"] = [[s.status_code for s in r.statuses] for r in track.recipients]
        got = c2.fetch(sent.message_id)
        out["path"] = [h.code for h in got.path]
        out["verified"] = got.signature_verified
        verifier = receipts.Verifier(tree.node(C1).trust)
        out["receipts"] = {}
        for who, client in ((C1, c1), (C2, c2)):  # each signed by the province, for what was handed to it
            out["receipts"][who] = sorted((e.state, verifier.verify(
                e.receipt, expect_receiver=P, message_id=e.message_id, envelope_digest=e.receipt.envelope_sha256,
            ).receiver) for e in client.sent_all())
        # a newer CRL at the root travels down: the province pushes it to both communes
        waiters = {c: EventWaiter(tree.client(c), inbox=False, sent=False, registry=True) for c in (P, C1, C2)}
        try:
            assert tree.node(VN).crl.offer(revocation.make_crl(ca).read_bytes(), "tls.crl")
            for c, w in waiters.items():
                w.wait(lambda evs: any(e.type == "crl" and e.crl_number == 2 for e in evs), TIMEOUT)
        finally:
            for w in waiters.values():
                w.close()
        out["crl"] = {c: tree.node(c).crl.number for c in PARENTS}
        newer = revocation.make_crl(ca).read_bytes()  # number 3, pushed by the province itself
        [(code, answer)] = tree.node(P).transport.push_crl([Peer(C1, tree[C1][1].listen)], newer).items()
        out["push"] = (code, answer.crl_number)
        # audit checkpoints: C1 signs its head and hands it up; its parent answers with the copy it keeps
        seq = tree.node(C1).checkpointer.tick()
        kept = tree.node(C1).transport.latest_checkpoint(Peer(P, tree[P][1].listen), rpb.CheckpointRequest(code=C1))
        out["checkpoint"] = (seq > 0, rpb.CheckpointBody.FromString(kept.latest.body).seq == seq)
        names: dict[str, str] = {}
        out["audit"] = {c: _audit(tree, c, names) for c in (C1, P, C2)}  # C1 first: its document is m0
        out["refusals"] = refusals(tree, got.envelope)
        out["revoked"] = revoked(tree, ca)  # last: C2 is revoked
        return out
    finally:
        tree.stop()


def refusals(tree, relayed: bytes) -> dict:
    """What the province answers C1's node for a forged envelope, garbage, and a record that is not C1's."""
    transport, province = tree.node(C1).transport, Peer(P, tree[P][1].listen)
    forged = pb.Envelope.FromString(relayed)
    forged.ClearField("trace")
    forged.signature = bytes([forged.signature[0] ^ 1]) + forged.signature[1:]
    outcomes = transport.deliver(province, [forged.SerializeToString(), b"\xff not protobuf"])
    out = {"deliver": [o.rejection.reason for o in outcomes]}
    other = records.make(tree.node(C2).signer, name="x", level=3, parent=P, endpoint="127.0.0.1:1",
                         now_ms=SYSTEM.now_ms())
    with pytest.raises(TransportError) as e:
        transport.register(province, other)
    out["register"] = (e.value.status, e.value.refused.reason.wire, e.value.detail)
    with pytest.raises(TransportError) as e:
        transport.heartbeat(province, rpb.HeartbeatRequest(code=C2, time_ms=1))
    out["heartbeat"] = (e.value.status, e.value.refused.reason.wire, e.value.detail)
    return out


def revoked(tree, ca) -> dict:
    """C2's certificate revoked, and the list held by the province and C1: the province refuses C2's very next
    call (node.peer_gate, in front of the servicers either way), and C1 hands C2 nothing."""
    revocation.revoke(ca, tree[C2][1].dir / "keys" / "node.pem", "key_compromise")
    der = revocation.make_crl(ca).read_bytes()
    assert tree.node(P).crl.offer(der, "tls.crl")
    tree.node(C1).crl.offer(der, "tls.crl")  # False when the province's push got there first: the same list
    assert tree.node(C1).crl.number == tree.node(P).crl.number
    with pytest.raises(TransportError) as e:
        tree.node(C2).transport.heartbeat(Peer(P, tree[P][1].listen), rpb.HeartbeatRequest(code=C2, time_ms=1))
    out = {"caller": (e.value.status, e.value.refused.reason.wire)}
    with pytest.raises(TransportError) as e:
        tree.node(C1).transport.deliver(Peer(C2, tree[C2][1].listen), [b"anything"])
    out["answerer"] = (e.value.status, e.value.refused, "CERT_REVOKED" in str(e.value),
                       str(e.value).endswith("nothing handed over"))
    return out


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    return (scenario(tmp_path_factory.mktemp("grpc"), None),
            scenario(tmp_path_factory.mktemp("inproc"), LocalNetwork()))


def test_the_tree_does_everything_over_the_in_process_transport(both):
    _, local = both
    assert local["lookup"] == (C2, P, True)
    assert local["directory"] == sorted(PARENTS)
    assert local["statuses"] == [["01"]] and local["path"] == [C1, P, C2] and local["verified"]
    assert local["receipts"] == {C1: [("delivered", P)], C2: [("delivered", P)]}  # the document; its 01
    assert local["crl"] == dict.fromkeys(PARENTS, 2) and local["push"] == (C1, 3)
    assert local["checkpoint"] == (True, True)
    sent, delivered, received = audit_store.SENT, audit_store.DELIVERED, audit_store.RECEIVED
    assert local["audit"][C1] == {"m0": [(sent, P), (delivered, P)], "m1": [(received, P)]}  # the document; the 01
    assert local["audit"][P] == {"m0": [(sent, C2), (received, C1), (delivered, C2)],
                                 "m1": [(sent, C1), (received, C2), (delivered, C1)]}


def test_receipts_paths_and_audit_rows_are_the_same_as_over_grpc(both):
    over_grpc, local = both
    assert local == over_grpc


def test_a_refusal_comes_back_with_the_same_reason_in_process_as_over_grpc(both):
    over_grpc, local = both
    assert local["refusals"]["deliver"] == ["BAD_SIGNATURE", "MALFORMED"]
    assert local["refusals"]["register"][:2] == (grpc.StatusCode.PERMISSION_DENIED, "SENDER_MISMATCH")
    assert local["refusals"]["heartbeat"][:2] == (grpc.StatusCode.PERMISSION_DENIED, "SENDER_MISMATCH")
    assert local["refusals"] == over_grpc["refusals"]


def test_a_revoked_certificate_is_refused_in_process_as_over_grpc(both):
    over_grpc, local = both
    assert local["revoked"] == {"caller": (grpc.StatusCode.PERMISSION_DENIED, "CERT_REVOKED"),
                                "answerer": (None, None, True, True)}
    assert local["revoked"] == over_grpc["revoked"]
