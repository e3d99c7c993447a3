"""A document and its revoke (or take-back request) handed over in one batch: the second
refers to the first, which is not stored yet when the batch is checked. Both must be
accepted, in order, as if they had come one after the other."""
from __future__ import annotations

import pytest

from node.config import load_config
from node.harness import nodes
from node.harness.nodes import NodeSpec
from node.pb import envelope_pb2 as pb
from node.runtime import Node
from node.store import inbox, outbox

A, B, C = "000.00.01.H53", "000.00.02.H53", "000.00.03.H53"


@pytest.fixture
def pair(tmp_path):
    """Two nodes, not serving: the batch goes straight from A's outbox into B's intake."""
    ha, hb = nodes.pair(tmp_path, NodeSpec(A, "Sở A"), NodeSpec(B, "Sở B"))
    a, b = Node(load_config(ha.config)), Node(load_config(hb.config))
    for n in (a, b):
        n.dispatcher.wake = n.intake.wake = n.outgoing.wake = lambda hop: None
    yield a, b
    for n in (a, b):
        n.db.close()


def queued(a: Node) -> list[bytes]:
    return [p.envelope for p in outbox.next_batch(a.db, B, 100, 1 << 30)]


def test_a_revoke_right_behind_its_document_in_one_batch_is_accepted(pair):
    a, b = pair
    posted = a.outgoing.post(pb.Payload(document=pb.Document(subject="Công văn", document_id=f"{A},1/UBND")), [B])
    a.lifecycle.change(posted.doc_id, 1, False, "ban hành nhầm", None, pb.StaffInfo())
    batch = queued(a)
    assert len(batch) == 2

    results = b.intake.receive(batch, A)

    assert all(isinstance(r, pb.Receipt) for r in results), results
    [doc] = [e for e in inbox.list_entries(b.db) if e["message_id"] == posted.envelopes[0][1]]
    assert doc["state"] == "revoked"


def test_a_revoke_in_the_same_batch_from_someone_else_is_still_refused(pair, tmp_path):
    a, b = pair
    a.outgoing.post(pb.Payload(document=pb.Document(subject="Công văn", document_id=f"{A},2/UBND")), [B])
    [doc_raw] = queued(a)
    doc_id = pb.Header.FromString(pb.Envelope.FromString(doc_raw).header).message_id
    # C, a trusted agency that did not send the document, revokes it in the same hand-over
    hc = nodes.prepare_node(tmp_path, nodes.make_ca(tmp_path), NodeSpec(C, "Sở C", peers={B: "127.0.0.1:1"}),
                            {C: "127.0.0.1:2"})
    c = Node(load_config(hc.config))
    c.dispatcher.wake = c.outgoing.wake = lambda hop: None
    try:
        revoke = pb.Payload(document=pb.Document(subject="thu hồi", business=pb.Business(business_doc_type=1)))
        c.outgoing.post(revoke, [B], ref_message_id=doc_id)
        [revoke_raw] = [p.envelope for p in outbox.next_batch(c.db, B, 10, 1 << 30)]
    finally:
        c.db.close()

    doc_result, revoke_result = b.intake.receive([doc_raw, revoke_raw], None)  # plain hand-over: no TLS peer check

    assert isinstance(doc_result, pb.Receipt)
    assert revoke_result.reason.name == "NOT_ORIGINAL_SENDER"


def test_a_change_queues_behind_its_document_whatever_the_document_says_of_its_priority(pair):
    a, _ = pair
    doc = pb.Document(subject="Công văn", document_id=f"{A},3/UBND")
    doc.other_info.priority = 3  # the document's own field says urgent, the send asked for 1
    posted = a.outgoing.post(pb.Payload(document=doc), [B], priority=1)
    a.lifecycle.change(posted.doc_id, 1, False, "ban hành nhầm", None, pb.StaffInfo())
    a.lifecycle.change(posted.doc_id, 0, True, "xin rút lại", None, pb.StaffInfo())  # a take-back (13)
    order = [pb.Header.FromString(pb.Envelope.FromString(raw).header) for raw in queued(a)]
    assert [h.message_id for h in order][0] == posted.envelopes[0][1]
    assert {h.priority for h in order} == {1}
