"""Counting, merging and summarising agency statistics (definitions: see the `node.stats` docstring)."""
from __future__ import annotations

import logging
from typing import Iterable

from ..clock import Clock
from ..codes import CodeError, Hierarchy
from ..pb import stats_pb2 as spb
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


def heartbeat_payload(db: Database, code: str, name: str, clock: Clock) -> list[spb.AgencyStats]:
    """What a child sends up on its heartbeat: its own counters and every row of its subtree.

    Never stops a heartbeat: if the database cannot be read, it logs and returns an empty
    list, which the parent takes as "nothing new" (see `record_heartbeat`).
    """
    try:
        return _with_own(store.own_counters(db, code, name, clock.now_ms()), store.subtree(db))
    except StoreError as e:
        log.warning("statistics left out of this heartbeat: %s", e)
        return []


def record_heartbeat(db: Database, child: str, rows: Iterable[spb.AgencyStats], hierarchy: Hierarchy,
                     now_ms: int) -> None:
    """On the parent: keep what a child reported for its subtree, replacing its previous report.

    Rows for codes outside the child's subtree are dropped. An empty report (a child that
    could not count, or one that predates statistics) leaves the previous report in place.
    """
    rows = list(rows)
    if rows:
        store.store_child_subtree(db, child, vouched(child, rows, hierarchy), now_ms)


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
    """This agency's counters, and with `subtree` everyone below it as last reported; with a summary."""
    own = store.own_counters(db, code, name, clock.now_ms())
    agencies = _with_own(own, store.subtree(db)) if subtree else [own]
    return spb.StatsResponse(agencies=agencies, summary=summarize(agencies))

