"""Hand our envelopes to next hops: one `HopSender` per next hop, expiry, and giving up.

The dispatcher owns the per-hop senders (node.exchange.hop), made when a hop is first
used; they run as tasks on a send pool (node.exchange.send_pool), the process's shared one
or, for a standalone node, one of its own. Its stop waits for its attempts in flight. When an envelope fails for good (the next hop refused
it, its lifetime ended, or the tree says its recipient does not exist) `give_up`
records it and tells its original sender with a non-delivery notice, made like every
other envelope (node.exchange.outgoing.EnvelopeMaker): into our own mailbox when we
sent it, else queued back towards the sender. A notice is never answered with another.
"""
from __future__ import annotations

import contextlib

import logging
import random
import threading
import time
from typing import Callable, Iterator

from .. import events, logs
from ..clock import Clock
from ..errors import Reason, Rejected
from ..escaping import escape
from ..identity import sealing
from ..identity.trust import TrustStore
from ..pb import envelope_pb2 as pb
from ..store import audit, inbox, outbox, peers
from ..store.database import Database, Transaction
from .hop import WINDOW, Deliver, HopSender, Outcome, Prepared, RetryPolicy, SendLimits
from .send_pool import DEFAULT_WORKERS, SendPool
from .outgoing import EnvelopeMaker, Sealed
from ..events import EventSink, NoEvents
from ..metrics import NO_METRICS, Recorder
from .protocols import Timer
from .routing import Router

log = logging.getLogger(__name__)


def shared_send_pool(workers: int = DEFAULT_WORKERS) -> SendPool:
    """A host's one send pool, for every agency's dispatcher (`pool=`): each of them at most half of it."""
    return SendPool(workers, window=WINDOW)


CALM_LIMIT = 10_000  # neighbours remembered as calm (peer_returned); past it, all forgotten


class Dispatcher:
    def __init__(self, db: Database, maker: EnvelopeMaker, trust: TrustStore, router: Router, clock: Clock,
                 deliver: Deliver, policy: RetryPolicy, *, limits: SendLimits = SendLimits(),
                 notice_lifetime_s: float = 7 * 86400, timer: Timer | None = None, events_: EventSink = NoEvents(),
                 rng: random.Random | None = None, metrics: Recorder = NO_METRICS,
                 on_return: Callable[[str], None] = lambda code: None,
                 paused: Callable[[], bool] = lambda: False,
                 prepare: Callable[[list[outbox.Pending]], Prepared] | None = None,
                 pool: SendPool | None = None, owner: str = "", workers: int = DEFAULT_WORKERS) -> None:
        """`pool`: the process's shared send pool, in which this agency is `owner`; None: a pool of this
        dispatcher's own, `workers` threads at most (all of them free for its hops)."""
        self.metrics = metrics
        self._own_pool = pool is None
        self.pool = pool or SendPool(workers, window=WINDOW, per_owner=workers)
        self._share = self.pool.owner(owner or maker.code)
        self.prepare = prepare  # each hop's last step before the wire (node.exchange.late_seal)
        self.paused = paused  # no hop sends while it holds (a stale CRL); nothing is failed or dropped for it
        self.db, self.maker, self.trust, self.router, self.clock = db, maker, trust, router, clock
        self.deliver, self.policy, self.limits = deliver, policy, limits
        self.notice_lifetime_s = notice_lifetime_s
        self.timer, self.events = timer, events_
        self.rng = rng or random.Random()
        self._hops: dict[str, HopSender] = {}
        self.on_return = on_return  # before a returned hop is woken (the transport's reconnect)
        self._lock = threading.Lock()
        self._stopping = False
        # code -> the mailbox's commit count when `peer_returned` last found nothing to do for it: the answer
        # reads only committed rows, so it holds until the next commit (every heartbeat asks, both ways)
        self._calm: dict[str, int] = {}

    # ---- the per-hop senders ----------------------------------------------------

    def hop(self, code: str) -> HopSender:
        """The sender of one next hop (made on first use; a task in the send pool)."""
        with self._lock:
            sender = self._hops.get(code)
            if sender is None:
                sender = self._hops[code] = HopSender(
                    code, self.db, self.trust, self.router, self.clock, self.deliver, self.policy, self.limits,
                    give_up=self.give_up, events_=self.events, timer=self.timer, rng=self.rng, pool=self._share,
                    metrics=self.metrics, paused=self.paused, prepare=self.prepare)
            return sender

    @contextlib.contextmanager
    def kept_from_claims(self, message_ids) -> Iterator[set[str]]:
        """While re-addressing queued envelopes (node.exchange.follow): yields those of `message_ids` some hop has
        on the wire now (leave them: their outcome settles them, delivered or pending again); no hop claims the
        others until the block ends, so none is handed to its old next hop while it is given a new one."""
        ids = set(message_ids)
        with self._lock:
            senders = list(self._hops.values())
        busy: set[str] = set()
        kept: list[tuple[HopSender, set[str]]] = []
        try:
            for sender in senders:  # each hop in turn: an id is either on its wire now or kept from its claims
                on_wire = sender.keep_from_claims(ids)
                busy |= on_wire
                kept.append((sender, ids - on_wire))
            yield busy
        finally:
            for sender, mine in kept:
                sender.give_back(mine)

    def use(self, *, policy: RetryPolicy | None = None, metrics: Recorder | None = None) -> None:
        """A reload (SIGHUP): the next backoff of every hop follows `policy`; counts go to `metrics`."""
        with self._lock:
            senders = list(self._hops.values())
            if policy is not None:
                self.policy = policy
            if metrics is not None:
                self.metrics = metrics
        for sender in senders:
            if policy is not None:
                sender.policy = policy
            if metrics is not None:
                sender.metrics = metrics

    def wake(self, hop: str) -> None:
        """Let `hop`'s sender look at its queue. A hop with no address (a child that has not registered yet:
        parked mail) is not woken: it would only back off, and a sender per invented code costs memory;
        its registration wakes it (peer_returned). Waking only queues the hop in the send pool."""
        if self._stopping or self.router.address(hop) is None:
            return
        sender = self.hop(hop)
        with self._lock:
            if not self._stopping:
                sender.wake()

    def attempt(self, hop: str) -> Outcome:
        """One attempt on `hop`, in the caller's thread (tests drive this with a fake clock)."""
        return self.hop(hop).attempt()

    def wake_all_due(self) -> None:
        """Safety net and restart path: wake every hop with pending mail whose backoff is over."""
        now = self.clock.now_ms()
        for hop in outbox.hops_with_pending(self.db):
            state = peers.get(self.db, hop)
            if state.next_attempt_ms <= now and not state.held:
                self.wake(hop)

    def peer_returned(self, code: str, how: str) -> bool:
        """`code` answered us (it registered, sent a heartbeat, took our registration or answered a health
        probe): forget its backoff and send its queue now, not when the backoff would have ended."""
        seen = self.db.commits  # read first: a commit after it makes the memo stale, never wrong
        own = self.db.in_own_transaction()  # the caller's rows are not committed: nothing remembered
        if not own and self._calm.get(code) == seen:
            return False
        state = peers.get(self.db, code)
        if not state.failures and not state.next_attempt_ms:
            if not state.held and outbox.pending_at_least(self.db, code, 1):
                self.wake(code)  # mail parked for it while it had no address: it may go now
            elif not own:
                if len(self._calm) >= CALM_LIMIT:
                    self._calm.clear()
                self._calm[code] = seen
            return False
        with self.db.transaction(durable=False) as tx:
            if not peers.reset(tx, code):
                return False
            outbox.undefer(tx, code)  # what waited for a lookup through this link may find it now
        log.info("link to %s is back (%s) after %d failed attempts: backoff reset, its queue is sent now",
                 code, how, state.failures, extra=logs.fields(hop=code))
        self.on_return(code)
        if not state.held:
            self.wake(code)
        return True

    # ---- what an operator does (the Admin API) ---------------------------------------

    def retry_now(self, hop: str | None) -> tuple[list[str], list[str]]:
        """Forget the backoff of `hop` (None: every hop with mail waiting) and send now; (retried, held)."""
        hops = [hop] if hop else outbox.hops_with_pending(self.db)
        held = peers.held_codes(self.db)
        retried = [h for h in hops if h not in held]
        with self.db.transaction(durable=False) as tx:
            for h in retried:
                peers.reset(tx, h)
                outbox.undefer(tx, h)
                outbox.release_held_back(tx, h)  # the operator's word; a neighbour's heartbeat does not do this
        for h in retried:
            self.on_return(h)
            self.wake(h)
        if retried:
            log.info("operator: retry now %s", ", ".join(retried))
        return retried, [h for h in hops if h in held]

    def hold(self, hop: str, held: bool, by: str | None = None) -> None:
        """Stop (or resume) sending to `hop`; kept in the database, so it outlives a restart. `by`: the local
        API client that asked, named in the audit log."""
        with self.db.transaction() as tx:
            peers.set_held(tx, hop, held)
            audit.append(tx, self.clock.now_ms(), audit.HELD if held else audit.RELEASED, "", hop,
                         f"by client {by}" if by else "by the operator")
        log.warning("operator: %s next hop %s", "holding" if held else "released", hop, extra=logs.fields(hop=hop))
        if not held:
            self.wake(hop)

    def hold_message(self, message_id: str, held: bool, next_hop: str, by: str | None = None) -> bool:
        """Stop (or resume) sending one pending envelope; kept in the database. False: it is not pending. `by`:
        the local API client that asked, named in the audit log."""
        with self.db.transaction() as tx:
            if not outbox.set_held(tx, message_id, held):
                return False
            audit.append(tx, self.clock.now_ms(), audit.HELD if held else audit.RELEASED, message_id, next_hop,
                         f"the message, by client {by}" if by else "the message, by the operator")
        log.warning("operator: %s message %s (next hop %s)", "holding" if held else "released", message_id, next_hop)
        if not held:
            self.wake(next_hop)
        return True

    def retry_message(self, message_id: str, next_hop: str) -> None:
        """Send one envelope at the next attempt, which is now: its own wait and its hop's backoff forgotten."""
        with self.db.transaction(durable=False) as tx:
            outbox.due_now(tx, message_id)
            peers.reset(tx, next_hop)
        log.info("operator: retry now message %s (next hop %s)", message_id, next_hop)
        self.on_return(next_hop)
        self.wake(next_hop)

    def purge(self, message_id: str, reason: str, by: str | None = None) -> dict:
        """Remove one queued envelope for good: audited (with `by`, the local API client that asked), and its
        sender gets a non-delivery notice."""
        with self.db.transaction() as tx:  # read in it: a delivery committing meanwhile is seen, not purged
            row = outbox.get(self.db, message_id)
            if row is None:
                raise Rejected(Reason.NOT_FOUND, f"no envelope {message_id} in the outbox", field="message_id")
            if row["state"] != outbox.PENDING:
                raise Rejected(Reason.NOT_QUEUED, f"{message_id} is {row['state']}, not queued", field="message_id",
                               metadata={"state": row["state"]})
            p = outbox.Pending(row["seq"], message_id, row["sender"], row["recipient"], row["kind"], row["priority"],
                               row["expires_ms"], row["envelope"], row["ref_message_id"])
            audit.append(tx, self.clock.now_ms(), audit.PURGED, message_id, row["next_hop"],
                         f"{reason} (by client {by})" if by else reason)
            self.give_up(tx, p, row["next_hop"], outbox.REJECTED, Reason.PURGED.name, reason)
        log.warning("operator: purged %s (to %s via %s): %s", message_id, row["recipient"], row["next_hop"], reason,
                    extra=logs.fields(agency=row["sender"], hop=row["next_hop"], message_id=message_id,
                                      reason=Reason.PURGED))
        return row

    def stop(self, timeout: float = 10.0) -> list[str]:
        """Queue nothing more; let this agency's batches in flight finish (their outcome is committed); stop
        the pool too if it is this dispatcher's own. `timeout` bounds the whole wait; returns the hops
        still busy (their batches are sent again after a restart: the peer dedups)."""
        with self._lock:
            self._stopping = True
        deadline = time.monotonic() + timeout
        busy = self._share.stop(timeout)
        if self._own_pool:
            self.pool.stop(max(0.0, deadline - time.monotonic()))
        return busy

    # ---- giving up ------------------------------------------------------------

    def expire_due(self) -> int:
        rows = outbox.expired_pending(self.db, self.clock.now_ms())
        if rows:
            with self.db.transaction() as tx:
                for r in rows:
                    p = outbox.Pending(0, r["message_id"], r["sender"], r["recipient"], r["kind"], r["priority"], 0, b"")
                    self.give_up(tx, p, r["next_hop"], outbox.EXPIRED, Reason.EXPIRED.name,
                                 "lifetime ended before delivery")
        return len(rows) + self.unpark_due()

    def unpark_due(self) -> int:
        """Parked mail whose wait (limits.park_for) is over: its sender is told the agency does not exist
        (UNKNOWN_RECIPIENT, a non-delivery notice); mail whose child registered meanwhile is queued as usual."""
        rows = outbox.park_ended(self.db, self.clock.now_ms())
        if not rows:
            return 0
        given_up = [r for r in rows if not r["registered"] and self.router.address(r["next_hop"]) is None]
        with self.db.transaction() as tx:
            outbox.unpark(tx, [r["message_id"] for r in rows if r not in given_up])
            for r in given_up:
                p = outbox.Pending(r["seq"], r["message_id"], r["sender"], r["recipient"], r["kind"], r["priority"],
                                   r["expires_ms"], b"", r["ref_message_id"], r["created_ms"])
                self.give_up(tx, p, r["next_hop"], outbox.REJECTED, Reason.UNKNOWN_RECIPIENT.name,
                             f"no agency {r['recipient']} registered below {self.maker.code} while the envelope "
                             f"waited there (limits.park_for)")
        if given_up:
            log.info("%d parked envelopes ended with a non-delivery notice: no agency registered for them "
                     "(first: %s to %s)", len(given_up), given_up[0]["message_id"], given_up[0]["recipient"])
        return len(given_up)

    def refuse(self, tx: Transaction, sealed: Sealed, subject: str, doc_id: str | None) -> None:
        """Record a new envelope of ours that cannot be delivered at all (inside the caller's transaction)."""
        h, why = sealed.header, sealed.refused or Rejected(Reason.UNKNOWN_RECIPIENT)
        self.maker.queue_in(tx, sealed, subject, doc_id=doc_id)
        p = outbox.Pending(0, h.message_id, h.sender, h.recipient, h.kind, h.priority, h.expires_ms, sealed.raw)
        self.give_up(tx, p, sealed.hop or "-", outbox.REJECTED, why.reason.name, why.detail or why.reason.public_message)

    def _notice_key(self, p: outbox.Pending, to_us: bool) -> bytes:
        """Whom a notice is sealed to: ourselves, or the seal key the sender signed into the envelope that
        failed (read from its sealed structure, no key needed). A notice about an envelope that went in
        clear goes in clear: it tells the sender nothing a relay did not see (clear_ok)."""
        if not self.maker.sealing:
            return b""
        if to_us:
            return self.maker.seal_key.public_der
        raw = p.envelope or outbox.envelope(self.db, p.message_id) or b""  # expiry passes no bytes
        return sealing.sender_key_of(raw)

    def give_up(self, tx: Transaction, p: outbox.Pending, hop: str, state: str, reason: str, detail: str) -> None:
        """Final failure of one envelope: record it, and tell the original sender (never for a notice).

        Callers may have read `p` outside this transaction (expiry, parking): one delivered or settled
        since is left as it is, and nobody is told of a failure that did not happen."""
        now = self.clock.now_ms()
        if not outbox.mark_final(tx, p.message_id, hop, state, f"{reason}: {detail}", now):
            return
        tx.on_commit(lambda: self.metrics.gave_up(reason))
        seq = p.seq or outbox.seq_in(tx, p.message_id)  # ListSent's seq of the entry that changed
        tx.on_commit(lambda: self.events.emit(
            events.REJECTED if state == outbox.REJECTED else events.EXPIRED, message_id=p.message_id,
            peer=hop, recipient=p.recipient, kind=p.kind, time_ms=now, reason=reason, seq=seq))
        if p.kind == pb.NOTICE:
            return
        notice = pb.Payload(notice=pb.Notice(ref_message_id=p.message_id, recipient=p.recipient, reason=reason,
                                             detail=escape(detail)))  # another agency reads it
        to_us = p.sender == self.maker.code
        if to_us:
            back = ""
        else:
            try:
                back = self.maker.next_hop(p.sender)
            except LookupError:
                log.warning("cannot route non-delivery notice for %s back to %s", p.message_id, p.sender,
                            extra=logs.fields(agency=p.sender, message_id=p.message_id, reason=reason))
                return
        sealed = self.maker.seal(notice, p.sender, back, priority=p.priority, lifetime_s=self.notice_lifetime_s,
                                 ref_message_id=p.message_id, seal_to=self._notice_key(p, to_us), clear_ok=True)
        # a relay's notice about someone else's envelope is relayed mail, not part of its agency's sent register
        self.maker.queue_in(tx, sealed, f"not delivered: {reason}", origin="relay")
        h = sealed.header
        if to_us:
            notice_seq = inbox.seq_in(tx, h.message_id)
            tx.on_commit(lambda: self.events.emit(
                events.ARRIVED, message_id=h.message_id, peer=h.sender, recipient=h.recipient, kind=h.kind,
                time_ms=now, reason=reason, ref_message_id=h.ref_message_id, seq=notice_seq))
        else:
            tx.on_commit(lambda: self.wake(back))
