"""A document's whole life on a tree of real nodes (in one process; real gRPC, mTLS, SQLite).

    000.00.00.H53 ── 000.00.35.H53 ── 000.23.35.H53 (sender S)
                 └── 000.00.38.H53 ── 000.11.38.H53 (R1)
    recipients: R1 (another district), R2 = 000.00.38.H53 (a district), R3 = 000.00.00.H53 (the province)
"""
from __future__ import annotations

import grpc
import pytest

from node.codes import Hierarchy
from node.grpc_errors import reason_of
from node.harness.inproc import start_tree
from node.harness.waiting import EventWaiter, wait_for_statuses
from node.api import replies
from node.pb import envelope_pb2 as pb
from node.store import statuses

P, D1, D2, S, R1 = "000.00.00.H53", "000.00.35.H53", "000.00.38.H53", "000.23.35.H53", "000.11.38.H53"
R2, R3 = D2, P
RECIPIENTS = [R1, R2, R3]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    t = start_tree(tmp_path_factory.mktemp("life"), {P: None, D1: P, D2: P, S: D1, R1: D2})
    yield t
    t.stop()


@pytest.fixture(scope="module")
def sent(tree):
    doc = pb.Document(subject="Về việc tổng kết năm", document_id=f"{S},2026/11/21,12/UBND")
    doc.code.code_number, doc.code.code_notation = "12", "UBND"
    resp = tree.client(S).send(doc, RECIPIENTS)
    return resp.doc_id, {e.recipient: e.message_id for e in resp.envelopes}


def test_arrival_status_01_comes_back_automatically_with_the_path(tree, sent):
    doc_id, mids = sent
    track = wait_for_statuses(tree.client(S), doc_id, {r: ["01"] for r in RECIPIENTS})
    for r in track.recipients:
        assert r.arrived_ms > 0 and r.latest_status == "01"
        assert [h.code for h in r.path] == Hierarchy().route(S, r.recipient)
        assert r.statuses[0].message_id  # the status envelope's id
    # the recipient's inbox shows the document at 01, with nothing done by its software
    [entry] = [e for e in tree.client(R1).inbox_all() if e.message_id == mids[R1]]
    assert (entry.status, entry.state) == ("01", "active")


def test_a_retried_document_is_answered_its_stored_receipt_without_making_its_01_again(tree, sent, monkeypatch):
    """The automatic 01 is made (signed, sealed) before the custody transaction; a hand-over of a document
    already taken (a sender retrying after a lost answer) gets its stored receipt back and makes no 01."""
    from node import envelope
    from node.store import custody, inbox

    _, mids = sent
    wait_for_statuses(tree.client(S), sent[0], {r: ["01"] for r in RECIPIENTS})
    node = tree.node(R1)
    raw = inbox.envelope(node.db, mids[R1])
    before = statuses.count_reported(node.db, mids[R1], "01")
    made = []
    real = node.lifecycle.prepare
    monkeypatch.setattr(node.lifecycle, "prepare", lambda item: made.append(item.message_id) or real(item))
    [answer] = node.intake.receive([raw], envelope.last_hop(raw))
    assert answer == custody.stored_receipt(node.db, mids[R1])
    assert made == []
    assert statuses.count_reported(node.db, mids[R1], "01") == before >= 1


def test_processing_statuses_arrive_in_order_and_a_wrong_step_is_refused(tree, sent):
    doc_id, mids = sent
    r1, r2 = tree.client(R1), tree.client(R2)
    with pytest.raises(grpc.RpcError) as e:
        r1.set_status(mids[R1], "06", "done before accepting")
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION and reason_of(e.value) == "BAD_STEP"
    assert "current status 01" in e.value.details()
    staff = pb.StaffInfo(department="Văn phòng", staff="Nguyễn Văn A", email="a@example.vn")
    for code in ("03", "04", "05", "06"):
        r1.set_status(mids[R1], code, f"bước {code}", staff)
    r2.set_status(mids[R2], "02", "gửi nhầm đơn vị")
    with pytest.raises(grpc.RpcError) as e:
        r2.set_status(mids[R2], "03")
    assert "current status 02" in e.value.details()
    track = wait_for_statuses(tree.client(S), doc_id, {R1: ["01", "03", "04", "05", "06"], R2: ["01", "02"], R3: ["01"]})
    [t1] = [r for r in track.recipients if r.recipient == R1]
    assert [s.description for s in t1.statuses[1:]] == ["bước 03", "bước 04", "bước 05", "bước 06"]
    assert t1.statuses[1].staff_info.staff == "Nguyễn Văn A"
    times = [s.time_ms for s in t1.statuses]
    assert times == sorted(times)


def test_status_from_a_non_recipient_is_rejected(tree, sent):
    doc_id, mids = sent
    forger = tree.node(D1)  # D1 relayed the document but was never a recipient
    status = pb.Status(status_code="06", description="forged", from_organ=pb.Organization(organ_id=D1))
    with EventWaiter(tree.client(D1), sent=False) as ev:
        posted = forger.outgoing.post(pb.Payload(status=status), [S], ref_message_id=mids[R1])
        ev.wait(lambda evs: any(e.kind == pb.NOTICE for e in evs), timeout=30)
    [entry] = [e for e in tree.client(D1).sent_all() if e.message_id == posted.envelopes[0][1]]
    assert entry.state == "rejected" and "NOT_RECIPIENT" in entry.reason
    track = tree.client(S).track(doc_id)
    assert all(s.description != "forged" for r in track.recipients for s in r.statuses)


def test_revoke_reaches_every_recipient_and_is_marked_not_deleted(tree, sent):
    doc_id, mids = sent
    sender = tree.client(S)
    waiters = {r: EventWaiter(tree.client(r), sent=False) for r in RECIPIENTS}
    try:
        change = sender.change(doc_id, 1, reason="ban hành nhầm")
        for r, w in waiters.items():
            w.wait(lambda evs: len(evs) >= 1, timeout=30)
    finally:
        for w in waiters.values():
            w.close()
    assert {e.recipient for e in change.envelopes} == set(RECIPIENTS)
    for r in RECIPIENTS:
        entries = {e.message_id: e for e in tree.client(r).inbox_all()}
        original = entries[mids[r]]
        assert original.state == "revoked"
        revocation = entries[original.changed_by]
        assert revocation.business_doc_type == 1 and revocation.ref_message_id == mids[r]
        fetched = tree.client(r).fetch(revocation.message_id).payload.document
        assert fetched.business.business_doc_reason == "ban hành nhầm"
    assert change.doc_id in sender.track(doc_id).changes


def test_only_the_original_sender_may_revoke(tree, sent):
    doc_id, mids = sent
    imposter = tree.node(D2)
    doc = pb.Document(subject="thu hồi giả", business=pb.Business(business_doc_type=1))
    with EventWaiter(tree.client(D2), sent=False) as ev:
        posted = imposter.outgoing.post(pb.Payload(document=doc), [R1], ref_message_id=mids[R1])
        ev.wait(lambda evs: any(e.kind == pb.NOTICE for e in evs), timeout=30)
    [entry] = [e for e in tree.client(D2).sent_all() if e.message_id == posted.envelopes[0][1]]
    assert entry.state == "rejected" and "NOT_ORIGINAL_SENDER" in entry.reason


def test_take_back_request_is_answered(tree):
    sender, r1 = tree.client(S), tree.client(R1)
    with EventWaiter(r1, sent=False) as ev:
        resp = sender.send(pb.Document(subject="Gửi nhầm"), [R1])
        mid = resp.envelopes[0].message_id
        ev.wait(lambda evs: mid in {e.message_id for e in evs}, timeout=30)
        with pytest.raises(grpc.RpcError) as e:
            r1.set_status(mid, "15")  # nothing to agree to yet
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        sender.change(resp.doc_id, take_back=True, reason="gửi nhầm")
        ev.wait(lambda evs: any(e.kind == pb.STATUS for e in evs), timeout=30)
    r1.set_status(mid, "15", "đồng ý")
    [entry] = [e for e in r1.inbox_all() if e.message_id == mid]
    assert entry.state == "taken_back"
    with pytest.raises(grpc.RpcError) as e:
        r1.set_status(mid, "03")
    assert "taken_back" in e.value.details()
    track = wait_for_statuses(tree.client(S), resp.doc_id, {R1: ["01", "15"]})
    assert track.recipients[0].latest_status == "15"


def test_statuses_that_arrive_out_of_order_show_in_their_true_order(tree, sent):
    """Retries can deliver a later status first; Track orders by the time the recipient's node signed each."""
    doc_id, mids = sent
    node = tree.node(S)
    base = node.clock.now_ms()
    with node.db.transaction() as conn:  # arrival order: 05 then 04 (as after a retry)
        for i, (code, issued) in enumerate((("05", base + 2000), ("04", base + 1000))):
            statuses.record_returned(conn, f"late-{i}", mids[R3], R3, code, issued,
                                     pb.Status(status_code=code).SerializeToString(), base + 3000 + i)
    [r3] = [r for r in replies.track_response(node.db, node.lifecycle.sent_document(doc_id)).recipients
          if r.recipient == R3]
    assert [s.status_code for s in r3.statuses][-2:] == ["04", "05"]
    assert [s.received_ms for s in r3.statuses][-2:] == [base + 3001, base + 3000]


# ---- the change rules (issue 17, vendor 4; docs/api.md, Changes) ------------------------------

def _arrive(tree, at: str, act):
    """Run `act()` (returns a SendResponse) and wait until its envelope to `at` arrives there; its message id."""
    with EventWaiter(tree.client(at), sent=False) as ev:
        resp = act()
        mid = next(e.message_id for e in resp.envelopes if e.recipient == at)
        ev.wait(lambda evs: mid in {e.message_id for e in evs}, timeout=30)
    return resp, mid


def _entry(tree, at: str, mid: str):
    [entry] = [e for e in tree.client(at).inbox_all() if e.message_id == mid]
    return entry


def test_an_update_takes_effect_on_arrival_a_16_puts_the_document_back_a_15_keeps_it(tree):
    sender = tree.client(S)
    sent, original = _arrive(tree, R1, lambda: sender.send(pb.Document(subject="Bản gốc"), [R1]))
    _, update = _arrive(tree, R1, lambda: sender.change(sent.doc_id, 2, document=pb.Document(subject="Bản sửa 1")))
    doc = _entry(tree, R1, original)
    assert (doc.state, doc.changed_by, doc.pending_request) == ("updated", update, "2")
    status = tree.client(R1).set_status(original, "16", "không đồng ý")  # a status on a change names the original
    doc = _entry(tree, R1, original)
    assert (doc.state, doc.changed_by, doc.pending_request) == ("active", "", "")
    track = wait_for_statuses(sender, sent.doc_id, {R1: ["01", "16"]})
    assert track.recipients[0].statuses[-1].message_id == status
    # a second update, agreed: the document stays updated, by that one
    _, update2 = _arrive(tree, R1, lambda: sender.change(sent.doc_id, 2, document=pb.Document(subject="Bản sửa 2")))
    tree.client(R1).set_status(original, "15")
    doc = _entry(tree, R1, original)
    assert (doc.state, doc.changed_by, doc.pending_request) == ("updated", update2, "")


def test_a_revocation_after_an_update_revokes_the_update_too_and_a_16_puts_both_back(tree):
    sender = tree.client(S)
    sent, original = _arrive(tree, R1, lambda: sender.send(pb.Document(subject="Bản gốc 2"), [R1]))
    _, update = _arrive(tree, R1, lambda: sender.change(sent.doc_id, 2, document=pb.Document(subject="Bản sửa")))
    tree.client(R1).set_status(original, "15")
    _, revocation = _arrive(tree, R1, lambda: sender.change(sent.doc_id, 1, reason="thu hồi"))
    assert (_entry(tree, R1, original).state, _entry(tree, R1, update).state) == ("revoked", "revoked")
    assert _entry(tree, R1, update).changed_by == revocation
    tree.client(R1).set_status(original, "16")
    doc, upd = _entry(tree, R1, original), _entry(tree, R1, update)
    assert (doc.state, doc.changed_by, upd.state, upd.changed_by) == ("updated", update, "active", "")


@pytest.mark.parametrize("call, field", [
    (lambda c, doc_id: c.change(doc_id, 2), "document"),
    (lambda c, doc_id: c.change(doc_id, 7), "business_doc_type"),
    (lambda c, doc_id: c.change(doc_id, 1, take_back=True), "business_doc_type"),
    (lambda c, doc_id: c.change(""), "doc_id"),
    (lambda c, doc_id: c.change("0" * 32, 1), "doc_id"),
])
def test_a_refused_change_names_the_field(tree, sent, call, field):
    from node.grpc_errors import fields_of
    doc_id, _ = sent
    with pytest.raises(grpc.RpcError) as e:
        call(tree.client(S), doc_id)
    assert fields_of(e.value) == [field], e.value.details()


def test_a_change_of_a_change_is_refused_naming_doc_id(tree):
    from node.grpc_errors import fields_of
    sender = tree.client(S)
    sent, _ = _arrive(tree, R1, lambda: sender.send(pb.Document(subject="Bản gốc 3"), [R1]))
    update = sender.change(sent.doc_id, 2, document=pb.Document(subject="Bản sửa"))
    with pytest.raises(grpc.RpcError) as e:
        sender.change(update.doc_id, 1)
    assert (reason_of(e.value), fields_of(e.value)) == ("INVALID_REQUEST", ["doc_id"])



def test_the_automatic_01_is_sealed_to_the_key_read_off_the_envelope_intake_parsed(tree, monkeypatch):
    """The recipient reads the sender's seal key for its 01 off the envelope intake parsed and verified:
    the 10 KB-class envelope is not parsed again for it, and the 01 still goes sealed to the sender."""
    from node.identity import sealing
    from node.store import inbox

    reparsed = []
    real = sealing.sender_key_of
    monkeypatch.setattr(sealing, "sender_key_of", lambda raw: reparsed.append(raw) or real(raw))
    doc = pb.Document(subject="Niêm phong 01", document_id=f"{S},2026/11/21,13/UBND")
    resp = tree.client(S).send(doc, [R1])
    [(_, mid)] = [(e.recipient, e.message_id) for e in resp.envelopes]
    track = wait_for_statuses(tree.client(S), resp.doc_id, {R1: ["01"]})
    status_id = track.recipients[0].statuses[0].message_id
    assert inbox.envelope(tree.node(R1).db, mid) not in reparsed
    status = pb.Envelope.FromString(inbox.envelope(tree.node(S).db, status_id))
    assert pb.Header.FromString(status.header).seal == pb.SEALED_P256_AES256GCM
    assert pb.Payload.FromString(tree.node(S).maker.opener(status.payload, pb.Header.FromString(status.header))
                                 ).status.status_code == "01"  # sealed to S, and S opens it
