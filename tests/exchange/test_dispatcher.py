"""The sender side: receipts, persisted backoff with jitter, priorities, expiry and permanent refusals.

The receiving side is a real Intake over its own SQLite file; only the wire is replaced
by a function call, and time is a FakeClock.
"""
from __future__ import annotations

import random
import threading

import pytest

from node import envelope, receipts
from node.exchange.dispatcher import Dispatcher
from node.exchange.hop import Outcome, Prepared, RetryPolicy, SendLimits
from node.exchange.intake import Intake
from node.exchange.outgoing import EnvelopeMaker, Outgoing
from node.exchange.routing import Router
from node.exchange.service import to_outcomes
from node.transport.interface import TransportError
from node.errors import Reason, Rejected
from node.pb import envelope_pb2 as pb
from node.pb import exchange_pb2 as xpb
from node.store import audit, inbox, outbox, peers
from node.store.database import Database

A, B, C = "000.00.01.H53", "000.00.02.H53", "000.00.03.H53"
POLICY = RetryPolicy(first_delay=2.0, multiplier=3.0, max_delay=60.0, jitter=(0.8, 1.4))


DELIVERED, IDLE, BACKOFF, NOT_DUE = Outcome.DELIVERED, Outcome.IDLE, Outcome.BACKOFF, Outcome.NOT_DUE


class Wire:
    """Stands for the network between A and B: up or down, and counts batches.

    `answer`, when set, replaces B's answer (a forged receipt, a peer that hangs)."""

    def __init__(self, intake: Intake) -> None:
        self.intake = intake
        self.up = True
        self.batches: list[int] = []
        self.answer = None

    def __call__(self, hop, address, envelopes):
        if not self.up:
            raise TransportError("UNAVAILABLE: connection refused")
        if self.answer is not None:
            return self.answer(hop, address, envelopes)
        return self.receive(hop, address, envelopes)

    def receive(self, hop, address, envelopes):
        self.batches.append(len(envelopes))
        return to_outcomes(self.intake.receive(envelopes, A))


class Wakes:
    def __init__(self) -> None:
        self.hops: list[str] = []

    def wake(self, hop: str) -> None:
        self.hops.append(hop)


@pytest.fixture
def side(tmp_path, pki, clock):
    trust = pki.trust(clock)
    db_a, db_b = Database(tmp_path / "a.sqlite3"), Database(tmp_path / "b.sqlite3")
    router_a = Router(A, {B: "127.0.0.1:1"})
    intake_b = Intake(db_b, pki.signer(B), trust, Router(B, {A: "127.0.0.1:2"}), clock, 1 << 20, queues=Wakes())
    wire = Wire(intake_b)
    maker = EnvelopeMaker(pki.signer(A), router_a, clock, lifetime_s=3600, max_size=1 << 20)
    disp = Dispatcher(db_a, maker, trust, router_a, clock, wire, POLICY, limits=SendLimits(batch_size=10),
                      rng=random.Random(7))
    out = Outgoing(db_a, maker, Wakes(), disp)

    class Side:
        pass

    s = Side()
    s.db_a, s.db_b, s.disp, s.out, s.wire, s.trust = db_a, db_b, disp, out, wire, trust
    yield s
    db_a.close()
    db_b.close()


def send(side, subject="doc", priority=0, lifetime_s=None, to=B):
    [(_, mid)] = side.out.post(pb.Payload(document=pb.Document(subject=subject)), [to], priority=priority,
                               lifetime_s=lifetime_s).envelopes
    return mid


def state_of(side, mid):
    return outbox.get(side.db_a, mid)


def test_delivery_is_marked_only_with_a_valid_receipt(side, pki):
    mid = send(side)
    assert side.disp.attempt(B) == DELIVERED
    row = state_of(side, mid)
    assert row["state"] == "delivered"
    body = receipts.verify(pb.Receipt.FromString(row["receipt"]), side.trust, expect_receiver=B,
                                   message_id=mid, envelope_digest=envelope.sha256(row["envelope"]))
    assert body.receiver == B
    assert inbox.get(side.db_b, mid) is not None
    assert side.disp.attempt(B) == IDLE


def test_failure_backs_off_with_jitter_and_persists(side, clock, tmp_path, pki):
    mid = send(side)
    side.wire.up = False
    t0 = clock.now_ms()
    assert side.disp.attempt(B) == BACKOFF
    st = peers.get(side.db_a, B)
    assert st.failures == 1 and "UNAVAILABLE" in st.last_error
    assert 0.8 * 2000 <= st.next_attempt_ms - t0 <= 1.4 * 2000
    assert state_of(side, mid)["state"] == "pending" and state_of(side, mid)["attempts"] == 1
    # not due yet: no call is made, even though the wire is back
    side.wire.up = True
    assert side.disp.attempt(B) == NOT_DUE
    assert side.wire.batches == []
    # a fresh dispatcher over the same file (a restart) sees the same state
    again = Dispatcher(side.db_a, side.disp.maker, side.trust, Router(A, {B: "x:1"}), clock, side.wire, POLICY)
    assert again.attempt(B) == NOT_DUE
    clock.advance(3.0)
    assert side.disp.attempt(B) == DELIVERED
    assert peers.get(side.db_a, B).failures == 0
    assert state_of(side, mid)["state"] == "delivered"


def test_backoff_grows_by_multiplier_and_is_capped():
    rng = random.Random(1)
    for failures, base in [(1, 2.0), (2, 6.0), (3, 18.0), (4, 54.0), (5, 60.0), (9, 60.0)]:
        d = POLICY.delay(failures, rng)
        assert 0.8 * base <= d <= 1.4 * base


def test_hop_that_comes_back_is_drained_at_full_speed(side, clock):
    ids = [send(side, f"d{i}") for i in range(25)]
    side.wire.up = False
    side.disp.attempt(B)
    side.wire.up = True
    clock.advance(10)
    results = []
    while (r := side.disp.attempt(B)) == DELIVERED:
        results.append(r)
    assert side.wire.batches == [10, 10, 5]
    assert all(state_of(side, m)["state"] == "delivered" for m in ids)
    assert inbox.count(side.db_b) == 25


def test_urgent_goes_ahead_of_normal(side):
    normal = [send(side, f"n{i}", priority=0) for i in range(12)]
    urgent = send(side, "urgent", priority=2)
    express = send(side, "express", priority=3)
    side.disp.attempt(B)
    first_batch = [e["message_id"] for e in inbox.list_entries(side.db_b)]
    assert first_batch[:2] == [express, urgent]
    assert len(first_batch) == 10 and normal[-1] not in first_batch


def test_expired_message_stops_retrying_and_notifies_sender(side, clock):
    mid = send(side, lifetime_s=30)
    side.wire.up = False
    side.disp.attempt(B)
    clock.advance(31)
    side.wire.up = True
    assert side.disp.expire_due() == 1
    row = state_of(side, mid)
    assert row["state"] == "expired" and row["reason"].startswith("EXPIRED")
    [notice] = inbox.list_entries(side.db_a)
    assert notice["kind"] == pb.NOTICE and notice["sender"] == A
    payload = envelope.verify(inbox.get(side.db_a, notice["message_id"])["envelope"], side.trust,
                              max_size=1 << 20, clock=clock).payload()
    assert payload.notice.ref_message_id == mid and payload.notice.reason == "EXPIRED"
    assert side.disp.attempt(B) == IDLE and side.wire.batches == []


def test_permanent_refusal_is_recorded_without_retry(side, clock, pki):
    # B refuses: the envelope is for C, whom B does not serve
    side.disp.router.peers[C] = "127.0.0.1:1"
    side.disp.router.peers.pop(B)
    [(_, mid)] = side.out.post(pb.Payload(document=pb.Document(subject="x")), [C]).envelopes
    outbox_row = state_of(side, mid)
    with side.db_a.transaction() as conn:  # misroute it to B on purpose
        conn.execute("UPDATE outbox SET next_hop = ? WHERE message_id = ?", (B, mid))
    side.disp.router.peers[B] = "127.0.0.1:1"
    assert side.disp.attempt(B) == DELIVERED  # the hop answered: no backoff
    row = state_of(side, mid)
    assert outbox_row["state"] == "pending"
    assert row["state"] == "rejected" and row["reason"].startswith("NOT_FOR_THIS_NODE")
    assert peers.get(side.db_a, B).failures == 0
    assert [e["kind"] for e in inbox.list_entries(side.db_a)] == [pb.NOTICE]
    assert side.disp.attempt(B) == IDLE


def test_receipt_from_the_wrong_node_is_not_accepted(side, clock, pki):
    mid = send(side)

    def forged(hop, address, envelopes):
        raw = envelopes[0]
        return to_outcomes([receipts.issue(pki.signer(C), [(mid, envelope.sha256(raw))], clock)[0]])

    side.wire.answer = forged
    assert side.disp.attempt(B) == BACKOFF
    assert state_of(side, mid)["state"] == "pending"
    assert "receipt signed by" in peers.get(side.db_a, B).last_error


def test_send_to_malformed_code_is_refused_and_queues_nothing(side):
    with pytest.raises(Rejected) as e:
        side.out.post(pb.Payload(document=pb.Document(subject="x")), ["not a code"])
    assert e.value.reason is Reason.INVALID_REQUEST
    assert outbox.counts(side.db_a) == {}


def test_recipient_nobody_registered_gets_a_notice_without_any_attempt(side, clock):
    """The tree says the code does not exist: recorded refused at once, the sender is told, nothing is retried."""
    def lookup(code):
        raise Rejected(Reason.UNKNOWN_RECIPIENT, f"no agency {code} is registered")

    side.out.lookup = lookup
    [(_, mid)] = side.out.post(pb.Payload(document=pb.Document(subject="x")), ["000.99.38.H53"]).envelopes
    row = state_of(side, mid)
    assert row["state"] == "rejected" and row["reason"].startswith("UNKNOWN_RECIPIENT")
    [notice] = inbox.list_entries(side.db_a)
    payload = envelope.verify(inbox.get(side.db_a, notice["message_id"])["envelope"], side.trust,
                              max_size=1 << 20, clock=clock).payload()
    assert payload.notice.ref_message_id == mid and payload.notice.reason == "UNKNOWN_RECIPIENT"
    assert side.wire.batches == []


def test_unreachable_lookup_still_queues_by_the_tree(side):
    """A lookup that could not finish is not a verdict: the envelope goes to the next hop as usual."""
    def lookup(code):
        raise Rejected(Reason.UNREACHABLE, "parent did not answer")

    side.out.lookup = lookup
    mid = send(side)
    assert state_of(side, mid)["state"] == "pending"


# ---- two batches in flight -------------------------------------------------------------------

def test_a_second_batch_in_flight_takes_other_envelopes_only_while_the_queue_is_deep(side):
    """Workers of one hop claim disjoint batches; a short second batch is not split off."""
    mids = [send(side, subject=f"d{i}") for i in range(25)]
    hop = side.disp.hop(B)
    first = hop.claim()
    second = hop.claim()  # 15 left beyond the first: at least half a batch (5)
    third = hop.claim()   # 5 left: still half a batch
    claimed = [p.message_id for p in first + second + third]
    assert [len(first), len(second), len(third)] == [10, 10, 5]
    assert sorted(claimed) == sorted(mids) and len(set(claimed)) == 25


def test_a_short_queue_waits_behind_the_batch_in_flight(side):
    for i in range(12):
        send(side, subject=f"d{i}")
    first = side.disp.hop(B).claim()
    assert len(first) == 10
    assert side.disp.hop(B).claim() == []  # 2 waiting: they travel with the next full attempt instead


def test_claims_are_released_when_the_attempt_ends(side):
    mid = send(side)
    side.wire.up = False
    assert side.disp.attempt(B) == BACKOFF
    side.wire.up = True
    # the failed attempt left nothing claimed: the envelope is offered again
    assert [p.message_id for p in side.disp.hop(B).claim()] == [mid]


def test_envelopes_being_readdressed_are_kept_from_claims_and_those_on_the_wire_named(side):
    """A succession re-addresses queued envelopes (node.exchange.follow): one on the wire is left to its
    outcome (named), the others no hop claims until the re-addressing ends, so none goes to its old next hop
    while it is given a new one (the merger run saw a document reach a retired code and its successor)."""
    on_wire = send(side, subject="on the wire")
    first = side.disp.hop(B).claim()
    assert [p.message_id for p in first] == [on_wire]
    waiting = [send(side, subject=f"d{i}") for i in range(12)]
    with side.disp.kept_from_claims([on_wire, *waiting]) as busy:
        assert busy == {on_wire}
        assert [p.message_id for p in side.disp.hop(B).claim()] == []
    first.release()
    assert sorted(p.message_id for p in side.disp.hop(B).claim()) == sorted([on_wire, *waiting[:9]])


def test_stop_waits_a_bounded_time_and_names_deliveries_still_in_flight(side):
    entered, release = threading.Event(), threading.Event()
    def stuck(hop, address, envelopes):
        entered.set()
        release.wait(30)  # a peer that does not answer until the test lets it
        return side.wire.receive(hop, address, envelopes)

    side.wire.answer = stuck
    send(side)
    side.disp.wake(B)
    assert entered.wait(10)
    busy = side.disp.stop(timeout=0.2)
    assert busy == [B]  # the hop whose batch is still on the wire
    release.set()
    assert side.disp.stop(timeout=10) == []


def test_an_envelope_never_travels_beside_the_one_it_refers_to(side):
    """The peer may commit two batches in either order: a revoke must not overtake its document."""
    doc = send(side, subject="document")
    fillers = [send(side, subject=f"f{i}") for i in range(14)]
    [(_, revoke)] = side.out.post(pb.Payload(document=pb.Document(subject="revoke")), [B],
                                  ref_message_id=doc).envelopes
    for i in range(10):
        send(side, subject=f"g{i}")
    hop = side.disp.hop(B)
    first = hop.claim()
    assert [p.message_id for p in first] == [doc, *fillers[:9]]
    second = hop.claim()
    assert [p.message_id for p in second] == fillers[9:]  # stops before the revoke
    assert hop.claim() == []                              # the revoke heads the queue: it waits
    # the document's batch comes back delivered: the revoke may go, even beside the other batch
    with side.db_a.transaction() as conn:
        outbox.mark_delivered(conn, [(p.message_id, pb.Receipt()) for p in first], B, 0)
    first.release()
    assert hop.claim()[0].message_id == revoke


@pytest.mark.parametrize("reason, final", [("BAD_SIGNATURE", True), ("INTERNAL", False), ("MADE_UP_REASON", False)])
def test_a_peers_refusal_is_final_only_for_a_permanent_catalogue_reason(side, reason, final):
    """An unknown or transient reason keeps the envelope for a retry (the hop backs off); only a
    permanent reason from the catalogue ends its journey with a notice."""
    mid = send(side)
    side.wire.answer = lambda hop, address, envelopes: [
        xpb.Outcome(rejection=xpb.Rejection(reason=reason, message="nein\x00" + "x" * 1000)) for _ in envelopes]
    assert side.disp.attempt(B) == (DELIVERED if final else BACKOFF)
    row = state_of(side, mid)
    assert row["state"] == ("rejected" if final else "pending")
    assert len(row["reason"]) < 400 and "\x00" not in row["reason"]


def test_an_envelope_deferred_before_the_wire_holds_back_neither_its_hop_nor_the_mail_behind_it(side, clock):
    """late_seal defers an envelope whose recipient has no record anywhere yet (sealing.mode required): it
    must not count as the hop failing, nor be claimed again at every attempt ahead of younger mail."""
    held_back: set[str] = set()

    def prepare(batch):
        return Prepared([p for p in batch if p.message_id not in held_back],
                        deferred=[(p.message_id, "no record of it yet") for p in batch if p.message_id in held_back])
    disp = Dispatcher(side.db_a, side.disp.maker, side.trust, Router(A, {B: "127.0.0.1:1"}), clock, side.wire,
                      POLICY, limits=SendLimits(batch_size=1), rng=random.Random(7), prepare=prepare)
    x, y = send(side, "older, deferred"), send(side, "younger")
    held_back.add(x)
    assert disp.attempt(B) == DELIVERED  # x set aside: progress, not a failure
    assert peers.get(side.db_a, B).failures == 0 and state_of(side, x)["attempts"] == 1
    assert disp.attempt(B) == DELIVERED and state_of(side, y)["state"] == "delivered"
    assert disp.attempt(B) == IDLE       # x is not claimed again before its time
    clock.advance(POLICY.max_delay)
    held_back.clear()
    assert disp.attempt(B) == DELIVERED and state_of(side, x)["state"] == "delivered"


def test_workers_racing_on_one_hop_while_mail_is_posted_send_each_envelope_once(side):
    """Claims read the queue off the writer's lock (a reader): a batch delivered and released by one worker
    is never claimed again by another, and mail posted meanwhile is all delivered, once."""
    first, later = 60, 20
    mids = [send(side, f"d{i}") for i in range(first)]
    hop = side.disp.hop(B)
    start = threading.Barrier(3)
    posted: list[str] = []

    def work() -> None:
        start.wait(20)
        while hop.attempt() is not IDLE:
            pass

    def post() -> None:
        start.wait(20)
        posted.extend(send(side, f"later{i}") for i in range(later))

    threads = [threading.Thread(target=work), threading.Thread(target=work), threading.Thread(target=post)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    while hop.attempt() is not IDLE:  # what was posted after both workers found the queue empty
        pass
    assert sum(side.wire.batches) == first + later  # no envelope handed over twice
    assert {state_of(side, m)["state"] for m in mids + posted} == {"delivered"}
    assert inbox.count(side.db_b) == first + later


def test_an_envelope_delivered_after_the_expiry_sweep_read_it_is_left_delivered_and_nobody_is_told(
        side, clock, monkeypatch):
    """The sweep reads expired mail outside its transaction; a delivery committing in between wins, and
    no non-delivery notice or audit row claims the envelope failed."""
    mid = send(side, lifetime_s=30)
    clock.advance(31)
    stale = outbox.expired_pending(side.db_a, clock.now_ms())  # the sweep's read ...
    with side.db_a.transaction() as tx:  # ... then a delivery commits before the sweep's transaction
        outbox.mark_delivered(tx, [(mid, pb.Receipt())], B, clock.now_ms())
    monkeypatch.setattr(outbox, "expired_pending", lambda db, now_ms, limit=500: stale)
    side.disp.expire_due()
    assert state_of(side, mid)["state"] == "delivered"
    assert inbox.list_entries(side.db_a) == []
    assert not [r for r in audit.recent(side.db_a) if r["event"] == audit.EXPIRED]


def test_a_refusal_about_one_envelope_holds_back_that_envelope_not_the_hop(side, clock):
    """PARK_FULL (the relay's quota for the envelope's origin is full) is about that envelope: it waits on a
    backoff of its own, the hop's other mail goes meanwhile, the hop's backoff is untouched, and the hop
    coming back (a heartbeat) does not release it; an operator's retry does."""
    junk, other = send(side, "junk"), None
    side.wire.answer = lambda hop, address, envelopes: [
        xpb.Outcome(rejection=xpb.Rejection(reason="PARK_FULL", message="full"))
        if pb.Header.FromString(pb.Envelope.FromString(e).header).message_id == junk
        else side.wire.receive(hop, address, [e])[0] for e in envelopes]
    assert side.disp.attempt(B) == DELIVERED  # held back: progress, not a failure of the hop
    assert peers.get(side.db_a, B).failures == 0 and state_of(side, junk)["attempts"] == 1
    other = send(side, "honest")
    assert side.disp.attempt(B) == DELIVERED and state_of(side, other)["state"] == "delivered"
    assert side.disp.attempt(B) == IDLE  # junk is not claimed again before its own time
    side.disp.wake = lambda hop: None  # no sender threads: this test drives every attempt
    with side.db_a.transaction() as tx:  # the link failed meanwhile (a timeout), then B beats again:
        peers.record_failure(tx, B, 1, clock.now_ms() + 1, "timeout")
    assert side.disp.peer_returned(B, "heartbeat")  # its backoff and deferrals are forgotten ...
    assert side.disp.attempt(B) == IDLE  # ... but not this: the link coming back is not the quota freeing up
    clock.advance(POLICY.max_delay * 1.4)
    assert side.disp.attempt(B) == DELIVERED and state_of(side, junk)["attempts"] == 2  # refused again, later
    assert peers.get(side.db_a, B).failures == 0
    side.disp.retry_now(B)  # the operator's word releases it at once
    side.wire.answer = None
    assert side.disp.attempt(B) == DELIVERED and state_of(side, junk)["state"] == "delivered"


def test_a_calm_neighbour_beating_again_asks_the_mailbox_nothing_until_a_commit(side, clock, monkeypatch):
    """Every heartbeat, both ways, tells the dispatcher its neighbour answered. With no backoff and no mail for
    it the answer holds until the mailbox's next commit: asked once, not once per beat (a host of a thousand)."""
    asked = []
    real = peers.get
    monkeypatch.setattr(peers, "get", lambda db, code: asked.append(code) or real(db, code))
    woken = []
    side.disp.wake = woken.append  # no sender threads: this test sees what would be sent
    assert not side.disp.peer_returned(B, "heartbeat")
    assert not side.disp.peer_returned(B, "heartbeat")
    assert asked == [B] and woken == []
    with side.db_a.transaction() as tx:  # a commit: the link failed meanwhile
        peers.record_failure(tx, B, 1, clock.now_ms() + 1, "timeout")
    assert side.disp.peer_returned(B, "heartbeat")  # its backoff is forgotten, its queue woken
    assert asked == [B, B] and woken == [B]
    send(side)  # mail for it (a commit): the next beat finds it and wakes the hop
    woken.clear()
    assert not side.disp.peer_returned(B, "heartbeat") and woken == [B]


def test_receipts_are_verified_before_the_writer_is_taken(side, monkeypatch):
    """The hand-over's transaction only writes: each receipt (its envelope hashed, its batch's signature
    checked) is verified before it, so commits, claims and API writes do not wait behind that work."""
    mids = [send(side, f"doc {i}") for i in range(3)]
    checked = []
    real = receipts.Verifier.verify

    def verify(self, *args, **kw):
        checked.append(side.db_a.in_own_transaction())
        return real(self, *args, **kw)
    monkeypatch.setattr(receipts.Verifier, "verify", verify)
    assert side.disp.attempt(B) == DELIVERED
    assert checked == [False] * 3
    assert all(state_of(side, m)["state"] == "delivered" for m in mids)


def test_the_delivered_row_names_the_receipt_stored_for_it(side):
    """Each delivered envelope's audit row carries the SHA-256 of exactly the receipt its outbox row keeps
    (the receipt is encoded once for both)."""
    import hashlib
    mids = [send(side, f"doc {i}") for i in range(3)]
    assert side.disp.attempt(B) == DELIVERED
    rows = {r["message_id"]: r["detail"] for r in audit.recent(side.db_a, event=audit.DELIVERED)}
    for m in mids:
        assert rows[m] == f"receipt sha256 {hashlib.sha256(state_of(side, m)['receipt']).hexdigest()}"


class StageRecorder:
    """A Recorder that keeps each batch's stage timings (node.metrics.Recorder's other calls do nothing)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, float]]] = []

    def delivered(self, hop, latencies_s):
        pass

    def sent_batch(self, hop, size):
        pass

    def gave_up(self, reason):
        pass

    def received(self, size, refused_reasons):
        pass

    def stages(self, direction, seconds):
        self.seen.append((direction, dict(seconds)))


def test_each_batch_reports_where_its_time_went_on_both_sides(side, pki, clock):
    """One hand-over: the sender times claim, deliver, receipts and record, the receiver check, prepare and
    custody, once per batch; a failed hand-over reports no stages (it has no outcome to time)."""
    from node.metrics import IN_STAGES, OUT_STAGES
    out_rec, in_rec = StageRecorder(), StageRecorder()
    side.disp.metrics = out_rec  # before the hop's first attempt: its HopSender is made with it
    side.wire.intake.metrics = in_rec
    send(side)
    send(side)
    assert side.disp.attempt(B) == DELIVERED
    assert [d for d, _ in out_rec.seen] == ["out"] and tuple(out_rec.seen[0][1]) == OUT_STAGES
    assert [d for d, _ in in_rec.seen] == ["in"] and tuple(in_rec.seen[0][1]) == IN_STAGES
    assert all(s >= 0 for _, stages in out_rec.seen + in_rec.seen for s in stages.values())
    # the receiver's stages happened inside the sender's deliver stage
    assert out_rec.seen[0][1]["deliver"] >= sum(in_rec.seen[0][1].values())
    send(side)
    side.wire.up = False
    assert side.disp.attempt(B) == BACKOFF
    assert len(out_rec.seen) == 1
