"""Succession lists: which agency codes are retired and who answers for them now.

When agencies merge or are re-coded, the authority above them issues a succession: old code(s) ->
successor, from an effective time, with a reason (docs/restructuring.md). An authority keeps all of
its successions in one list, signed with its agency key and numbered: a newer list replaces the
older one, as a newer CRL does (node.identity.crl_holder), and it travels the same way: pushed down
the tree (each node checks it and passes it on), caught up from the parent's answer to a
registration or heartbeat, kept in the mailbox so a restart keeps it.

The checks, each with its own reason, before anything is kept: bounded sizes
(SUCCESSION_TOO_LARGE, counted before anything is parsed further), the issuer's certified key signed
it (SUCCESSION_BAD_SIGNATURE), the issuer is the parent of every code it retires and the successor
is in its subtree (SUCCESSION_NOT_COMPETENT: a commune cannot retire its province, nor a province
another's communes), no code succeeds itself, directly or through the lists already held, and none
is retired twice (SUCCESSION_CYCLE), and the list is newer than the one held from that issuer
(SUCCESSION_STALE).
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

from google.protobuf.message import DecodeError

from .. import events, fields
from ..events import EventSink, NoEvents
from ..clock import Clock
from ..codes import ROOT, CodeError, Hierarchy, is_identifier, is_qcvn
from ..envelope import Signer
from ..errors import Reason, Rejected
from ..identity import signed
from ..identity.trust import TrustStore
from ..pb import registry_pb2 as rpb
from ..store import successions as store
from ..store.database import Database

log = logging.getLogger(__name__)

MAX_OLD_CODES = 64        # codes one succession retires (a commune merger joins a handful)
MAX_SUCCESSIONS = 500     # successions in one issuer's list (a province's commune mergers: about 100)
MAX_LISTS = 16            # lists in one push or answer: one per issuer above a node
MAX_REASON = 500          # characters of a reason
MAX_LIST_BYTES = 256 * 1024
MAX_CHAIN = 8             # successions followed from a code to the agency that answers for it now


def _too_large(what: str, count: int, limit: int) -> Rejected:
    return Rejected(Reason.SUCCESSION_TOO_LARGE, f"{what}: {count}, at most {limit}",
                    metadata={"limit": str(limit), "count": str(count)})


def check_count(lists: Iterable, where: str = "succession lists") -> None:
    n = len(lists)  # type: ignore[arg-type]
    if n > MAX_LISTS:
        raise _too_large(where, n, MAX_LISTS)


@dataclass(frozen=True)
class Retired:
    """One retired code, as a held list says."""
    code: str
    successor: str
    effective_ms: int
    reason: str
    issuer: str
    number: int
    issued_ms: int


def sign(signer: Signer, number: int, successions: list[rpb.Succession], now_ms: int) -> rpb.SignedSuccessionList:
    body = rpb.SuccessionList(issuer=signer.code, number=number, issued_ms=now_ms, successions=successions)
    data = body.SerializeToString()
    made = signed.sign(signer, data)
    return rpb.SignedSuccessionList(body=data, signature=made.signature, cert_der=made.cert_der)


def check_succession(s: rpb.Succession, where: str = "") -> None:
    """Bounds and form of one succession, as the issuer is asked for it or a list brings it."""
    if not s.old_codes:
        raise Rejected(Reason.INVALID_REQUEST, "a succession retires at least one code", field=f"{where}old_codes")
    if len(s.old_codes) > MAX_OLD_CODES:
        raise _too_large("old codes in one succession", len(s.old_codes), MAX_OLD_CODES)
    if len(s.reason) > MAX_REASON:
        raise _too_large("characters of a succession's reason", len(s.reason), MAX_REASON)
    if not s.reason.isprintable():
        raise Rejected(Reason.UNPRINTABLE, "a succession's reason holds control characters: give it on one line",
                       field=f"{where}reason")
    for i, code in enumerate([*s.old_codes, s.successor]):
        name = f"{where}old_codes[{i}]" if i < len(s.old_codes) else f"{where}successor"
        fields.check_code(code, name)
        if not is_identifier(code) or code == ROOT:
            raise Rejected(Reason.INVALID_REQUEST, f"{code!r} is not an agency code", field=name)
    if len(set(s.old_codes)) != len(s.old_codes):
        raise Rejected(Reason.SUCCESSION_CYCLE, "a code is retired twice in one succession")
    if s.successor in s.old_codes:
        raise Rejected(Reason.SUCCESSION_CYCLE, f"{s.successor} cannot succeed itself")


def parse(signed: rpb.SignedSuccessionList) -> rpb.SuccessionList:
    """The list's body, within its bounds (nothing else checked yet)."""
    size = len(signed.body) + len(signed.signature) + len(signed.cert_der)
    if size > MAX_LIST_BYTES:
        raise _too_large("bytes of a succession list", size, MAX_LIST_BYTES)
    try:
        body = rpb.SuccessionList.FromString(signed.body)
    except DecodeError:
        raise Rejected(Reason.SUCCESSION_BAD_SIGNATURE, "succession list does not parse") from None
    if len(body.successions) > MAX_SUCCESSIONS:
        raise _too_large("successions in one list", len(body.successions), MAX_SUCCESSIONS)
    fields.check_code(body.issuer, "issuer")
    if not is_identifier(body.issuer):
        raise Rejected(Reason.SUCCESSION_BAD_SIGNATURE, "succession list names no issuer")
    for i, s in enumerate(body.successions):
        check_succession(s, f"successions[{i}].")
    return body


def verify(signed_list: rpb.SignedSuccessionList, trust: TrustStore, hierarchy: Hierarchy) -> rpb.SuccessionList:
    """The list, if within bounds, signed by its issuer's trusted certificate, and the issuer is competent
    for every succession in it (see the module's docstring); Rejected with the reason otherwise."""
    body = parse(signed_list)
    try:
        signed.check(trust, signed_list.cert_der, signed_list.signature, signed_list.body, signer=body.issuer,
                     wrong_signer=lambda ident: Rejected(
                         Reason.SUCCESSION_BAD_SIGNATURE,
                         f"succession list is issued by {body.issuer}, its certificate is for {ident.code}"),
                     bad_signature=lambda: Rejected(
                         Reason.SUCCESSION_BAD_SIGNATURE,
                         f"the signature of {body.issuer}'s succession list does not verify"))
    except Rejected as r:
        if r.reason == Reason.SUCCESSION_BAD_SIGNATURE:
            raise
        raise Rejected(Reason.SUCCESSION_BAD_SIGNATURE, f"succession list certificate: {r.public_text}") from None
    retired: set[str] = set()
    for s in body.successions:
        competent(body.issuer, s, hierarchy)
        if retired & set(s.old_codes):
            raise Rejected(Reason.SUCCESSION_CYCLE, f"{sorted(retired & set(s.old_codes))[0]} is retired twice "
                           f"in {body.issuer}'s list")
        retired.update(s.old_codes)
    return body


CODE_RULE = Hierarchy()  # the QCVN 102 rule alone


def competent(issuer: str, s: rpb.Succession, hierarchy: Hierarchy) -> None:
    """Only the parent of the retired codes issues for them (the root for provinces), for a successor below it or
    itself (a level abolished: a district's mail goes to its province).

    A code this node cannot place (an identifier outside the QCVN form registered in another branch: only the
    nodes above it learn where it hangs) is taken where the issuer's signed list puts it, as a listing takes
    an odd code on its own record's signature (node.registry.directory._proven); every code this node can
    place, the QCVN ones always, must be where the issuer's competence says."""
    for code in s.old_codes:
        try:
            parent = hierarchy.parent(code)
        except CodeError:
            continue
        if parent != issuer:
            raise Rejected(Reason.SUCCESSION_NOT_COMPETENT, f"{issuer} is not the parent of {code}"
                           + (f" ({parent} is)" if parent else "") + ": it cannot retire it")
    try:
        below = s.successor == issuer or hierarchy.is_under(s.successor, issuer)
    except CodeError:
        below = not is_qcvn(s.successor)
    if not below and is_qcvn(s.successor):  # or below it by the code rule: a successor since re-parented elsewhere
        try:                                # (its district abolished) was the issuer's when it was named
            below = CODE_RULE.is_under(s.successor, issuer)
        except CodeError:
            below = False
    if not below:
        raise Rejected(Reason.SUCCESSION_NOT_COMPETENT, f"successor {s.successor} is neither {issuer} nor below it")


def chains_problem(retired: Mapping[str, str]) -> str | None:
    """Why the union of successions cannot stand (a code succeeding itself, a chain over MAX_CHAIN), or None."""
    for start in retired:
        code, steps = start, 0
        while code in retired:
            code, steps = retired[code], steps + 1
            if code == start:
                return f"{start} would succeed itself (through {steps} successions)"
            if steps > MAX_CHAIN:
                return f"the successions from {start} chain over {MAX_CHAIN} steps"
    return None


class Successions:
    """The lists this node holds, newest per issuer; what they retire; taking a newer one."""

    def __init__(self, db: Database, trust: TrustStore, clock: Clock, hierarchy: Callable[[], Hierarchy],
                 events_: EventSink = NoEvents()) -> None:
        self.db, self.trust, self.clock, self.hierarchy = db, trust, clock, hierarchy
        self.events = events_
        self.on_new: list[Callable[[rpb.SignedSuccessionList], None]] = []  # after a newer list is kept
        self._lock = threading.Lock()  # one offer at a time: check, write, adopt
        self._lists: dict[str, tuple[rpb.SuccessionList, rpb.SignedSuccessionList]] = {}
        self._retired: dict[str, Retired] = {}

    def load(self) -> None:
        """At start-up: the lists kept last time (our own store: parsed, not judged again)."""
        for issuer, _, data in store.lists(self.db):
            try:
                signed = rpb.SignedSuccessionList.FromString(data)
                self._lists[issuer] = (parse(signed), signed)
            except (DecodeError, Rejected) as e:
                log.warning("ignoring the succession list kept from %s: %s", issuer, e)
        self._rebuild()

    # ---- what is held ----------------------------------------------------------------

    def numbers(self) -> dict[str, int]:
        return {issuer: body.number for issuer, (body, _) in self._lists.items()}

    def lists(self) -> list[rpb.SignedSuccessionList]:
        return [signed for _, signed in sorted(self._lists.values(), key=lambda x: x[0].issuer)]

    def newer_than(self, numbers: Mapping[str, int]) -> list[rpb.SignedSuccessionList]:
        """What a child holding `numbers` lacks."""
        return [signed for issuer, (body, signed) in sorted(self._lists.items())
                if numbers.get(issuer, 0) < body.number]

    def own(self, issuer: str) -> rpb.SuccessionList | None:
        held = self._lists.get(issuer)
        return held[0] if held else None

    def all_retired(self) -> list[Retired]:
        return sorted(self._retired.values(), key=lambda r: (r.issuer, r.code))

    def retired(self, code: str) -> Retired | None:
        """`code`'s succession, if one held is in effect now."""
        r = self._retired.get(code)
        return r if r is not None and r.effective_ms <= self.clock.now_ms() else None

    def list_of(self, issuer: str) -> rpb.SignedSuccessionList | None:
        held = self._lists.get(issuer)
        return held[1] if held else None

    def successor(self, code: str) -> str | None:
        """Who answers for `code` now: its successions followed (at most MAX_CHAIN); None if not retired."""
        chain = self.successors(code)
        return chain[-1] if chain else None

    def successors(self, code: str) -> list[str]:
        """`code`'s successors in order, the last answering for it now (at most MAX_CHAIN); empty if not retired."""
        chain, seen = [], {code}
        for _ in range(MAX_CHAIN):
            r = self.retired(code)
            if r is None or r.successor in seen:
                break
            code = r.successor
            chain.append(code)
            seen.add(code)
        return chain

    def effective_codes(self) -> list[str]:
        now = self.clock.now_ms()
        return sorted(c for c, r in self._retired.items() if r.effective_ms <= now)

    # ---- issuing ---------------------------------------------------------------------

    def issue(self, signer: Signer, succession: rpb.Succession) -> rpb.SuccessionList:
        """Add `succession` to this node's own list (the issuer is this node), signed with the next number, and
        take it here (checked as any list from elsewhere: competence, cycles, bounds); the list as signed."""
        if not succession.reason.strip():
            raise Rejected(Reason.INVALID_REQUEST, "say why (the reason travels with the succession)", field="reason")
        check_succession(succession)
        own = self.own(signer.code)
        items = list(own.successions) if own is not None else []
        signed = sign(signer, (own.number if own is not None else 0) + 1, [*items, succession], self.clock.now_ms())
        if len(signed.body) + len(signed.signature) + len(signed.cert_der) > MAX_LIST_BYTES or \
                len(items) + 1 > MAX_SUCCESSIONS:
            raise _too_large("successions in this node's list", len(items) + 1, MAX_SUCCESSIONS)
        self.offer(signed, "issued here")
        return rpb.SuccessionList.FromString(signed.body)

    # ---- taking a list ---------------------------------------------------------------

    def offer(self, signed: rpb.SignedSuccessionList, source: str) -> bool:
        """Take a list newer than the one held from its issuer: True if taken, False if it is the very list
        held; Rejected (nothing changed) otherwise."""
        with self._lock:
            body = verify(signed, self.trust, self.hierarchy())
            held = self._lists.get(body.issuer)
            if held is not None:
                if held[1].body == signed.body:
                    return False
                if body.number <= held[0].number:
                    raise Rejected(Reason.SUCCESSION_STALE, f"{body.issuer}'s succession list number {body.number} "
                                   f"is not newer than {held[0].number}", metadata={"held": str(held[0].number)})
            union = {c: r.successor for c, r in self._retired.items() if r.issuer != body.issuer}
            for s in body.successions:
                for code in s.old_codes:
                    if code in union:
                        raise Rejected(Reason.SUCCESSION_CYCLE, f"{code} is already retired by another list")
                    union[code] = s.successor
            problem = chains_problem(union)
            if problem:
                raise Rejected(Reason.SUCCESSION_CYCLE, problem)
            store.put(self.db, body.issuer, body.number, signed.SerializeToString(), self.clock.now_ms())
            self._lists[body.issuer] = (body, signed)
            self._rebuild()
        log.info("succession list %d of %s in use (%d successions) from %s", body.number, body.issuer,
                 len(body.successions), source[:64])
        for fn in self.on_new:
            try:
                fn(signed)
            except Exception:  # noqa: BLE001 - the list is in use; a failing follower must not undo that
                log.exception("after taking succession list %d of %s", body.number, body.issuer)
        # last: a watcher that sees the event finds the list pushed on and our queued mail re-addressed
        self.events.emit(events.SUCCESSION, peer=source[:64], recipient=body.issuer, succession_number=body.number,
                         time_ms=self.clock.now_ms())
        return True

    def offer_all(self, lists: Iterable[rpb.SignedSuccessionList], source: str) -> list[Rejected]:
        """Each list offered on its own (one refused does not keep the others out); the refusals."""
        refused = []
        for signed in lists:
            try:
                self.offer(signed, source)
            except Rejected as r:
                refused.append(r)
        return refused

    def _rebuild(self) -> None:
        retired = {}
        for body, _ in self._lists.values():
            for s in body.successions:
                for code in s.old_codes:
                    retired[code] = Retired(code, s.successor, s.effective_ms, s.reason, body.issuer, body.number,
                                            body.issued_ms)
        self._retired = retired
