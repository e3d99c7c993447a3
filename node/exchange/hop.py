"""One next hop's queue: its claims, its attempts, its backoff; its place in the send pool.

As in Synapse's per-destination queue, each next hop is sent to on its own; unlike it,
up to WINDOW workers of the shared send pool (node.exchange.send_pool) take disjoint
batches of one hop, so the receiver verifies and commits one batch while the next is on
the wire (per-id dedup makes any overlap harmless).
A second batch goes out only while at least half a batch is waiting: at moderate load,
envelopes gather behind the one in flight instead of travelling in tiny batches, whose
per-call gRPC cost (~1 ms of CPU here) would dominate. The peer may commit the two in
either order, so an envelope that refers to one in flight (a revoke to its document)
waits for the next batch.

A failure pushes the hop's next attempt out by first_delay × multiplier^(n-1), capped,
times a random jitter factor; the state is written to the database so a restart keeps
it. A hop that answers again is drained at full speed. Retry timing reads the injected
clock; the Timer only wakes the hop (queues it in the pool), so tests drive `attempt()` with
a fake clock.
"""
from __future__ import annotations

import enum
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

from .. import envelope as env_mod
from .. import events, logs, receipts
from ..clock import Clock
from ..errors import Reason, Rejected, bounded
from ..identity.trust import TrustStore
from ..pb import envelope_pb2 as pb
from ..pb import exchange_pb2 as xpb
from ..store import outbox, peers
from ..store.database import Database, Transaction
from ..events import EventSink
from ..metrics import NO_METRICS, Recorder
from .protocols import Timer
from .routing import Router
from .send_pool import Owner, Step
from ..transport.interface import TransportError

log = logging.getLogger(__name__)

WINDOW = 2  # batches in flight per next hop (pool workers on it), the second only when the queue is deep


class Outcome(enum.Enum):
    """What one attempt did; the pool queues the hop again only after DELIVERED."""
    DELIVERED = "delivered"  # progress was made (a batch handed over, or expired ones settled): look again
    IDLE = "idle"            # nothing to send (or nothing this worker may take now)
    BACKOFF = "backoff"      # the hop failed; its next attempt is scheduled
    NOT_DUE = "not_due"      # the hop is still backing off


_STEPS = {Outcome.DELIVERED: Step.AGAIN, Outcome.IDLE: Step.DONE, Outcome.NOT_DUE: Step.DONE,
          Outcome.BACKOFF: Step.FAILED}


@dataclass(frozen=True)
class RetryPolicy:
    first_delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 600.0
    jitter: tuple[float, float] = (0.8, 1.4)

    def delay(self, failures: int, rng: random.Random) -> float:
        base = min(self.max_delay, self.first_delay * self.multiplier ** max(0, failures - 1))
        return base * rng.uniform(*self.jitter)


@dataclass(frozen=True)
class SendLimits:
    batch_size: int = 64
    max_batch_bytes: int = 4 << 20


Deliver = Callable[[str, str, list[bytes]], list]  # (hop, address, envelopes) -> one outcome each


class GiveUp(Protocol):
    def __call__(self, tx: Transaction, p: outbox.Pending, hop: str, state: str, reason: str, detail: str) -> None:
        """Final failure of one envelope: record it and tell its sender (see Dispatcher.give_up)."""


def is_permanent(reason: str) -> bool:
    """A peer's refusal ends an envelope's journey only for a catalogue reason that is permanent;
    anything else (a transient reason, or one we do not know) is retried."""
    known = Reason.__members__.get(reason)
    return known is not None and known.permanent


# transient refusals about one envelope, not the link: those envelopes wait on a backoff of their own (their
# attempts), the hop's other mail goes on, and the link's backoff is untouched (a relay's PARK_FULL for one
# origin's junk once held a province's whole hop back, and every heartbeat from below undid the backoff)
ENVELOPE_TRANSIENT = frozenset({Reason.PARK_FULL.wire})


PEER_TEXT = 300  # characters of a peer's refusal kept in our outbox row, log and notice


def _peer_text(rejection) -> str:
    """A peer's words, bounded and printable, for our log and database (never shown as ours)."""
    return bounded(f"{rejection.reason}: {rejection.message}", PEER_TEXT)


class Claim(list):
    """A batch this hop's worker holds: no other worker sends it until `release()`."""

    def __init__(self, items: list[outbox.Pending], release: Callable[[], None]) -> None:
        super().__init__(items)
        self.release = release


@dataclass
class Prepared:
    """What goes out of a claimed batch (HopSender.prepare; node.exchange.late_seal)."""

    ready: list[outbox.Pending]                       # to hand over now (resealed where needed)
    waiting: list[tuple[str, str]] = field(default_factory=list)    # (message id, why): kept; the link's fault
    deferred: list[tuple[str, str]] = field(default_factory=list)   # (message id, why): kept; the recipient's
    refused: list[tuple[outbox.Pending, Rejected]] = field(default_factory=list)  # given up


def ready_as_is(batch: list[outbox.Pending]) -> Prepared:
    return Prepared(list(batch))


class HopSender:
    def __init__(self, hop: str, db: Database, trust: TrustStore, router: Router, clock: Clock, deliver: Deliver,
                 policy: RetryPolicy, limits: SendLimits, *, give_up: GiveUp, events_: EventSink,
                 timer: Timer | None, rng: random.Random, pool: Owner, metrics: Recorder = NO_METRICS,
                 paused: Callable[[], bool] = lambda: False,
                 prepare: Callable[[list[outbox.Pending]], Prepared] | None = None) -> None:
        self.metrics = metrics
        self.prepare = prepare or ready_as_is  # what is sent as is, made again, kept or given up (late_seal)
        self.paused = paused  # true while this node may not hand anything over (a stale CRL): the queue waits
        self.hop, self.db, self.trust, self.router, self.clock = hop, db, trust, router, clock
        self.deliver, self.policy, self.limits = deliver, policy, limits
        self.give_up, self.events, self.timer, self.rng = give_up, events_, timer, rng
        self._in_flight: set[str] = set()  # message ids on the wire
        self._claims = threading.Lock()
        self._task = pool.task(hop, self._run)

    # ---- in the send pool ---------------------------------------------------------

    def wake(self) -> None:
        """Queue this hop in the pool (a no-op while WINDOW attempts of it are queued or running)."""
        self._task.wake()

    def _run(self) -> Step:
        """One attempt in a pool worker."""
        try:
            outcome = self.attempt()
        except Exception:
            log.exception("delivery to %s failed unexpectedly", self.hop, extra=logs.fields(hop=self.hop))
            return Step.FAILED
        return _STEPS[outcome]

    # ---- one attempt ------------------------------------------------------------

    def claim(self) -> Claim:
        """The next batch that no other worker has on the wire (empty: nothing this worker may take)."""
        with self._claims:
            taken = self._in_flight
            if taken and not outbox.pending_at_least(self.db, self.hop, len(taken) + max(1, self.limits.batch_size // 2)):
                return Claim([], lambda: None)  # a short second batch would only split what the first worker sends next
            rows = outbox.next_batch(self.db, self.hop, self.limits.batch_size, self.limits.max_batch_bytes, skip=taken,
                                     now_ms=self.clock.now_ms())
            if taken:  # the peer may commit this batch first: nothing may overtake what it refers to
                cut = next((i for i, p in enumerate(rows) if p.ref_message_id in taken), len(rows))
                rows = rows[:cut]
            ids = [p.message_id for p in rows]
            taken.update(ids)

        def release() -> None:
            with self._claims:
                self._in_flight.difference_update(ids)
        return Claim(rows, release)

    def keep_from_claims(self, ids: set[str]) -> set[str]:
        """Keep `ids` out of this hop's next claims (they are being re-addressed) and return those of them on the
        wire now, which are left to their outcome; `give_back` ends it for the rest."""
        with self._claims:
            busy = ids & self._in_flight
            self._in_flight.update(ids - busy)
            return busy

    def give_back(self, ids: set[str]) -> None:
        with self._claims:
            self._in_flight.difference_update(ids)

    def attempt(self) -> Outcome:
        now = self.clock.now_ms()
        state = peers.get(self.db, self.hop)
        if state.next_attempt_ms > now or state.held or self.paused():
            return Outcome.NOT_DUE
        started = time.perf_counter()
        batch = self.claim()
        if not batch:
            return Outcome.IDLE
        try:
            return self._send(state, now, batch, time.perf_counter() - started)
        finally:
            batch.release()

    def _send(self, state: peers.PeerState, now: int, batch: list[outbox.Pending], claim_s: float = 0.0) -> Outcome:
        """Hand `batch` over and record its outcome; `claim_s`, how long claiming it took, goes to the stage metric
        with the hand-over's own stages (node.metrics.OUT_STAGES)."""
        live = [p for p in batch if p.expires_ms >= now]
        if len(live) < len(batch):
            with self.db.transaction() as tx:
                for p in batch:
                    if p.expires_ms < now:
                        self.give_up(tx, p, self.hop, outbox.EXPIRED, Reason.EXPIRED.name, "lifetime ended before delivery")
            if not live:
                return Outcome.DELIVERED  # made progress; look again
        sealing = time.perf_counter()
        prepared = self.prepare(live)
        seal_s = time.perf_counter() - sealing
        live = prepared.ready
        if prepared.waiting or prepared.deferred or prepared.refused:
            with self.db.transaction() as tx:
                for p, why in prepared.refused:
                    self.give_up(tx, p, self.hop, outbox.REJECTED, why.reason.name, why.public_text)
                if prepared.deferred:
                    self._defer(tx, prepared.deferred, now)
                if prepared.waiting:
                    outbox.note_attempt(tx, [m for m, _ in prepared.waiting], prepared.waiting[0][1])
            if not live:
                if prepared.waiting:  # the tree cannot be asked through this link: it backs off like a failure
                    self._back_off(state.failures + 1, [], prepared.waiting[0][1])
                    return Outcome.BACKOFF
                return Outcome.DELIVERED  # made progress (the rest of the queue is claimable): look again
        address = self.router.address(self.hop)
        try:
            if address is None:
                raise TransportError(f"no address known for {self.hop}")
            self.metrics.sent_batch(self.hop, len(live))
            handed = time.perf_counter()
            outcomes = self.deliver(self.hop, address, [p.envelope for p in live])
            answered = time.perf_counter()
        except TransportError as e:
            self._back_off(state.failures + 1, [p.message_id for p in live], str(e))
            return Outcome.BACKOFF
        bad_receipts: list[tuple[str, str]] = []
        retry_later: list[tuple[str, str]] = []
        held_back: list[tuple[str, int, str]] = []  # (message id, not claimed before, the peer's text)
        delivered: list[tuple[outbox.Pending, pb.Receipt]] = []
        rejected: list[tuple[outbox.Pending, xpb.Rejection]] = []  # refused for good
        verifier = receipts.Verifier(self.trust)
        # every outcome judged, and every receipt verified (its envelope hashed, its batch's signature checked),
        # before the writer is taken: the transaction below only writes
        for p, outcome in zip(live, outcomes):
            if outcome.WhichOneof("result") == "receipt":
                try:
                    verifier.verify(outcome.receipt, expect_receiver=self.hop, message_id=p.message_id,
                                    envelope_digest=env_mod.sha256(p.envelope))
                except Rejected as r:
                    bad_receipts.append((p.message_id, r.public_text))
                    continue
                delivered.append((p, outcome.receipt))
            elif is_permanent(outcome.rejection.reason):
                rejected.append((p, outcome.rejection))
            elif outcome.rejection.reason in ENVELOPE_TRANSIENT:
                delay = self.policy.delay(p.attempts + 1, self.rng)
                held_back.append((p.message_id, now + int(delay * 1000), _peer_text(outcome.rejection)))
            else:  # a refusal that may pass (or a reason we do not know): kept, and the hop backs off
                retry_later.append((p.message_id, _peer_text(outcome.rejection)))
        verified = time.perf_counter()
        with self.db.transaction(durable=False) as tx:
            for p, rej in rejected:
                self.give_up(tx, p, self.hop, outbox.REJECTED, bounded(rej.reason, 64), bounded(rej.message, PEER_TEXT))
            for message_id, until, text in held_back:
                outbox.hold_back(tx, [(message_id, until)], text)
            outbox.mark_delivered(tx, [(p.message_id, r) for p, r in delivered], self.hop, now)
            failed = bad_receipts + retry_later
            if failed:
                outbox.note_attempt(tx, [m for m, _ in failed], failed[0][1])
            else:
                peers.record_success(tx, self.hop, now)
                if state.failures:
                    log.info("link to %s is back: delivered after %d failed attempts", self.hop, state.failures,
                             extra=logs.fields(hop=self.hop))
            if delivered:
                tx.on_commit(lambda: self._count_delivered([p for p, _ in delivered]))
            for p, _ in delivered:
                tx.on_commit(lambda p=p: self.events.emit(events.DELIVERED, message_id=p.message_id, peer=self.hop,
                                                          recipient=p.recipient, kind=p.kind, time_ms=now,
                                                          seq=p.seq))
        self.metrics.stages("out", {"claim": claim_s, "seal": seal_s, "deliver": answered - handed,
                                    "receipts": verified - answered, "record": time.perf_counter() - verified})
        if bad_receipts:
            log.warning("bad receipts from %s: %s", self.hop, bad_receipts[0][1],
                        extra=logs.fields(hop=self.hop, message_id=bad_receipts[0][0], reason=Reason.BAD_RECEIPT))
        if retry_later:
            log.warning("%s refused %d envelopes for now (kept for a retry): %s", self.hop, len(retry_later),
                        retry_later[0][1], extra=logs.fields(hop=self.hop, message_id=retry_later[0][0]))
        if held_back:
            first = min(when for _, when, _ in held_back)
            log.info("%s refused %d envelopes for now on their own account (PARK_FULL): each retried after its own "
                     "backoff, the hop's other mail goes on", self.hop, len(held_back), extra=logs.fields(hop=self.hop))
            if self.timer is not None:
                self.timer.call_later(f"held-back:{self.hop}", max(0.0, (first - now) / 1000), self.wake)
        if failed:
            self._back_off(state.failures + 1, [], failed[0][1])
            return Outcome.BACKOFF
        return Outcome.DELIVERED

    def _count_delivered(self, delivered: list[outbox.Pending]) -> None:
        done = self.clock.now_ms()  # the receipt is verified and committed: the latency ends here
        self.metrics.delivered(self.hop, [(done - p.created_ms) / 1000 for p in delivered])

    def _defer(self, tx: Transaction, waiting: list[tuple[str, str]], now: int) -> None:
        """Envelopes that may not go yet (their recipient has no record anywhere yet) wait on their own, for
        the longest retry delay (or an admin's retry), not holding back the hop's other mail, and are not
        claimed again meanwhile."""
        delay = self.policy.max_delay
        outbox.defer(tx, [m for m, _ in waiting], now + int(delay * 1000), waiting[0][1])
        log.info("hop %s: %d envelope(s) kept home until their recipients' seal keys can be had (%s); again in "
                 "%.0fs", self.hop, len(waiting), waiting[0][1], delay)
        if self.timer is not None:
            tx.on_commit(lambda: self.timer.call_later(f"deferred:{self.hop}", delay, self.wake))

    def _back_off(self, failures: int, message_ids: list[str], error: str) -> None:
        delay = self.policy.delay(failures, self.rng)
        with self.db.transaction(durable=False) as tx:
            peers.record_failure(tx, self.hop, failures, self.clock.now_ms() + int(delay * 1000), error)
            outbox.note_attempt(tx, message_ids, error)
        log.info("hop %s unavailable (%s); retry %d in %.1fs", self.hop, error, failures, delay,
                 extra=logs.fields(hop=self.hop))
        if self.timer is not None:
            self.timer.call_later(f"retry:{self.hop}", delay, self.wake)
