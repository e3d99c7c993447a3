"""A document and its revoke (or take-back request) handed over in one batch: the second
refers to the first, which is not stored yet when the batch is checked. Both must be
accepted, in order, as if they had come one after the other."""
from __future__ import annotations

import pytest

from node import envelope
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


@pytest.fixture
def c_node(tmp_path):
    """C: a trusted agency with a certificate from the same CA, here as the attacker."""
    hc = nodes.prepare_node(tmp_path, nodes.make_ca(tmp_path), NodeSpec(C, "Sở C", peers={B: "127.0.0.1:1"}),
                            {C: "127.0.0.1:2"})
    c = Node(load_config(hc.config))
    c.dispatcher.wake = lambda hop: None
    yield c
    c.db.close()


def test_a_decoy_reusing_a_stored_message_id_cannot_vouch_for_a_forged_revoke(pair, c_node):
    """The lifecycle forgery: C sends a decoy document under the id of A's stored document, then a
    revoke of it. The decoy is a duplicate (refused), so the revoke is checked against the stored
    original, whose signed sender is A: refused too, and the document stays active."""
    a, b = pair
    posted = a.outgoing.post(pb.Payload(document=pb.Document(subject="Công văn", document_id=f"{A},4/UBND")), [B])
    [doc_id] = [m for _, m in posted.envelopes]
    assert all(isinstance(r, pb.Receipt) for r in b.intake.receive(queued(a), None))

    decoy_header, decoy = envelope.seal(c_node.signer, B, pb.Payload(document=pb.Document(subject="mồi")),
                                        lifetime_s=600, message_id=doc_id)
    _, revoke = envelope.seal(c_node.signer, B, pb.Payload(document=pb.Document(
        subject="thu hồi", business=pb.Business(business_doc_type=1))), lifetime_s=600, ref_message_id=doc_id)

    decoy_result, revoke_result = b.intake.receive([decoy, revoke], None)

    assert decoy_result.reason.name == "DUPLICATE_CONFLICT"
    assert revoke_result.reason.name == "NOT_ORIGINAL_SENDER"
    [entry] = [e for e in inbox.list_entries(b.db) if e["message_id"] == doc_id]
    assert entry["state"] == "active"


def test_one_bad_envelope_is_refused_alone_and_the_rest_of_its_batch_is_stored(pair, c_node):
    """A message id that names one of the receiver's own sent messages once failed the whole batch
    (SQLite UNIQUE), and its sender retried it until its lifetime ended while the link waited."""
    a, b = pair
    [(_, own_id)] = b.outgoing.post(pb.Payload(document=pb.Document(subject="của B")), [A]).envelopes
    good1 = envelope.seal(c_node.signer, B, pb.Payload(document=pb.Document(subject="1")), lifetime_s=600)[1]
    clash = envelope.seal(c_node.signer, B, pb.Payload(document=pb.Document(subject="trùng")), lifetime_s=600,
                          message_id=own_id)[1]
    odd = pb.Document(subject="ưu tiên lạ")
    odd.other_info.priority = 99  # an honest edXML client can write this; only the header priority is checked
    good2 = envelope.seal(c_node.signer, B, pb.Payload(document=odd), lifetime_s=600)[1]

    results = b.intake.receive([good1, clash, good2], None)

    assert isinstance(results[0], pb.Receipt) and isinstance(results[2], pb.Receipt)
    assert results[1].reason.name == "DUPLICATE_CONFLICT"
    subjects = {e["subject"] for e in inbox.list_entries(b.db)}
    assert {"1", "ưu tiên lạ"} <= subjects and "trùng" not in subjects
    assert outbox.get(b.db, own_id)["subject"] == "của B"  # B's own message untouched


def test_one_envelope_repeated_in_a_batch_has_its_automatic_01_made_once(pair):
    a, b = pair
    a.outgoing.post(pb.Payload(document=pb.Document(subject="Công văn", document_id=f"{A},9/UBND")), [B])
    [doc_raw] = queued(a)
    made = []
    prepare = b.intake.local_mail.prepare
    b.intake.local_mail.prepare = lambda item: made.append(item.message_id) or prepare(item)

    results = b.intake.receive([doc_raw] * 5, A)

    assert all(isinstance(r, pb.Receipt) for r in results), results
    assert len({r.SerializeToString() for r in results}) == 1  # the copies answered with the first's receipt
    assert len(made) == 1  # signed and sealed for the first copy alone: the others are never stored
    assert len([p for p in outbox.next_batch(b.db, A, 100, 1 << 30)]) == 1  # one 01 back to A
