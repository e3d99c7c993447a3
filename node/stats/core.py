"""Counting, merging and summarising agency statistics (definitions: see the `node.stats` docstring)."""
from __future__ import annotations

import logging
from typing import Iterable

from google.protobuf.message import DecodeError

from ..clock import Clock
from ..codes import CodeError, Hierarchy
from ..envelope import Signer
from ..errors import Reason, Rejected
from ..identity import signed
from ..identity.trust import TrustStore
from ..pb import stats_pb2 as spb
from ..store import registry
from ..store import stats as store
from ..store import StoreError
from ..store.database import Database

log = logging.getLogger(__name__)

BARS = (3, 5)


def meets(agency: spb.AgencyStats, bar: int) -> bool:
    """True if the agency has returned at least `bar` distinct status codes."""
    return agency.distinct_codes_returned >= bar


def newest_by_code(rows: Iterable[spb.AgencyStats]) -> list[spb.AgencyStats]:
    """One row per code, the one with the newest as_of_ms (the first seen on a tie), in code order."""
    best: dict[str, spb.AgencyStats] = {}
    for r in rows:
        if r.code and (r.code not in best or r.as_of_ms > best[r.code].as_of_ms):
            best[r.code] = r
    return [best[c] for c in sorted(best)]


def _with_own(own: spb.AgencyStats, reported: Iterable[spb.AgencyStats]) -> list[spb.AgencyStats]:
    """Own row first (it always wins over anything reported under our code), then the rest by code."""
    return [own, *(r for r in newest_by_code(reported) if r.code != own.code)]


def sign(signer: Signer, stats: spb.AgencyStats) -> spb.SignedStats:
    """Counters signed where they are counted: no ancestor can invent or inflate them."""
    body = stats.SerializeToString(deterministic=True)
    mark = signed.sign(signer, body)
    return spb.SignedStats(stats=body, signature=mark.signature, cert_der=mark.cert_der)


def verify(row: spb.SignedStats, trust: TrustStore) -> spb.AgencyStats:
    """The counters, if the certificate is trusted, binds their code, and signed them; else Rejected."""
    try:
        stats = spb.AgencyStats.FromString(row.stats)
    except DecodeError:
        raise Rejected(Reason.MALFORMED, "counters do not parse") from None
    signed.check(trust, row.cert_der, row.signature, row.stats, signer=stats.code,
                 wrong_signer=lambda i: Rejected(Reason.SENDER_MISMATCH,
                                                 f"counters are for {stats.code!r}, certificate for {i.code}"),
                 bad_signature=lambda: Rejected(Reason.BAD_SIGNATURE, f"counters of {stats.code} are not signed by it"))
    return stats


def heartbeat_payload(db: Database, signer: Signer, name: str, clock: Clock) -> list[spb.SignedStats]:
    """What a child sends up on its heartbeat: its own counters, signed now, and the signed rows of its
    subtree as they came (the newest per code).

    Never stops a heartbeat: if the database cannot be read, it logs and returns an empty
    list, which the parent takes as "nothing new" (see `record_heartbeat`).
    """
    try:
        own = store.own_counters(db, signer.code, name, clock.now_ms(), children=registry.child_codes(db))
        reported = {}
        for signed in store.subtree_signed(db):
            stats = spb.AgencyStats.FromString(signed.stats)
            if stats.code != signer.code and (stats.code not in reported or stats.as_of_ms > reported[stats.code][0]):
                reported[stats.code] = (stats.as_of_ms, signed)
        return [sign(signer, own), *(signed for _, signed in (reported[c] for c in sorted(reported)))]
    except StoreError as e:
        log.warning("statistics left out of this heartbeat: %s", e)
        return []


def record_heartbeat(db: Database, child: str, rows: Iterable[spb.SignedStats], hierarchy: Hierarchy,
                     trust: TrustStore, now_ms: int) -> None:
    """On the parent: keep what a child reported for its subtree, replacing its previous report.

    Each row must be signed by the agency it counts and belong to the child's subtree, and
    the children it lists must be below its agency; others are dropped (and logged), so the
    parent passes on nothing it cannot prove. An empty report (a child that could not count)
    leaves the previous report in place.
    """
    kept: list[tuple[spb.AgencyStats, spb.SignedStats]] = []
    dropped: list[str] = []
    for signed in rows:
        try:
            stats = verify(signed, trust)
        except Rejected as r:
            dropped.append(r.public_text)
            continue
        if not vouched(child, [stats], hierarchy):
            dropped.append(f"{stats.code} is not in {child}'s subtree")
            continue
        stray = next((c for c in stats.children if not _parent_is(hierarchy, c, stats.code)), None)
        if stray is not None:  # else a subtree view lists agencies elsewhere in the tree as silent (not_reported)
            dropped.append(Rejected(Reason.WRONG_PARENT, f"{stats.code} lists {stray} as its child").public_text)
            continue
        kept.append((stats, signed))
    if dropped:
        log.warning("counters from %s dropped (%d): %s", child, len(dropped), dropped[0])
    if kept:
        store.store_child_subtree(db, child, kept, now_ms)


def _parent_is(hierarchy: Hierarchy, code: str, parent: str) -> bool:
    try:
        return hierarchy.parent(code) == parent
    except CodeError:
        return False


def vouched(child: str, rows: Iterable[spb.AgencyStats], hierarchy: Hierarchy) -> list[spb.AgencyStats]:
    """The rows a child may report: its own and those of codes below it in the tree."""
    out = []
    for r in rows:
        try:
            if r.code == child or hierarchy.is_under(r.code, child):
                out.append(r)
        except CodeError:
            pass
    return out


def summarize(agencies: Iterable[spb.AgencyStats]) -> spb.StatsSummary:
    rows = list(agencies)
    received = sum(a.docs_received for a in rows)
    share = (lambda n: n / received) if received else (lambda n: 0.0)
    return spb.StatsSummary(
        agencies=len(rows),
        meeting_3=sum(meets(a, 3) for a in rows),
        meeting_5=sum(meets(a, 5) for a in rows),
        docs_received=received,
        share_answered_3=share(sum(a.docs_answered_3 for a in rows)),
        share_answered_5=share(sum(a.docs_answered_5 for a in rows)),
        docs_sent=sum(a.docs_sent for a in rows),
        statuses_sent=sum(a.statuses_sent for a in rows),
    )


def collect(db: Database, code: str, name: str, clock: Clock, subtree: bool) -> spb.StatsResponse:
    """This agency's counters, and with `subtree` everyone below it as last reported; with a summary.

    With `subtree`, `not_reported` names the agencies that some counted record (ours or a
    child's) lists as a registered child but that sent no counters of their own."""
    own = store.own_counters(db, code, name, clock.now_ms(), children=registry.child_codes(db))
    if not subtree:
        return spb.StatsResponse(agencies=[own], summary=summarize([own]))
    agencies = _with_own(own, store.subtree(db))
    seen = {a.code for a in agencies}
    missing = sorted({c for a in agencies for c in a.children} - seen)
    return spb.StatsResponse(agencies=agencies, summary=summarize(agencies), not_reported=missing)
