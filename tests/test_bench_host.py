"""scripts/bench-host's arithmetic and the agencies it starts: every commune of a thousand-agency host can
register with its province (the code rule or the province's parents_of places it there), the goal is
judged at the largest N only when that N reaches the goal's, and bad --agencies are refused naming why."""
from __future__ import annotations

import argparse

import pytest

from node import codes
from node.harness import bench_host, host_bench


def test_every_commune_of_a_thousand_agencies_is_a_child_of_the_province():
    communes = [host_bench.commune(i) for i in range(999)]
    assert len(set(communes)) == 999
    odd = {c: host_bench.PROVINCE for c in communes if not c.startswith("000.")}
    tree = codes.Hierarchy(odd)
    assert all(tree.parent(c) == host_bench.PROVINCE for c in communes)


def run(n: int, rss: float, threads: int, start: float | None) -> dict:
    return {"agencies": n, "host": {"rss_mib": rss, "threads": threads, "start_to_all_registered_s": start}}


def test_the_goal_is_met_only_at_a_thousand_agencies_within_every_bound():
    assert bench_host.goal([run(1, 78, 12, 2), run(1000, 900, 40, 50)])["met"] is True
    assert bench_host.goal([run(100, 190, 21, 20)])["met"] is False  # within bounds, but not 1,000 agencies
    over = bench_host.goal([run(1000, 1100, 40, 50)])
    assert (over["met"], over["rss"], over["threads"], over["start"]) == (False, False, True, True)
    assert bench_host.goal([run(1000, 900, 40, None)])["start"] is False  # not all registered in time


def test_ratios_are_to_the_standalone_pair():
    def pair(docs, p50, p99):
        return {"end_to_end": {"docs_per_s": docs}, "latency": {"to_commit_at_b": {"p50_ms": p50, "p99_ms": p99}}}
    assert bench_host.ratios(pair(150, 10, 40), pair(300, 20, 40)) == {
        "end_to_end_docs_per_s": 0.5, "latency_p50": 0.5, "latency_p99": 1.0}


@pytest.mark.parametrize("text", ["", "0", "1,x", "5001", "-3"])
def test_bad_agency_counts_are_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        bench_host.counts(text)
    assert bench_host.counts("1, 100,1000") == [1, 100, 1000]
