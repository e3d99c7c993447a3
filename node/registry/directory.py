"""This node's place in the tree: its registered children, its parent, and lookups through both.

A lookup for a code climbs from the asker towards the root until it reaches an ancestor
of the code, then descends through registered children to the node that holds the
record. Requests coming down never go back up, so a lookup ends after at most one
climb and one descent. Answers are records signed by the agency itself; each node
checks them before it caches or passes them on.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

import grpc

from .. import events, fields, logs, stats
from ..clock import Clock
from ..codes import ROOT, CodeError, Hierarchy, is_identifier, is_qcvn
from ..envelope import Signer
from ..errors import Reason, Rejected
from ..limits import InFlight, Limits, over
from ..identity.crl_holder import CrlHolder
from ..identity.trust import TrustStore
from ..pb import registry_pb2 as rpb
from ..store import registry as store
from ..store.database import Database
from ..transport.interface import CALL_TIMEOUT_S, Peer, PeerTransport, TransportError
from ..events import EventSink, NoEvents
from . import records, successions as succ
from .pins import Pins

log = logging.getLogger(__name__)

NEGATIVE_TTL_MS = 5_000
FRESH_WITHIN_MS = 1000  # a fresh lookup is answered from an answer this recent (LookupRequest.fresh)
CACHE_LIMIT = 10_000
# an idle agency's counters go up again at least this often (a parent that lost its copy has them back)
STATS_RESEND_MS = 600_000


class Directory:
    def __init__(self, db: Database, signer: Signer, trust: TrustStore, clock: Clock, *, name: str,
                 configured_parents: dict[str, str], parent: str | None, parent_address: str | None,
                 transport: PeerTransport, heartbeat_s: float, stale_after_s: float,
                 cache_ttl_s: float, events_: EventSink = NoEvents(), previous: Signer | None = None,
                 on_alive: Callable[[str, str], None] = lambda code, how: None, seal_key: bytes = b"",
                 peer_addresses: dict[str, str] | None = None, crl: CrlHolder | None = None,
                 limits: Limits = Limits(), successions: "succ.Successions | None" = None) -> None:
        self.limits = limits
        self.successions = successions  # the succession lists we hold: passed down, caught up, shown by lookups
        self.park_for_s = limits.park_for  # how long mail for a child not registered waits here
        # questions passed down to each child and not answered yet: a child that answers slowly (or an insider
        # that never does) holds at most this many of our threads, whoever asks (CHILD_BUSY past it)
        self._down = InFlight(limits.lookups_down_per_child)
        self.seal_key = seal_key  # our seal key's public half (SPKI DER), published in our record
        self.peer_addresses = dict(peer_addresses or {})  # configured peers: asked for their own record
        self.db, self.signer, self.trust, self.clock = db, signer, trust, clock
        self.crl = crl  # the CRL we hold: passed down to children, caught up from the parent
        self.previous = previous  # a renewed node's retired identity: it co-signs our record (renewal_signature)
        self.on_alive = on_alive  # a neighbour answered: (code, how); its queue may go now
        self.code, self.name = signer.code, name
        self.configured_parents = dict(configured_parents)
        self.configured = Hierarchy(self.configured_parents)  # what our YAML and the code rule say
        self.hierarchy = self.configured                        # plus odd codes learned from below
        self.parent, self.parent_address = parent, parent_address
        self.transport = transport  # every call to a parent, child or peer goes through it
        self.heartbeat_ms = int(heartbeat_s * 1000)
        self.stale_after_ms = int(stale_after_s * 1000)
        self.cache_ttl_ms = int(cache_ttl_s * 1000)
        self.endpoint = ""
        self.registered = False
        self.events = events_
        self._last_beat_ms = 0
        # (our mailbox's commit count, when) as of the counters our parent last took: an idle agency's are the
        # same, signed again and checked again by the parent on every heartbeat for nothing
        self._counters_sent: tuple[int, int] | None = None
        self._below: tuple[int, dict[str, str]] | None = None  # (commit count, odd_codes_below) last read
        self.parent_ok_ms = clock.now_ms()  # last time the parent took our registration or heartbeat (or start)
        self.parent_error = ""               # why the last call to the parent failed ("" after a success)
        self._cache: dict[str, tuple[rpb.DirectoryEntry, int]] = {}  # code -> (entry, until)
        self._unknown: dict[tuple[str, bool], int] = {}  # (code, asked from below) -> NOT_FOUND until
        self._lock = threading.Lock()
        self._routing = threading.RLock()  # one change at a time to what routing reads (tree, endpoints, pins)
        # heartbeats (_heard): last heard in memory, written to the registry table at most every stale_after / 2
        self._seen: dict[str, int] = {}     # child -> its last registration or heartbeat taken (ms)
        self._written: dict[str, int] = {}  # child -> the last_seen_ms last written to the registry table
        self._claims: dict[str, dict[str, str]] = {}  # child -> the odd codes its last stored heartbeat vouched for
        self._endpoints: dict[str, str] = {}
        self.pins = Pins(trust)  # the certificate each child registered: its hand-overs and marks are held to it
        self._refresh_hierarchy()

    def use_limits(self, limits: Limits) -> None:
        """limits.* from a reload: listings, `park_for` and the questions passed down, from the next call on."""
        self.limits, self.park_for_s = limits, limits.park_for
        self._down.limit = limits.lookups_down_per_child

    # ---- our own record -----------------------------------------------------------

    def level(self, code: str | None = None) -> int:
        try:
            return self.hierarchy.level(code or self.code)
        except CodeError:
            return 0

    def own_entry(self) -> rpb.DirectoryEntry:
        signed = records.make(self.signer, name=self.name, level=self.level(), parent=self.parent or "",
                              endpoint=self.endpoint, now_ms=self.clock.now_ms(), previous=self.previous,
                              seal_key=self.seal_key)
        return rpb.DirectoryEntry(record=signed, reachable=True, last_seen_ms=self.clock.now_ms())

    # ---- serving children -------------------------------------------------------

    def register(self, signed: rpb.SignedRecord, peer: str | None) -> int:
        record = records.verify(signed, self.trust)
        if peer is not None and peer != record.code:
            raise Rejected(Reason.SENDER_MISMATCH, f"connection is from {peer}, record is for {record.code}")
        try:
            rule_parent = self.configured.parent(record.code)
        except CodeError:
            rule_parent = None
        if record.parent != self.code or (rule_parent != self.code and not self._reparented(record.code)):
            raise Rejected(Reason.WRONG_PARENT, f"{self.code} is not the parent of {record.code}")
        registered = store.get(self.db, record.code)
        previous, moved = None, False
        if registered is not None:
            registered_cert = rpb.AgencyRecord.FromString(registered.record).cert_der
            records.check_renewal(signed, record, registered_cert, self.trust)
            moved = registered_cert != record.cert_der
            previous = self._still_trusted(registered_cert) if moved else registered.previous_cert
        now = self.clock.now_ms()
        store.upsert(self.db, store.Child(record.code, record.name, self.configured.level(record.code),
                                          record.endpoint, signed.record, signed.signature, now, now, previous),
                     durable=moved)  # a pin that moved must not move back in a crash
        with self._lock:
            self._cache.pop(record.code, None)
            self._unknown.pop((record.code, True), None)
            self._unknown.pop((record.code, False), None)
        self._registered(record.code, record.endpoint, signed.record, previous)
        self._seen[record.code] = self._written[record.code] = now
        log.info("registered %s (%s) at %s", record.code, record.name, record.endpoint,
                 extra=logs.fields(agency=record.code))
        self.events.emit(events.REGISTERED, peer=record.code, time_ms=now)
        self.on_alive(record.code, "registered")
        return self.heartbeat_ms

    def _reparented(self, code: str) -> bool:
        """Re-parenting: a code one of whose enclosing units by the code rule (an abolished district, a merged
        province) is retired, with this node answering for it (a succession held here), registers directly
        under this node; routing then follows the registration (_refresh_hierarchy), not the code rule."""
        return self._answering_for(code) == self.code

    def moved_away(self, code: str) -> bool:
        """Whether a unit enclosing `code` by the code rule is retired into another node than this one (routing:
        the code may have registered there, node.exchange.routing.Router.passes_from)."""
        answer = self._answering_for(code)
        return answer is not None and answer != self.code

    def _answering_for(self, code: str) -> str | None:
        """The successor of the nearest retired unit enclosing `code` by the code rule (bounded: its chain, at most
        MAX_CLIMB units, each successor chain at most successions.MAX_CHAIN); None if none is retired."""
        if self.successions is None or not is_qcvn(code):
            return None
        try:
            enclosing = self.configured.ancestors(code)[1:self.MAX_CLIMB + 1]
        except CodeError:
            return None
        for unit in enclosing:
            successor = self.successions.successor(unit)
            if successor is not None:
                return successor
        return None

    def _still_trusted(self, cert_der: bytes) -> bytes | None:
        """A renewed registration's old certificate, kept so mail marked with it still passes; None if revoked."""
        try:
            self.trust.identify(cert_der, check_validity=False)
        except Rejected:
            return None
        return cert_der

    def heartbeat(self, code: str, peer: str | None, odd_codes: dict[str, str], signed_stats=(),
                  crl_number: int = 0) -> bytes:
        """Take a child's heartbeat; returns our CRL when it holds an older one (b"" otherwise)."""
        if peer is not None and peer != code:
            raise Rejected(Reason.SENDER_MISMATCH, f"connection is from {peer}, heartbeat is for {code}")
        for odd, parent in odd_codes.items():
            fields.check_code(odd, "odd_codes")
            fields.check_code(parent, "odd_codes")
        # who holds each claimed code (an odd child's claim of its own code needs no holder: _claim_problem)
        others = [c for c in odd_codes if c != code]
        holders = store.odd_code_holders(self.db, others) if others else {}
        for odd, parent in odd_codes.items():
            problem = self._claim_problem(code, odd, parent, odd_codes, holders)
            if problem:
                refused = Rejected(Reason.WRONG_PARENT, problem)  # bounded: the claim's codes are the child's words
                log.warning("refused heartbeat from %s: %s", code, refused.detail,
                            extra=logs.fields(agency=code, reason=refused.reason))
                raise refused
        before = self._heard(code, dict(odd_codes))
        if before is None:
            raise Rejected(Reason.UNKNOWN_RECIPIENT, f"{code} is not registered with {self.code}")
        if self._reroutes(before, odd_codes):  # a claim added or withdrawn routes (or stops routing) at once
            self._refresh_hierarchy()
        if signed_stats:  # none: nothing new since the counters the child sent last (kept as they are)
            stats.record_heartbeat(self.db, code, signed_stats, self.hierarchy, self.trust, self.clock.now_ms())
        self.events.emit(events.HEARTBEAT, peer=code, time_ms=self.clock.now_ms())
        self.on_alive(code, "heartbeat")
        return self.crl_der() if self.crl is not None and crl_number < self.crl.number else b""

    def _heard(self, code: str, claims: dict[str, str]) -> dict[str, str] | None:
        """Take a heartbeat from `code`: the odd codes it vouched for before (None: not registered here).

        A heartbeat that changes nothing writes nothing: the time is kept in memory (`last_seen`) and
        written at most every stale_after / 2, or with a change of its claims. After a restart the table
        is at most stale_after / 2 behind, so a child that keeps beating is never taken for stale (each beat
        comes within heartbeat <= stale_after / 2, or every beat is written), and one that stopped is seen
        stale at most stale_after / 2 early, never late."""
        now = self.clock.now_ms()
        if (code in self._endpoints and self._claims.get(code) == claims
                and now - self._written.get(code, 0) < self.stale_after_ms // 2):
            self._seen[code] = max(now, self._seen.get(code, 0))
            return claims
        before = store.touch(self.db, code, now, claims)
        if before is not None:
            self._claims[code], self._written[code] = claims, now
            self._seen[code] = max(now, self._seen.get(code, 0))
        return before

    def _reroutes(self, before: dict[str, str], after: dict[str, str]) -> bool:
        """Whether a child's new claims change routing: one withdrawn, or one the tree does not already place
        so (a child's own odd code is placed under us by its registration: its first claim moves nothing)."""
        return (any(c not in after for c in before)
                or any(before.get(c) != p and not self._places(c, p) for c, p in after.items()))

    def last_seen(self, child: store.Child) -> int:
        """When `child` was last heard from: its heartbeat in memory, or the time last written."""
        return max(child.last_seen_ms, self._seen.get(child.code, 0))

    # ---- certificate revocation lists, down the tree ----------------------------------

    def crl_der(self) -> bytes:
        held = self.crl.current if self.crl is not None else None
        return held.der if held is not None else b""

    def take_pushed_crl(self, der: bytes, peer: str | None) -> int:
        """A CRL pushed to us: only our parent passes lists down (anyone else: WRONG_PARENT, nothing read)."""
        if self.crl is None:
            raise Rejected(Reason.INVALID_REQUEST, "this node keeps no CRL")
        if peer is not None and (peer != self.parent or not self.parent_address):
            raise Rejected(Reason.WRONG_PARENT, f"{peer} is not the parent of {self.code}: only it passes CRLs down")
        self.crl.offer(der, self.parent or "parent")
        return self.crl.number

    # ---- successions (node.registry.successions): travel as the CRL does -------------------

    def succession_lists(self, numbers: dict[str, int] | None = None) -> list[rpb.SignedSuccessionList]:
        """Every list we hold (a registration's answer), or those newer than a child's `numbers` (a heartbeat's)."""
        if self.successions is None:
            return []
        return self.successions.lists() if numbers is None else self.successions.newer_than(numbers)

    def take_pushed_successions(self, lists, peer: str | None) -> dict[str, int]:
        """Lists our parent pushed: each checked and taken on its own; the first refusal is the answer."""
        if self.successions is None:
            raise Rejected(Reason.INVALID_REQUEST, "this node keeps no successions")
        if peer is not None and (peer != self.parent or not self.parent_address):
            raise Rejected(Reason.SUCCESSION_NOT_COMPETENT,
                           f"{peer} is not the parent of {self.code}: only it passes successions down")
        refused = self._offer_from_above(lists)
        if refused:
            raise refused[0]
        return self.successions.numbers()

    def _offer_from_above(self, lists) -> list[Rejected]:
        """Lists from our parent (pushed, or in its answer), each offered on its own: the refusals (too many: that
        alone, none offered)."""
        assert self.successions is not None
        try:
            succ.check_count(lists)
        except Rejected as r:
            return [r]
        refused: list[Rejected] = []
        refused.extend(self.successions.offer_all(self._from_above(lists, refused), self.parent or "parent"))
        return refused

    def _from_above(self, lists, refused: list[Rejected]) -> list[rpb.SignedSuccessionList]:
        """The lists issued above us (what a parent passes down); any other is refused into `refused`: a node
        holds only its ancestors' lists, so what it answers its own children stays within MAX_LISTS."""
        above = set(self._ancestors()) - {self.code}
        kept = []
        for signed in lists:
            try:
                issuer = succ.parse(signed).issuer
            except Rejected as r:
                refused.append(r)
                continue
            if issuer in above:
                kept.append(signed)
            else:
                refused.append(Rejected(Reason.SUCCESSION_NOT_COMPETENT, f"a succession list of {issuer}, which is "
                                        f"not above {self.code}, passed down to it"))
        return kept

    def _successions_caught_up(self, lists) -> None:
        if not lists or self.successions is None:
            return
        for r in self._offer_from_above(lists):
            log.warning("succession list from parent %s refused: %s", self.parent, r.public_text,
                        extra=logs.fields(agency=self.parent, reason=r.reason))

    def push_successions(self, lists: list[rpb.SignedSuccessionList]) -> None:
        """Pass lists we just took to every registered child, in the background; a child that misses them
        gets them with its next heartbeat's answer."""
        children = store.children(self.db)
        if not children or not lists:
            return

        def push() -> None:
            answers = self.transport.push_successions([Peer(c.code, c.endpoint) for c in children], lists,
                                                      CALL_TIMEOUT_S)
            for code, answer in answers.items():
                if isinstance(answer, TransportError):
                    refused = answer.refused
                    log.info("successions not pushed to %s (%s): it catches up with its next heartbeat",
                             code, refused.public_text if refused is not None else answer.what)
        threading.Thread(target=push, name="succession-push", daemon=True).start()

    def retired_entry(self, code: str) -> rpb.DirectoryEntry | None:
        """A lookup's answer for a code we hold as retired: the list retiring it, and its record if registered."""
        if self.successions is None:
            return None
        r = self.successions.retired(code)
        if r is None:
            return None
        child = store.get(self.db, code)
        entry = self.entry_of(child) if child is not None else rpb.DirectoryEntry()
        entry.succession.CopyFrom(self.successions.list_of(r.issuer))
        return entry

    def _checked_retirement(self, code: str, entry: rpb.DirectoryEntry) -> bool:
        """Whether a peer's answer says `code` is retired, by a list we could check (Rejected if it is bad)."""
        if not entry.HasField("succession"):
            return False
        body = succ.verify(entry.succession, self.trust, self.hierarchy)
        now = self.clock.now_ms()
        if not any(code in s.old_codes and s.effective_ms <= now for s in body.successions):
            raise Rejected(Reason.SUCCESSION_NOT_COVERING, f"the succession list answered for {code} does not "
                           "retire it")
        return True

    def successor_of(self, code: str, fresh: bool = False) -> str | None:
        """Who answers now for `code` if it is retired (its successions followed), else None. A lookup that
        cannot finish says nothing here: routing then decides as for any code. `fresh`: not from the cache (a
        relay refused our mail as retired: the record we cached may be from before the succession)."""
        try:
            chain = self.successor_chain(code, fresh)
        except Rejected as r:
            if r.reason in (Reason.SUCCESSION_CYCLE, Reason.SUCCESSION_NOT_COMPETENT, Reason.SUCCESSION_BAD_SIGNATURE,
                            Reason.SUCCESSION_TOO_LARGE):
                raise
            return None
        return chain[-1][1].successor if chain else None

    def successor_chain(self, code: str, fresh: bool = False) -> list[tuple[str, rpb.Succession, str]]:
        """The successions from `code` to the agency that answers for it now: (retired code, succession,
        issuer) each, at most MAX_CHAIN; empty when `code` is not retired. Each step is a lookup."""
        chain, seen = [], {code}
        for _ in range(succ.MAX_CHAIN):
            entry = self.lookup(code, fresh=fresh)
            if not entry.HasField("succession"):
                break
            body = rpb.SuccessionList.FromString(entry.succession.body)
            s = next(s for s in body.successions if code in s.old_codes)
            chain.append((code, s, body.issuer))
            code = s.successor
            if code in seen:
                raise Rejected(Reason.SUCCESSION_CYCLE, f"the successions from {chain[0][0]} lead back to {code}")
            seen.add(code)
        return chain

    def _succession_numbers(self) -> dict[str, int]:
        return self.successions.numbers() if self.successions is not None else {}

    def _caught_up(self, der: bytes) -> None:
        """The parent's CRL, from its answer to a registration or a heartbeat."""
        if not der or self.crl is None:
            return
        try:
            self.crl.offer(der, self.parent or "parent")
        except Rejected as r:
            log.warning("CRL from parent %s refused: %s", self.parent, r.public_text,
                        extra=logs.fields(agency=self.parent, reason=r.reason))

    def push_crl(self, der: bytes) -> None:
        """Pass a CRL we just took to every registered child, all at once, in the background; a child that
        misses it gets it with its next heartbeat's answer."""
        children = store.children(self.db)
        if not children or not der:
            return

        def push() -> None:
            answers = self.transport.push_crl([Peer(c.code, c.endpoint) for c in children], der, CALL_TIMEOUT_S)
            for code, answer in answers.items():
                if not isinstance(answer, TransportError):
                    continue
                refused = answer.refused
                if refused is None or refused.reason is not Reason.CRL_OUTDATED:
                    log.info("CRL not pushed to %s (%s): it catches up with its next heartbeat",
                             code, refused.public_text if refused is not None else answer.what)
        threading.Thread(target=push, name="crl-push", daemon=True).start()

    def _claim_problem(self, child: str, code: str, parent: str, reported: dict[str, str],
                       holders: dict[str, str]) -> str:
        """Why `child` may not place `code` under `parent` ("" if it may).

        A QCVN code's place is fixed by the code rule; an odd code is placed by the YAML of
        the node it hangs under, which only its own subtree can vouch for. So a child may
        claim only odd codes whose reported chain of parents ends at itself, that this
        node's configuration does not place elsewhere, and that no other child holds."""
        if not is_identifier(code) or not is_identifier(parent):
            return f"{code!r} under {parent!r} is not an agency code"
        if is_qcvn(code) and (parent != child or self._answering_for(code) != child):
            return (f"{code} is a QCVN 102 code: its place in the tree is fixed by the code rule"
                    " (or by a succession held here retiring a unit enclosing it into the node it moves under)")
        if code == child:  # an odd child names its own place: under us, where it registered
            return "" if parent == self.code else f"{code} is registered here, under {self.code}, not {parent}"
        if code == self.code or store.get(self.db, code) is not None:
            return f"{code} is registered here in its own right"
        if code == ROOT or code in self._ancestors():  # such a claim made every node above fail to build its tree
            return f"{code} is above {self.code} in the tree"
        if self.configured_parents.get(code, parent) != parent:
            return f"{code} is configured under {self.configured_parents[code]}, not {parent}"
        if holders.get(code, child) != child:
            return f"{code} is already vouched for by {holders[code]}"
        if not self._vouched(child, code, parent, reported):
            return f"{code} under {parent} is not in {child}'s subtree"
        return ""

    def _ancestors(self) -> list[str]:
        try:
            return self.hierarchy.ancestors(self.code)
        except CodeError:
            return [ROOT]

    def _vouched(self, child: str, code: str, parent: str, reported: dict[str, str]) -> bool:
        """Whether the reported chain of parents from `code` reaches `child` (by claims, then the code rule)."""
        seen = set()
        while parent not in seen:
            if parent == child:
                return True
            seen.add(parent)
            if parent in reported:
                parent = reported[parent]
                continue
            try:
                return self.configured.is_under(parent, child)
            except CodeError:
                return False
        return False

    def _registered(self, code: str, endpoint: str, record: bytes, previous: bytes | None) -> None:
        """What routing reads, after one child's registration: its endpoint and pin, and the tree only if the
        child is not already placed under us in it (an odd or re-parented child new here). A full rebuild
        reads every child's record: a thousand children registering made start-up quadratic."""
        with self._routing:
            self._endpoints[code] = endpoint
            self.pins.pin(code, record, previous)
            odd = not is_qcvn(code) or self._rule_parent(code) != self.code
            if odd and not self._places(code, self.code):
                self._refresh_hierarchy()

    def _places(self, code: str, parent: str) -> bool:
        """Whether the tree routing reads already puts `code` directly under `parent`."""
        try:
            return self.hierarchy.parent(code) == parent
        except CodeError:
            return False

    def _refresh_hierarchy(self) -> None:
        """Rebuild what routing reads on every envelope: the tree (with odd codes) and child endpoints.

        One change at a time (with a registration's own, `_registered`), reading after the lock is taken: each
        caller has committed its change before calling, so the last to run reads every change. Unserialized,
        a rebuild could read the table before a child's registration was committed and publish that older
        reading last: a registered child missing from the endpoints, its mail refused NOT_A_NEIGHBOUR while
        its heartbeats (which change nothing routing reads) were taken."""
        with self._routing:
            self._rebuild()

    def _rebuild(self) -> None:
        children = store.children(self.db)
        self._endpoints = {c.code: c.endpoint for c in children}
        self.pins.load((c.code, c.record, c.previous_cert) for c in children)
        extra = dict(store.odd_codes(self.db))
        extra.update({c.code: self.code for c in children if not is_qcvn(c.code) or self._rule_parent(c.code)
                      != self.code})  # odd children, and children re-parented here (_reparented)
        if self.parent and (not is_qcvn(self.code) or self._rule_parent(self.code) != self.parent):
            extra[self.code] = self.parent  # an odd or re-parented node knows its own place: under its parent
        extra.update(self.configured_parents)
        try:
            self.hierarchy = Hierarchy(extra)
        except CodeError as e:
            log.warning("ignoring learned odd codes: %s", e)

    def _rule_chain(self, code: str) -> list[str]:
        try:
            return self.configured.ancestors(code)
        except CodeError:
            return []

    def _rule_parent(self, code: str) -> str | None:
        try:
            return self.configured.parent(code)
        except CodeError:
            return None

    def odd_codes_below(self) -> dict[str, str]:
        """What we report up: odd codes in our subtree (our odd children and theirs). Read from the mailbox
        once per commit (every heartbeat asks; only a registration or a stored claim changes it)."""
        seen = self.db.commits  # read first: a commit after it makes the memo stale, never wrong
        if self._below is not None and self._below[0] == seen:
            return dict(self._below[1])
        out = self._odd_codes_below()
        self._below = (seen, out)
        return dict(out)

    def _odd_codes_below(self) -> dict[str, str]:
        out = dict(store.odd_codes(self.db))
        out.update({c.code: self.code for c in store.children(self.db) if not is_qcvn(c.code)
                    or self.code not in self._rule_chain(c.code)})  # odd, or re-parented here from another branch
        if not is_qcvn(self.code) and self.parent:
            out[self.code] = self.parent
        return out

    def entry_of(self, child: store.Child) -> rpb.DirectoryEntry:
        seen = self.last_seen(child)
        entry = rpb.DirectoryEntry(
            record=rpb.SignedRecord(record=child.record, signature=child.signature),
            reachable=self.clock.now_ms() - seen <= self.stale_after_ms, last_seen_ms=seen)
        retired = self.successions.retired(child.code) if self.successions is not None else None
        if retired is not None:  # still registered, but retired: listings and lookups say who answers for it
            entry.succession.CopyFrom(self.successions.list_of(retired.issuer))
        return entry

    def is_child(self, code: str) -> bool:
        return code in self._endpoints

    def child_endpoint(self, code: str) -> str | None:
        return self._endpoints.get(code)  # kept current by register(); read on every routed envelope

    # ---- lookups -------------------------------------------------------------------

    def lookup(self, code: str, from_below: bool = True, fresh: bool = False) -> rpb.DirectoryEntry:
        """The agency's signed record, from here, the cache, or one step towards it.

        Positive answers are signed by the agency itself, so anyone's may be cached and
        shared. A negative answer is cached only where it is authoritative (the registered
        child on the code's route, or our parent, said NOT_FOUND), for a few seconds and per
        asking side: a query from above that we may not pass up must not teach the senders
        below us that a code does not exist (the poisoned-cache attack)."""
        fields.check_code(code)  # a twin of a QCVN code is nobody's: not asked for anywhere
        if code == self.code:
            return self.own_entry()
        retired = self.retired_entry(code)
        if retired is not None:
            return retired
        child = store.get(self.db, code)
        if child is not None:
            return self.entry_of(child)
        now = self.clock.now_ms()
        side = (code, from_below)
        with self._lock:
            cached = self._cache.get(code)
            unknown_until = self._unknown.get(side, 0)
        # `fresh` (a caller who was told the record changed) skips only answers older than FRESH_WITHIN_MS: callers
        # asking fresh again and again cost one question up the tree per code and second, not one each
        recent = now - FRESH_WITHIN_MS
        if cached and cached[1] > now and (not fresh or cached[1] - self.cache_ttl_ms > recent):
            return cached[0]
        if unknown_until > now and (not fresh or unknown_until - NEGATIVE_TTL_MS > recent):
            raise Rejected(Reason.UNKNOWN_RECIPIENT, f"no agency {code} is registered")
        authoritative = self._authoritative(code, from_below)
        try:
            entry = self._ask(code, from_below, lambda peer, up: self.transport.lookup(
                peer, rpb.LookupRequest(code=code, from_below=up, fresh=fresh))).entry
            if not self._checked_retirement(code, entry) or entry.HasField("record"):
                record = records.verify(entry.record, self.trust)
                if record.code != code:
                    raise Rejected(Reason.BAD_SIGNATURE, f"lookup for {code} answered with {record.code}")
        except Rejected as r:
            if r.reason is Reason.CHILD_BUSY and cached:
                return cached[0]  # the agency's own signed record, past its cache time: better than waiting
            if r.reason is Reason.UNKNOWN_RECIPIENT and authoritative:
                with self._lock:
                    self._trim(now)
                    self._unknown[side] = now + NEGATIVE_TTL_MS
            raise
        with self._lock:
            self._trim(now)
            self._cache[code] = (entry, now + self.cache_ttl_ms)
        return entry

    def seal_key_of(self, code: str) -> bytes:
        """The seal key `code`'s signed record publishes (b"" for a node older than sealing); as `lookup`,
        Rejected when it cannot be had. Records are checked (seal key included) before they are kept."""
        try:
            entry = self.lookup(code)
        except Rejected:
            address = self.peer_addresses.get(code)
            if address is None:
                raise
            entry = self._own_record_of_peer(code, address)
        if not entry.HasField("record") and entry.HasField("succession"):
            # retired, and its node no longer answers: no key to seal to; kept here until re-addressed to its
            # successor (node.exchange.follow), never sent in clear
            raise Rejected(Reason.NOT_REGISTERED_YET, f"{code} is retired and no longer registered",
                           metadata={"waits_at": self.code})
        return rpb.AgencyRecord.FromString(entry.record.record).seal_key

    def _own_record_of_peer(self, code: str, address: str) -> rpb.DirectoryEntry:
        """A configured peer outside our branch of the tree (a lookup through the tree cannot reach it) is
        asked for its own signed record, checked and cached like any other answer."""
        entry = self._call(code, address, lambda peer: self.transport.lookup(peer, rpb.LookupRequest(code=code))).entry
        record = records.verify(entry.record, self.trust)
        if record.code != code:
            raise Rejected(Reason.BAD_SIGNATURE, f"lookup for {code} answered with {record.code}")
        now = self.clock.now_ms()
        with self._lock:
            self._trim(now)
            self._cache[code] = (entry, now + self.cache_ttl_ms)
        return entry

    def _authoritative(self, code: str, from_below: bool) -> bool:
        """Whether a NOT_FOUND for `code` would come from the node that must know: the registered
        child on its route, or (for a code outside our subtree, asked from below) our parent."""
        try:
            if self.hierarchy.is_under(code, self.code):
                return store.get(self.db, self.hierarchy.next_hop(self.code, code)) is not None
        except (CodeError, ValueError):
            pass
        return from_below and bool(self.parent and self.parent_address)

    def _trim(self, now: int) -> None:
        """Bound both caches (a peer can ask for any number of codes): drop what expired, then all."""
        for cache in (self._cache, self._unknown):
            if len(cache) >= CACHE_LIMIT:
                for key in [k for k, v in cache.items() if (v[1] if isinstance(v, tuple) else v) <= now]:
                    del cache[key]
                if len(cache) >= CACHE_LIMIT:
                    cache.clear()

    def children(self, code: str, recursive: bool, from_below: bool = True) -> list[rpb.DirectoryEntry]:
        fields.check_code(code)
        if code != self.code:
            return self._proven(code, self._ask(code, from_below, lambda peer, up: self.transport.children(
                peer, rpb.ChildrenRequest(code=code, recursive=recursive, from_below=up))).entries)
        entries = [self.entry_of(c) for c in store.children(self.db)]
        if recursive:  # each child's listing is bounded (entries_per_listing): the whole one by the tree's width
            for c in store.children(self.db):
                try:
                    entries.extend(self._proven(c.code, self._call_down(c.code, lambda peer: self.transport.children(
                        peer, rpb.ChildrenRequest(code=c.code, recursive=True))).entries))
                except Rejected as r:
                    log.info("subtree of %s not listed: %s", c.code, r.public_text)
        return entries

    MAX_CLIMB = 8  # national → province → district → commune is 4; odd codes may add a few

    def top(self) -> str:
        """The highest node this one reaches through its parents (itself without one): the agencies' own
        signed records name each one's parent. A parent that does not answer ends the climb there."""
        code, parent = self.code, (self.parent if self.parent_address else None)
        for _ in range(self.MAX_CLIMB):
            if not parent:
                break
            try:
                record = records.verify(self.lookup(parent).record, self.trust)
            except Rejected as r:
                log.info("directory: the tree above %s not reached: %s", code, r.public_text)
                break
            code, parent = parent, record.parent
        return code

    def whole_tree(self) -> list[rpb.DirectoryEntry]:
        """Every agency reachable from this node: the top of its tree and everything registered below it."""
        top = self.top()
        head = self.own_entry() if top == self.code else self.lookup(top)
        return [head, *self.children(top, recursive=True)]

    def _proven(self, under: str, entries) -> list[rpb.DirectoryEntry]:
        """What another node listed below `under`, but only agencies' own signed records, each below `under`
        where this node can place it: a child answering for its subtree may not make agencies up, nor
        move one into it (a record that did not parse once failed the whole listing). A listing longer than
        `limits.entries_per_listing` is refused unchecked: 20,000 records cost two seconds of CPU to check."""
        if len(entries) > self.limits.entries_per_listing:
            raise over(f"records listed below {under}", len(entries), self.limits.entries_per_listing, "entries")
        kept, dropped = [], []
        for entry in entries:
            try:
                record = records.verify(entry.record, self.trust)
                try:
                    inside = self.hierarchy.is_under(record.code, under)
                except CodeError:
                    inside = True  # an odd code we have not learned: its own signature is the proof
                if not inside:
                    raise Rejected(Reason.WRONG_PARENT, f"{record.code} is not below {under}")
            except Rejected as r:
                dropped.append(r.public_text)
                continue
            if entry.HasField("succession"):  # "retired, successor ..." only on the issuer's checked signature
                try:
                    self._checked_retirement(record.code, entry)
                except Rejected as r:
                    dropped.append(f"{record.code}'s succession: {r.public_text}")
                    entry = rpb.DirectoryEntry(record=entry.record, reachable=entry.reachable,
                                               last_seen_ms=entry.last_seen_ms)
            kept.append(entry)
        if dropped:
            log.warning("listing below %s: %d entries dropped, first: %s", under, len(dropped), dropped[0])
        return kept

    def _ask(self, code: str, from_below: bool, call):
        """Send a request one step towards `code`: down if it is below us, else up if allowed."""
        try:
            below = self.hierarchy.is_under(code, self.code)
        except CodeError:
            below = False
        if below:
            hop = self.hierarchy.next_hop(self.code, code)
            return self._call_down(hop, lambda peer: call(peer, False))
        if from_below and self.parent and self.parent_address:
            return self._call(self.parent, self.parent_address, lambda peer: call(peer, True))
        raise Rejected(Reason.UNKNOWN_RECIPIENT, f"no agency {code} is registered")

    def _call_down(self, child_code: str, call):
        child = store.get(self.db, child_code)
        if child is None:  # placed under us by the code rule, not registered: "not yet" (a restore, a new commune)
            # where mail for it waits (here: parked) and for how long at most, for the sender to show (issue 17)
            raise Rejected(Reason.NOT_REGISTERED_YET, f"{child_code} has not registered with {self.code} (yet)",
                           metadata={"waits_at": self.code, "park_for_s": str(int(self.park_for_s))})
        with self._down.holding(child_code, lambda: Rejected(
                Reason.CHILD_BUSY, f"{child_code} has {self._down.limit} questions from {self.code} outstanding "
                f"(limits.lookups_down_per_child)", metadata={"child": child_code})):
            return self._call(child_code, child.endpoint, call)

    def _call(self, code: str, address: str, call):
        """`call(Peer(code, address))` through the transport; what goes wrong as our own Rejected."""
        try:
            return call(Peer(code, address))
        except TransportError as e:
            if e.status == grpc.StatusCode.NOT_FOUND:
                raise Rejected(Reason.UNKNOWN_RECIPIENT, e.detail or "not found") from None
            refused = e.refused
            if refused is not None and (refused.reason.permanent or refused.reason is Reason.NOT_REGISTERED_YET):
                raise refused from None  # the node that knows said so ("not yet" is its answer, not a failure)
            raise Rejected(Reason.UNREACHABLE, f"{code} at {address}: {e.what}") from None

    # ---- towards our parent ----------------------------------------------------------

    def send_checkpoint(self, signed: rpb.SignedCheckpoint) -> rpb.CheckpointResponse:
        """Hand our signed audit checkpoint to the parent (Rejected if there is none or it refuses)."""
        if not self.parent or not self.parent_address:
            raise Rejected(Reason.UNREACHABLE, "no parent to hand audit checkpoints to")
        return self._call(self.parent, self.parent_address, lambda peer: self.transport.checkpoint(peer, signed))

    def parent_problem(self, unhealthy_after_ms: int) -> str | None:
        """Why the link to our parent counts as broken: no registration or heartbeat taken for that long."""
        if not self.parent or not self.parent_address:
            return None
        if self.clock.now_ms() - self.parent_ok_ms <= unhealthy_after_ms or not self.parent_error:
            return None
        what = "heartbeats to" if self.registered else "registration with"
        return (f"parent link: {what} {self.parent} at {self.parent_address} failing for more than "
                f"{unhealthy_after_ms // 1000}s (registry.unhealthy_after): {self.parent_error}; "
                f"run `lienthong doctor` to check that peer")

    def beat_early(self, ms: int) -> None:
        """Let the next heartbeat go `ms` sooner than a whole interval after the last one (the scheduler's
        jitter: node.runtime)."""
        self._last_beat_ms -= ms

    def keepalive(self) -> None:
        """Register with the parent until it accepts us, then heartbeat.

        The scheduler calls this on a short tick until registration succeeds and at the
        heartbeat interval after (the caller reads `registered` to switch)."""
        if not self.parent or not self.parent_address or not self.endpoint:
            return
        now = self.clock.now_ms()
        try:
            if not self.registered:
                own = self.own_entry().record
                resp = self._call(self.parent, self.parent_address, lambda peer: self.transport.register(peer, own))
                self.registered, self._last_beat_ms, self._counters_sent = True, now, None
                self.parent_ok_ms, self.parent_error = now, ""
                log.info("registered with parent %s (heartbeat every %d ms)", self.parent, resp.heartbeat_ms)
                self.on_alive(self.parent, "accepted our registration")
                self._caught_up(resp.crl_der)
                self._successions_caught_up(resp.successions)
            elif now - self._last_beat_ms >= self.heartbeat_ms:
                odd = self.odd_codes_below()
                commits = self.db.commits  # read first: a commit after it makes the next beat send, never skip
                sent = self._counters_sent
                if sent is not None and sent[0] == commits and now - sent[1] < STATS_RESEND_MS:
                    counters = []  # nothing committed since the parent took our counters: it keeps those
                else:
                    counters = stats.heartbeat_payload(self.db, self.signer, self.name, self.clock)
                held = self.crl.number if self.crl is not None else 0
                resp = self._call(self.parent, self.parent_address, lambda peer: self.transport.heartbeat(
                    peer, rpb.HeartbeatRequest(code=self.code, time_ms=now, odd_codes=odd, signed_stats=counters,
                                               crl_number=held, succession_numbers=self._succession_numbers())))
                self._last_beat_ms = now
                if counters:
                    self._counters_sent = (commits, now)
                self.parent_ok_ms, self.parent_error = now, ""
                self.on_alive(self.parent, "took our heartbeat")
                self._caught_up(resp.crl_der)
                self._successions_caught_up(resp.successions)
        except Rejected as r:
            # said once per change, not once per tick: a parent down for a day is one line, not 86,400
            repeated = r.public_text == self.parent_error
            self.parent_error = r.public_text
            if r.reason is Reason.UNKNOWN_RECIPIENT and self.registered:
                self.registered = False  # the parent forgot us: register again on the next tick
            # an outage is a WARNING when it starts or its error changes (a parent down means no mail up the tree)
            log.log(logging.DEBUG if repeated else logging.WARNING, "registry: %s", r.public_text,
                    extra=logs.fields(agency=self.parent, reason=r.reason))
