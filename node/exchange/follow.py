"""Mail that follows a succession: our own documents for a retired code go to its successor.

When this node takes a succession list (or one it holds comes into effect), every document of ours
still waiting here for a code it retires (queued for a hop, parked, kept home for a seal key) is
made again for the agency that answers for that code now, with its first message id, and
re-addressed, all in one transaction (counted, audited, each row only if still pending then): the
successor gets it once, its dedup by message id still holds, and Track shows the code it was first
addressed to. It is made in clear and kept here until the successor's seal key is had
(node.exchange.late_seal seals it at hand-over), as any envelope of ours made while the tree could
not be asked.

Relayed documents are not a relay's to make again (their sender signed the recipient and sealed them
to the retired agency's key): a node holding the succession refuses them for good
(RECIPIENT_RETIRED, node.exchange.routing.Router.retired), the sender gets the non-delivery notice,
and its own node sends the document again, under a new message id, to the successor the tree's signed
succession names (follow_refused): one copy reaches the successor, the refused one reached nobody.
Only new documents follow: changes and statuses about documents exchanged before the succession are
the retired agency's history, which its successor takes over (node.takeover) and then answers for
(node.documents.successors; docs/restructuring.md).
"""
from __future__ import annotations

import contextlib
import logging
import threading
from typing import Callable, Iterator

from .. import events
from ..clock import Clock
from ..events import EventSink, NoEvents
from ..errors import Reason, Rejected
from ..registry.successions import Successions
from ..store import outbox, quiet, successions as store
from ..store.database import Database
from .outgoing import EnvelopeMaker
from .protocols import Waker

log = logging.getLogger(__name__)

BATCH = 1000  # envelopes re-addressed per transaction; a longer queue takes several
ASK_EVERY_MS = 30_000  # how often the tree is asked about the recipients our mail waits for
ASK_AT_ONCE = 50       # recipients asked about each time (lookups: cached, each bounded by the registry's limits)


class MailFollows:
    def __init__(self, db: Database, maker: EnvelopeMaker, held: Successions, queues: Waker, clock: Clock,
                 successor_of: Callable[[str, bool], str | None] | None = None,
                 events_: EventSink = NoEvents(), give_up: Callable | None = None,
                 kept_from_claims: Callable | None = None) -> None:
        self.events = events_
        # the dispatcher's: envelopes on the wire now are left to their outcome, the rest kept from the hops'
        # claims while they are re-addressed (else one could reach its old recipient and its successor both)
        self.kept_from_claims = kept_from_claims or _nothing_on_the_wire
        self._left: bool = False  # some were on the wire at the last run: the next sweep runs it again
        # the dispatcher's final failure of one queued envelope, with a notice to its sender (relayed documents)
        self.give_up = give_up
        self.db, self.maker, self.held, self.queues, self.clock = db, maker, held, queues, clock
        # asked through the tree (lookups): for codes retired by a list this node does not hold (another branch)
        self.successor_of = successor_of
        self._asked_ms = 0
        self._lock = threading.Lock()  # one re-routing at a time (a list taken while the sweep runs one)
        self._applied: tuple[str, ...] = ()  # the retired codes in effect at the last run
        # the commit as of which no refused document waited to follow: an idle mailbox's sweep asks nothing
        # (node/store/quiet.py); only a commit can add one
        self._none_refused_at: int | None = None
        self.rerouted = 0  # since start, for the log and the Admin answer

    def due(self) -> int:
        """The scheduler's sweep: re-route if the codes in effect here changed since the last run (a list taken,
        an effective time passed); at most every ASK_EVERY_MS, ask the tree about the recipients our mail
        waits for (kept home for a registration: retired in another branch, whose list this node does not hold);
        send again to their successors the documents a relay refused as retired (follow_refused)."""
        n = 0
        if tuple(self.held.effective_codes()) != self._applied:
            n += self.reroute()
        now = self.clock.now_ms()
        if (self.successor_of is not None and now - self._asked_ms >= ASK_EVERY_MS
                and not quiet.no_pending_mail(self.db)):  # only pending mail waits for a recipient
            self._asked_ms = now
            found = {}
            for code in store.own_waiting_recipients(self.db, ASK_AT_ONCE):
                try:
                    successor = self.successor_of(code)
                except Rejected as r:
                    log.info("whether %s is retired cannot be told now: %s", code, r.public_text)
                    continue
                if successor:
                    found[code] = successor
            if found:
                n += self._reroute(list(found), found.get)
        return n + self.follow_refused()

    def follow_refused(self) -> int:
        """Our documents a relay refused for good because their recipient is retired (RECIPIENT_RETIRED, in a
        non-delivery notice): each sent again, under a new message id (the first was handed over: every hop on
        the way keeps it), to the successor the tree's signed succession names, in the same send (Track shows
        both). A relay's notice only makes us ask: the successor is what the issuer signed."""
        sent = 0
        seen = self.db.commits  # read first: a commit after it makes the memo stale, never wrong
        if self._none_refused_at == seen:
            return 0
        refused = store.refused_as_retired(self.db, ASK_AT_ONCE)
        if not refused:
            self._none_refused_at = seen
        for r in refused:
            try:
                successor = self.successor_of(r.recipient, True) if self.successor_of is not None else None
                if not successor:
                    continue  # the tree does not say so (yet): asked again next time
                hop = self.maker.next_hop(successor)
                header, raw = self.maker.readdress(r.envelope, successor, new_id=True)
            except (LookupError, Rejected) as e:
                log.info("%s for %s not sent to a successor: %s", r.message_id, r.recipient, e)
                with self.db.transaction() as tx:
                    store.followed_in(tx, r.message_id, "-")  # told once; Track shows the notice
                continue
            now = self.clock.now_ms()
            with self.db.transaction() as tx:
                if not store.followed_in(tx, r.message_id, header.message_id):
                    continue
                outbox.enqueue_in(tx, header, raw, hop, r.subject, now, doc_id=r.doc_id)
                store.addressed_to_successor_in(tx, header.message_id, r.recipient)
                tx.on_commit(lambda: self.queues.wake(hop))
                tx.on_commit(lambda h=header, asked=r.recipient: self.events.emit(
                    events.READDRESSED, message_id=h.message_id, recipient=h.recipient, successor_of=asked,
                    ref_message_id=r.message_id, peer=hop, kind=h.kind, time_ms=now))
            sent += 1
        if sent:
            log.info("%d refused document(s) sent again to the successors of their retired recipients", sent)
        return sent

    def reroute(self) -> int:
        """Re-address our queued envelopes for the codes retired by the lists held; how many moved."""
        codes = self.held.effective_codes()
        self._left = False
        n = self._reroute(codes, self.held.successor) + self._refuse_relayed(codes)
        self._applied = tuple(codes) if not self._left else ()
        return n

    def _refuse_relayed(self, codes: list[str]) -> int:
        """Documents relayed through us and still queued here (parked included) for a retired code: refused for
        good as intake refuses them (RECIPIENT_RETIRED), their senders told, so each sends it to the successor."""
        if self.give_up is None:
            return 0
        n, done = 0, set()
        with self._lock:
            while True:
                rows = [(hop, p) for hop, p in store.relayed_queued_for(self.db, codes, BATCH)
                        if p.message_id not in done]
                if not rows:
                    break  # each row once: one settled meanwhile (delivered, expired) is left as it is
                done.update(p.message_id for _, p in rows)
                with self.kept_from_claims([p.message_id for _, p in rows]) as on_wire:
                    rows = [(hop, p) for hop, p in rows if p.message_id not in on_wire]
                    self._left |= bool(on_wire)
                    if rows:
                        with self.db.transaction() as tx:
                            for hop, p in rows:
                                self.give_up(tx, p, hop, outbox.REJECTED, Reason.RECIPIENT_RETIRED.name,
                                             f"{p.recipient} is retired: its successor is "
                                             f"{self.held.successor(p.recipient)}")
                n += len(rows)
        if n:
            log.info("%d relayed document(s) for retired codes refused back to their senders", n)
        return n

    def _reroute(self, codes: list[str], successor_of: Callable[[str], str | None]) -> int:
        with self._lock:
            moved_total = 0
            done: set[str] = set()
            while True:
                queued = [q for q in store.own_queued_for(self.db, codes, BATCH) if q.message_id not in done]
                if not queued:
                    break
                moved, hops = [], set()
                for q in queued:
                    done.add(q.message_id)
                    successor = successor_of(q.recipient)
                    if not successor or successor == self.maker.code:
                        continue  # mail of ours for our own predecessor: not re-addressed to ourselves
                    try:
                        hop = self.maker.next_hop(successor)
                        _, raw = self.maker.readdress(q.envelope, successor)
                    except (LookupError, Rejected) as e:
                        log.warning("%s for %s not re-addressed to %s: %s", q.message_id, q.recipient, successor, e)
                        continue
                    moved.append(store.Readdressed(q.message_id, q.recipient, successor, hop, raw))
                    hops.add(hop)
                with self.kept_from_claims([m.message_id for m in moved]) as on_wire:
                    moved = [m for m in moved if m.message_id not in on_wire]
                    self._left |= bool(on_wire)
                    n = self._readdress(moved) if moved else 0
                moved_total += n
                for hop in hops if n else ():  # woken once no claim is kept from them any more
                    self.queues.wake(hop)
            if moved_total:
                self.rerouted += moved_total
                log.info("%d queued envelope(s) re-addressed to the successors of retired codes", moved_total)
            return moved_total

    def _readdress(self, moved: list) -> int:
        """One transaction: the envelopes re-addressed (those still pending), their senders told once committed."""
        with self.db.transaction() as tx:
            n = store.readdress_in(tx, moved, self.clock.now_ms())
            now = self.clock.now_ms()
            for m in moved:  # told once committed: the sender's notice, naming the successor
                tx.on_commit(lambda m=m: self.events.emit(
                    events.READDRESSED, message_id=m.message_id, recipient=m.successor,
                    successor_of=m.asked, peer=m.next_hop, time_ms=now))
        return n


@contextlib.contextmanager
def _nothing_on_the_wire(message_ids) -> Iterator[set[str]]:
    """No dispatcher (tests of the re-addressing alone): nothing is on the wire."""
    yield set()
