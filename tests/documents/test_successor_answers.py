"""History follows a succession, both directions (docs/restructuring.md, "History follows"), on a tree of real
nodes in one process (real gRPC over mutual TLS, real SQLite files, real keys):

    000.00.00.H53 P ── 000.00.35.H53 D1 ── 000.23.35.H53 S   (a sender in another branch: looks the succession up)
                  └── 000.00.38.H53 D2 ── X, Z, W            (D2 issues X -> Z, and holds it)

S and D2 sent documents to X, and X sent one to each, before D2 retired X into Z. Then Z answers for X: its
status on S's or D2's document is taken under recipient X, "answered by Z" in Track; its revocation of X's
document is taken. W, not X's successor, is refused NOT_A_SUCCESSOR for both, nothing recorded."""
from __future__ import annotations

import threading
import time

import pytest

from node.errors import Reason
from node.harness.inproc import start_tree
from node.harness.waiting import EventWaiter, wait_for_statuses
from node.pb import envelope_pb2 as pb

P, D1, D2, S = "000.00.00.H53", "000.00.35.H53", "000.00.38.H53", "000.23.35.H53"
X, Z, W = "000.21.38.H53", "000.22.38.H53", "000.23.38.H53"
TIMEOUT = 30.0


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    t = start_tree(tmp_path_factory.mktemp("heirs"), {P: None, D1: P, D2: P, S: D1, X: D2, Z: D2, W: D2})
    try:
        yield t
    finally:
        t.stop()


@pytest.fixture(scope="module")
def history(tree):
    """Documents exchanged with X before the succession (each 01 back), then X retired into Z."""
    to_x = {who: tree.client(who).send(pb.Document(subject=f"gửi xã X từ {who}"), [X]) for who in (S, D2)}
    for who, sent in to_x.items():
        wait_for_statuses(tree.client(who), sent.doc_id, {X: ["01"]})
    from_x = {who: tree.client(X).send(pb.Document(subject=f"xã X gửi {who}"), [who]) for who in (S, D2)}
    for who, sent in from_x.items():
        wait_for_statuses(tree.client(X), sent.doc_id, {who: ["01"]})
    tree.client(D2).admin.issue_succession([X], Z, 0, "Nghị quyết sáp nhập xã")
    # S, in another branch, asks the tree (a fresh lookup is answered from one less than a second old: S's own
    # lookups just now, for its send, may still be)
    # paced: no event says that S's next fresh lookup would see it (a fresh lookup is answered from one less
    # than a second old), so it is asked again every 0.2 s until it does
    deadline, pace = time.monotonic() + TIMEOUT, threading.Event()
    while tree.node(S).directory.successor_of(X, True) != Z:
        assert time.monotonic() < deadline, f"{S} did not learn that {X} is retired into {Z}"
        pace.wait(0.2)
    return to_x, from_x


def post(tree, by: str, payload: pb.Payload, to: str, ref: str) -> tuple[str, str]:
    """`by` sends a status or a change about `ref` to `to`, as its node makes any envelope; (state, reason) once
    `to` took it or refused it (a refusal comes back to `by` as a non-delivery notice)."""
    with EventWaiter(tree.client(to), sent=False) as ev:  # its arrival at `to` (the refusal: at the deadline)
        posted = tree.node(by).outgoing.post(payload, [to], ref_message_id=ref)
        mid = posted.envelopes[0][1]
        ev.wait(lambda evs: _state(tree, by, mid)[0] == "rejected" or _taken(tree, to, mid), TIMEOUT)
    return ("taken", "") if _taken(tree, to, mid) else _state(tree, by, mid)


def handed(tree, by: str, payload: pb.Payload, to: str, ref: str):
    """What `to`'s intake answers to a status or change `by`'s node made and signed about `ref` (handed to it
    directly: a refusal reaches a relay, which tells the sender of a document only)."""
    node = tree.node(by)
    [made] = node.outgoing.prepare_in(payload, to, ref_message_id=ref, seal_to=node.directory.seal_key_of(to))
    [answer] = tree.node(to).intake.receive([made.raw], None)
    return answer


def _state(tree, by: str, mid: str) -> tuple[str, str]:
    [entry] = [e for e in tree.client(by).sent_all() if e.message_id == mid]
    return entry.state, entry.reason


def _taken(tree, at: str, mid: str) -> bool:
    return bool(tree.node(at).db.query_one("SELECT 1 FROM received WHERE message_id = ?", (mid,)))


def status(code: str, by: str) -> pb.Payload:
    return pb.Payload(status=pb.Status(status_code=code, description=f"{code} từ {by}",
                                       from_organ=pb.Organization(organ_id=by)))


def revoke(by: str) -> pb.Payload:
    return pb.Payload(document=pb.Document(subject=f"thu hồi từ {by}", business=pb.Business(business_doc_type=1)))


@pytest.mark.parametrize("sender", [S, D2])  # S looks the succession up; D2 issued it and holds it
def test_the_successor_answers_a_status_for_the_retired_recipient(tree, history, sender):
    to_x, _ = history
    sent = to_x[sender]
    mid = sent.envelopes[0].message_id
    assert post(tree, Z, status("03", Z), sender, mid)[0] == "taken"
    n = tree.node(sender)
    track = wait_for_statuses(tree.client(sender), sent.doc_id, {X: ["01", "03"]})
    [t] = track.recipients
    assert t.recipient == X  # filed under the recipient it was sent to
    assert [(s.status_code, s.answered_by) for s in t.statuses] == [("01", ""), ("03", Z)]


@pytest.mark.parametrize("sender", [S, D2])
def test_a_non_successor_answering_for_the_retired_recipient_is_refused(tree, history, sender):
    to_x, _ = history
    sent = to_x[sender]
    mid = sent.envelopes[0].message_id
    before = [s.status_code for s in tree.client(sender).track(sent.doc_id).recipients[0].statuses]
    refused = handed(tree, W, status("06", W), sender, mid)
    assert refused.reason.name == "NOT_A_SUCCESSOR" and refused.metadata["successor"] == Z
    assert [s.status_code for s in tree.client(sender).track(sent.doc_id).recipients[0].statuses] == before


@pytest.mark.parametrize("recipient", [S, D2])
def test_the_successor_revokes_what_the_retired_agency_sent(tree, history, recipient):
    _, from_x = history
    mid = from_x[recipient].envelopes[0].message_id
    refused = handed(tree, W, revoke(W), recipient, mid)
    assert refused.reason.name == "NOT_A_SUCCESSOR" and refused.metadata["successor"] == Z
    assert {e.message_id: e for e in tree.client(recipient).inbox_all()}[mid].state == "active"
    assert post(tree, Z, revoke(Z), recipient, mid)[0] == "taken"
    original = {e.message_id: e for e in tree.client(recipient).inbox_all()}[mid]
    assert original.state == "revoked" and original.sender == X


def test_after_the_hand_over_the_successor_reports_and_revokes_for_its_predecessor(tmp_path):
    """End to end with `lienthong retire --hand-over`: X's history is on Z's node; Z's agency reports a status on
    the document S sent X, and revokes the one X sent S; S takes both, the status under recipient X answered by Z.
    The other way, S's status on X's document and S's revocation of the one it sent X go to Z, which takes them
    under X's history."""
    p, x_code, z_code, s_code = "000.00.00.H53", "000.00.31.H53", "000.00.33.H53", "000.00.34.H53"
    t = start_tree(tmp_path, {p: None, x_code: p, z_code: p, s_code: p})
    try:
        x, z, s = t.client(x_code), t.client(z_code), t.client(s_code)
        to_x = s.send(pb.Document(subject="gửi xã cũ"), [x_code])
        wait_for_statuses(s, to_x.doc_id, {x_code: ["01"]}, TIMEOUT)
        from_x = x.send(pb.Document(subject="xã cũ gửi"), [s_code])
        wait_for_statuses(x, from_x.doc_id, {s_code: ["01"]}, TIMEOUT)
        with EventWaiter(x, inbox=False, sent=False, registry=True) as at_x:
            t.client(p).admin.issue_succession([x_code], z_code, 0, "Nghị quyết sáp nhập xã")
            at_x.wait(lambda evs: any(e.type == "succession" for e in evs), TIMEOUT)
        with EventWaiter(x, inbox=False) as x_sent:
            x.admin.retire(z_code)
            x_sent.wait(lambda _: x.admin.retire_status().queued == 0, TIMEOUT)
        x.admin.hand_over()
        mid = to_x.envelopes[0].message_id
        z.set_status(mid, "03", "tiếp nhận thay xã cũ")  # Z's agency, on the document X received
        [t_x] = wait_for_statuses(s, to_x.doc_id, {x_code: ["01", "03"]}, TIMEOUT).recipients
        assert (t_x.recipient, [st.answered_by for st in t_x.statuses]) == (x_code, ["", z_code])
        x_mid = from_x.envelopes[0].message_id
        # the other direction: S's status on X's document, and S's revocation of what it sent X, go to Z, which
        # files them under X's history
        sent = s.set_status(x_mid, "03", "đã nhận")
        assert [e.recipient for e in s.sent_all() if e.message_id == sent] == [z_code]
        wait_for_statuses(z, from_x.doc_id, {s_code: ["01", "03"]}, TIMEOUT)
        with EventWaiter(z, sent=False) as at_z:
            change = s.change(to_x.doc_id, 1, reason="thu hồi văn bản gửi xã cũ")
            assert [e.recipient for e in change.envelopes] == [z_code]
            at_z.wait(lambda _: {e.message_id: e for e in z.inbox_all()}[mid].state == "revoked", TIMEOUT)
        with EventWaiter(s, sent=False) as at_s:
            z.change(from_x.doc_id, 1, reason="thu hồi thay xã cũ")  # Z's agency revokes what X sent
            at_s.wait(lambda _: {e.message_id: e for e in s.inbox_all()}[x_mid].state == "revoked", TIMEOUT)
    finally:
        t.stop()


def test_who_awaits_its_history_is_worked_out_once_while_nothing_changes(tree, history, monkeypatch):
    """Asked for every status or change about a document the successor knows nothing of, inside the custody
    transaction: a peer's batch of them walks the succession lists once, not once each; a commit (a takeover)
    or a new list makes it ask again."""
    z = tree.node(Z)
    walks = []
    real = z.successions.all_retired
    monkeypatch.setattr(z.successions, "all_retired", lambda: (walks.append(1), real())[1])
    with z.db.transaction():  # one custody transaction: no commit in between
        answers = [z._awaiting_history() for _ in range(50)]
    assert answers[0] == [X] and all(a == [X] for a in answers) and len(walks) <= 2  # <= 2: a second may turn
    walks.clear()
    with z.db.transaction() as tx:  # any commit
        tx.execute("SELECT 1")
    assert z._awaiting_history() == [X] and len(walks) == 1


def test_before_the_takeover_the_successor_refuses_for_now_what_is_about_its_predecessors_documents(tree, history):
    """A status sent to Z, X's successor, about a document X sent (S's status on it, re-addressed to Z): Z does
    not hold X's history yet, so it refuses it for now (HISTORY_NOT_TAKEN_OVER: S's node keeps it and sends it
    again), not for good as a status about a document it never sent; W, which answers for nobody, still does."""
    to_x, from_x = history
    x_mid, s_mid = from_x[S].envelopes[0].message_id, to_x[S].envelopes[0].message_id
    for_now = handed(tree, S, status("03", S), Z, ref=x_mid)
    assert for_now.reason is Reason.HISTORY_NOT_TAKEN_OVER and not for_now.reason.permanent
    assert handed(tree, S, status("03", S), W, ref=x_mid).reason is Reason.NOT_RECIPIENT
    assert handed(tree, S, revoke(S), Z, ref=s_mid).reason is Reason.HISTORY_NOT_TAKEN_OVER  # S revokes what it sent X
    assert handed(tree, S, revoke(S), W, ref=s_mid).reason is Reason.NOT_ORIGINAL_SENDER
