"""Invented statistics: a child's heartbeat carrying counters it cannot prove.

The heartbeat itself is answered (it also keeps the child alive), but D keeps only rows signed
by the agency they count and lying in M's subtree; why it dropped the rest is in D's log. D's
Stats subtree view afterwards shows only proven rows, and names the silent registered agency
(M2) in not_reported.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

from node.pb import stats_pb2 as spb
from node.pb import stats_pb2_grpc as sgrpc
from node.stats import sign

from .core import LogTail, Observed, case
from .world import C1, C2, D, D2, M, M2, P, TABLES, unknown_version

HEARTBEAT = "Registry.Heartbeat, M → D (signed_stats)"
HONEST = {(C1, C1), (C2, C2), (M, M)}


def counters(code: str, **values) -> spb.AgencyStats:
    return spb.AgencyStats(code=code, name=f"agency {code}", as_of_ms=1, **values)


def report(s, *rows: spb.SignedStats, unsigned=()) -> Observed:
    """M's heartbeat with its own signed counters and `rows`; what D logged about dropping the rest."""
    return report_rows(s, [s.w.own_stats(M), *rows], unsigned)


def report_rows(s, rows: list[spb.SignedStats], unsigned=()) -> Observed:
    w = s.w
    log = LogTail(Path(w.cluster.nodes[D].dir) / "node.log")
    w.heartbeat(M, rows=rows, unsigned=unsigned)
    assert w.rows(D, TABLES["subtree_stats"]) == HONEST
    view = sgrpc.StatsStub(w.api(D).channel).Get(spb.StatsRequest(subtree=True), metadata=w.api(D).metadata,
                                                 timeout=10)
    assert {a.code for a in view.agencies} == {D, C1, C2, M}, [a.code for a in view.agencies]
    assert M2 in view.not_reported and all(a.docs_received < 10**6 for a in view.agencies)
    found = re.search(rf"counters from {re.escape(M)} dropped \(\d+\): (.*)", log.text())
    if not found:
        return Observed("OK", "(ignored)")
    first = found.group(1)
    reason = re.match(r"([A-Z_]+): ", first)
    why = reason.group(1) if reason else "not in M's subtree" if "is not in" in first else first
    return Observed("OK", f"(dropped: {why})")


@case("invented stats", "counters for 48 agencies that do not exist, signed by M", "OK", "(dropped: SENDER_MISMATCH)",
      via=HEARTBEAT)
def _(s):
    m = s.w.signer(M)
    return report(s, *(sign(m, counters(f"{n:03d}.23.35.H53", docs_received=10**6)) for n in range(2, 50)))


@case("invented stats", "inflated counters of a sibling, signed by M", "OK", "(dropped: SENDER_MISMATCH)",
      via=HEARTBEAT)
def _(s):
    return report(s, sign(s.w.signer(M), counters(C1, docs_received=10**6, distinct_codes_returned=9)))


@case("invented stats", "a sibling's genuine counters replayed by M", "OK", "(dropped: not in M's subtree)",
      via=HEARTBEAT)
def _(s):
    return report(s, sign(s.w.signer(C2), counters(C2, docs_received=10**6)))


@case("invented stats", "the parent's counters replayed by M", "OK", "(dropped: not in M's subtree)", via=HEARTBEAT)
def _(s):
    return report(s, sign(s.w.signer(P), counters(P, docs_received=10**6)))


@case("invented stats", "counters signed over other bytes", "OK", "(dropped: BAD_SIGNATURE)", via=HEARTBEAT)
def _(s):
    good = s.w.own_stats(M)
    return report(s, spb.SignedStats(stats=counters(M, docs_received=10**6).SerializeToString(),
                                     signature=good.signature, cert_der=good.cert_der))


@case("invented stats", "counters with a certificate that does not parse", "OK", "(dropped: UNTRUSTED_CERT)",
      via=HEARTBEAT)
def _(s):
    good = s.w.own_stats(M)
    return report(s, spb.SignedStats(stats=good.stats, signature=good.signature, cert_der=b"\x30\x03\x02\x01\x00"))


@case("internal text", "counters whose certificate has an unknown X.509 version", "OK", "(dropped: UNTRUSTED_CERT)",
      via=HEARTBEAT)
def _(s):
    good = s.w.own_stats(M)
    return report(s, spb.SignedStats(stats=good.stats, signature=good.signature,
                                     cert_der=unknown_version(good.cert_der)))


@case("invented stats", "counters that do not parse", "OK", "(dropped: MALFORMED)", via=HEARTBEAT)
def _(s):
    return report(s, spb.SignedStats(stats=b"\x0a\xff\xff", signature=b"x", cert_der=s.w.ids[M].cert_der))


@case("invented stats", "own counters naming other districts' agencies as its silent children", "OK",
      "(dropped: WRONG_PARENT)", via=HEARTBEAT)
def _(s):
    """Each row lists its agency's registered children, so a subtree view can name who has not reported:
    M may not make its parent list agencies elsewhere in the tree as silent."""
    w = s.w
    row = spb.AgencyStats(code=M, name=f"agency {M}", as_of_ms=int(time.time() * 1000),
                          children=[C1, D2, "000.00.00.H29"])
    o = report_rows(s, [sign(w.signer(M), row)])
    view = sgrpc.StatsStub(w.api(D).channel).Get(spb.StatsRequest(subtree=True), metadata=w.api(D).metadata,
                                                 timeout=10)
    assert not {C1, D2, "000.00.00.H29"} & set(view.not_reported), view.not_reported
    return o


@case("invented stats", "unsigned counters (the old field)", "OK", "(ignored)", via=HEARTBEAT)
def _(s):
    return report(s, unsigned=[counters(C1, docs_received=10**6), counters("009.23.35.H53", docs_received=10**6)])
