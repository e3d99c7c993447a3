"""Hand our envelopes to next hops: one queue per hop, two batches in flight, persisted backoff.

As in Synapse's federation sender, each next hop has its own queue; unlike it, each
hop has WINDOW workers taking disjoint batches, so the receiver verifies and commits
one batch while the next is on the wire (per-id dedup makes any overlap harmless).
A second batch goes out only while at least half a batch is waiting: at moderate load,
envelopes gather behind the one in flight instead of travelling in tiny batches, whose
per-call gRPC cost (~1 ms of CPU here) would dominate. The peer may commit the two in
either order, so an envelope that refers to one in flight (a revoke to its document)
waits for the next batch.

A failure pushes that hop's next attempt out by
first_delay × multiplier^(n-1), capped, times a random jitter factor, and the state
is written to the database so a restart keeps it. A hop that answers again is
drained at full speed. Retry timing reads the injected clock; APScheduler only
wakes workers, so tests drive `attempt()` directly with a fake clock.
"""
from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable

from .. import envelope as env_mod
from .. import receipts
from ..clock import Clock
from ..envelope import Signer
from ..errors import Reason, Rejected
from ..identity.trust import TrustStore
from .. import events
from ..pb import envelope_pb2 as pb
from ..store import inbox, outbox, peers
from ..store.database import Database
from .routing import Router
from .transport import TransportError

log = logging.getLogger(__name__)

IDLE, DELIVERED, BACKOFF, NOT_DUE = "idle", "delivered", "backoff", "not_due"
WINDOW = 2  # batches in flight per next hop, the second only when the queue is deep


@dataclass(frozen=True)
class RetryPolicy:
    first_delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 600.0
    jitter: tuple[float, float] = (0.8, 1.4)

    def delay(self, failures: int, rng: random.Random) -> float:
        base = min(self.max_delay, self.first_delay * self.multiplier ** max(0, failures - 1))
        return base * rng.uniform(*self.jitter)


class Dispatcher:
    def __init__(self, db: Database, signer: Signer, trust: TrustStore, router: Router, clock: Clock,
                 deliver: Callable[[str, str, list[bytes]], list], policy: RetryPolicy, *,
                 batch_size: int = 64, max_batch_bytes: int = 4 << 20, notice_lifetime_s: float = 7 * 86400,
                 schedule_wake: Callable[[str, float], None] | None = None, rng: random.Random | None = None,
                 emit: Callable[..., None] | None = None) -> None:
        self.db, self.signer, self.trust, self.router, self.clock = db, signer, trust, router, clock
        self.deliver = deliver
        self.policy = policy
        self.batch_size, self.max_batch_bytes = batch_size, max_batch_bytes
        self.notice_lifetime_s = notice_lifetime_s
        self.schedule_wake = schedule_wake
        self.rng = rng or random.Random()
        self._events: dict[str, threading.Event] = {}
        self._threads: dict[str, list[threading.Thread]] = {}
        self._in_flight: dict[str, set[str]] = {}  # message ids on the wire, per hop
        self._claims = threading.Lock()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.emit: Callable[..., None] = emit or (lambda type_, **fields: None)  # an EventBus.emit

    # ---- workers ---------------------------------------------------------------

    def wake(self, hop: str) -> None:
        if self._stopping.is_set():
            return
        with self._lock:
            event = self._events.get(hop)
            if event is None:
                event = self._events[hop] = threading.Event()
                self._threads[hop] = [threading.Thread(target=self._worker, args=(hop, event), name=f"send-{hop}-{i}",
                                                       daemon=True) for i in range(WINDOW)]
                for t in self._threads[hop]:
                    t.start()
        event.set()

    def wake_all_due(self) -> None:
        """Safety net and restart path: wake every hop with pending mail whose backoff is over."""
        now = self.clock.now_ms()
        for hop in outbox.hops_with_pending(self.db):
            if peers.get(self.db, hop).next_attempt_ms <= now:
                self.wake(hop)

    def _worker(self, hop: str, event: threading.Event) -> None:
        while not self._stopping.is_set():
            event.wait()
            event.clear()
            while not self._stopping.is_set():
                try:
                    result = self.attempt(hop)
                except Exception:
                    log.exception("delivery to %s failed unexpectedly", hop)
                    result = BACKOFF
                if result != DELIVERED:
                    break

    def stop(self, timeout: float = 10.0) -> list[str]:
        """Let batches in flight finish (their outcome is committed), then stop the workers.

        `timeout` bounds the whole wait, not each worker's; returns the workers still busy."""
        self._stopping.set()
        with self._lock:
            for e in self._events.values():
                e.set()
            threads = [t for ts in self._threads.values() for t in ts]
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return [t.name for t in threads if t.is_alive()]

    # ---- one attempt ----------------------------------------------------------

    def attempt(self, hop: str) -> str:
        now = self.clock.now_ms()
        state = peers.get(self.db, hop)
        if state.next_attempt_ms > now:
            return NOT_DUE
        batch = self._claim(hop)
        if not batch:
            return IDLE
        try:
            return self._attempt(hop, state, now, batch)
        finally:
            with self._claims:
                self._in_flight[hop].difference_update(p.message_id for p in batch)

    def _claim(self, hop: str) -> list[outbox.Pending]:
        """The next batch for `hop` that no other worker has on the wire."""
        with self._claims:
            taken = self._in_flight.setdefault(hop, set())
            if taken and not outbox.pending_at_least(self.db, hop, len(taken) + max(1, self.batch_size // 2)):
                return []  # a short second batch would only split what the first worker sends next
            rows = outbox.next_batch(self.db, hop, self.batch_size, self.max_batch_bytes, skip=taken)
            if taken:  # the peer may commit this batch first: nothing may overtake what it refers to
                cut = next((i for i, p in enumerate(rows) if p.ref_message_id in taken), len(rows))
                rows = rows[:cut]
            taken.update(p.message_id for p in rows)
        return rows

    def _attempt(self, hop: str, state, now: int, batch: list[outbox.Pending]) -> str:
        live = [p for p in batch if p.expires_ms >= now]
        if len(live) < len(batch):
            with self.db.transaction() as conn:
                for p in batch:
                    if p.expires_ms < now:
                        self._finish(conn, p, hop, outbox.EXPIRED, Reason.EXPIRED.name, "lifetime ended before delivery")
            if not live:
                return DELIVERED  # made progress; look again
        address = self.router.address(hop)
        try:
            if address is None:
                raise TransportError(f"no address known for {hop}")
            outcomes = self.deliver(hop, address, [p.envelope for p in live])
        except TransportError as e:
            self._backoff(hop, state.failures + 1, [p.message_id for p in live], str(e))
            return BACKOFF
        bad_receipts = []
        delivered: list[tuple[outbox.Pending, pb.Receipt]] = []
        verifier = receipts.Verifier(self.trust)
        with self.db.transaction(durable=False) as conn:
            for p, outcome in zip(live, outcomes):
                which = outcome.WhichOneof("result")
                if which == "receipt":
                    try:
                        verifier.verify(outcome.receipt, expect_receiver=hop, message_id=p.message_id,
                                        envelope_digest=env_mod.sha256(p.envelope))
                    except Rejected as r:
                        bad_receipts.append((p.message_id, r.public_text))
                        continue
                    delivered.append((p, outcome.receipt))
                else:
                    rej = outcome.rejection
                    self._finish(conn, p, hop, outbox.REJECTED, rej.reason, rej.message)
            outbox.mark_delivered(conn, [(p.message_id, r) for p, r in delivered], hop, now)
            if bad_receipts:
                outbox.note_attempt(conn, [m for m, _ in bad_receipts], bad_receipts[0][1])
            else:
                peers.record_success(conn, hop, now)
        for p, _ in delivered:
            self.emit(events.DELIVERED, message_id=p.message_id, peer=hop, recipient=p.recipient, kind=p.kind,
                      time_ms=now)
        if bad_receipts:
            log.warning("bad receipts from %s: %s", hop, bad_receipts[0][1])
            self._backoff(hop, state.failures + 1, [], bad_receipts[0][1])
            return BACKOFF
        return DELIVERED

    def _backoff(self, hop: str, failures: int, message_ids: list[str], error: str) -> None:
        delay = self.policy.delay(failures, self.rng)
        with self.db.transaction(durable=False) as conn:
            peers.record_failure(conn, hop, failures, self.clock.now_ms() + int(delay * 1000), error)
            outbox.note_attempt(conn, message_ids, error)
        log.info("hop %s unavailable (%s); retry %d in %.1fs", hop, error, failures, delay)
        if self.schedule_wake:
            self.schedule_wake(hop, delay)

    # ---- giving up ------------------------------------------------------------

    def expire_due(self) -> int:
        rows = outbox.expired_pending(self.db, self.clock.now_ms())
        if rows:
            with self.db.transaction() as conn:
                for r in rows:
                    p = outbox.Pending(0, r["message_id"], r["sender"], r["recipient"], r["kind"], r["priority"], 0, b"")
                    self._finish(conn, p, r["next_hop"], outbox.EXPIRED, Reason.EXPIRED.name, "lifetime ended before delivery")
        return len(rows)

    def refuse(self, conn, header: pb.Header, raw: bytes, hop: str, subject: str, why: Rejected,
               doc_id: str | None = None) -> None:
        """Record a new envelope that cannot be delivered at all (inside the caller's transaction)."""
        now = self.clock.now_ms()
        outbox.enqueue_in(conn, header, raw, hop or "-", subject, now, doc_id=doc_id)
        p = outbox.Pending(0, header.message_id, header.sender, header.recipient, header.kind, header.priority,
                           header.expires_ms, raw)
        self._finish(conn, p, hop or "-", outbox.REJECTED, why.reason.name, why.detail or why.reason.public_message)

    def _finish(self, conn, p: outbox.Pending, hop: str, state: str, reason: str, detail: str) -> None:
        """Final failure of one envelope: record it, and tell the original sender (never for a notice)."""
        now = self.clock.now_ms()
        outbox.mark_final(conn, p.message_id, hop, state, f"{reason}: {detail}", now)
        conn.on_commit(lambda: self.emit(
            events.REJECTED if state == outbox.REJECTED else events.EXPIRED, message_id=p.message_id,
            peer=hop, recipient=p.recipient, kind=p.kind, time_ms=now, reason=reason))
        if p.kind == pb.NOTICE:
            return
        notice = pb.Payload(notice=pb.Notice(ref_message_id=p.message_id, recipient=p.recipient, reason=reason, detail=detail))
        header, raw = env_mod.seal(self.signer, p.sender, notice, clock=self.clock,
                                   lifetime_s=self.notice_lifetime_s, priority=p.priority, ref_message_id=p.message_id)
        subject = f"not delivered: {reason}"
        if p.sender == self.signer.code:
            inbox.add_in(conn, header, subject=subject, now_ms=now, envelope=raw)
            conn.on_commit(lambda: self.emit(
                events.ARRIVED, message_id=header.message_id, peer=header.sender, recipient=header.recipient,
                kind=header.kind, time_ms=now, reason=reason))
            return
        try:
            back = self.router.next_hop(p.sender)
        except LookupError:
            log.warning("cannot route non-delivery notice for %s back to %s", p.message_id, p.sender)
            return
        outbox.enqueue_in(conn, header, raw, back, subject, self.clock.now_ms(), origin="relay")
        conn.on_commit(lambda: self.wake(back))


def apscheduler_wake(scheduler, wake: Callable[[str], None]) -> Callable[[str, float], None]:
    def schedule(hop: str, delay: float) -> None:
        scheduler.add_job(wake, "date", run_date=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=delay),
                          args=[hop], id=f"retry:{hop}", replace_existing=True, misfire_grace_time=None)
    return schedule
