"""`scripts/bench-host`: what a host costs per agency, and what hosting does to exchange; prints JSON.

footprint: for each N of `--agencies` (e.g. 1,100,1000), one host process serving a province and
N-1 idle communes, all registered (node/harness/host_bench.py measures it; `registered` says how many
had registered when it was measured, if not all within --start-timeout): RSS, threads, open
descriptors, start time, idle CPU, per host and per agency, and whether the issue-19 goal (1,000
idle agencies in <= 1 GiB, <= 100 threads, started in <= 60 s) is met at the N measured.
exchange: in the same run, A -> B end to end (documents posted into A's local API until every one
has its signed receipt) and latency (post -> committed in B's mailbox, at a fixed offered rate) for
three placements: today's standalone pair (two node processes), two co-hosted agencies (one host,
no socket between them) and two hosts of one agency each; each as a ratio to the standalone pair
(throughput: above 1 is faster; latency: below 1 is faster). Measured, never asserted.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from . import bench, host_bench, hosts, nodes
from .bench import A, B
from .nodes import NodeSpec

GOAL = {"agencies": 1000, "rss_mib": 1024, "threads": 100, "start_s": 60}


def footprint(n: int, timeout: float, idle_window: float = host_bench.IDLE_WINDOW_S) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"lienthong-bench-host-{n}-") as d:
        m = host_bench.measure(Path(d), n, timeout=timeout, idle_window=idle_window)
    per_agency = {"rss_mib": m["rss_mib_per_agency"], "fds": round(m["fds"] / n, 2),
                  "threads": round(m["threads"] / n, 3),
                  "idle_cpu_percent": round(m["idle_cpu_percent"] / n, 4)}
    host = {k: m[k] for k in ("rss_mib", "threads", "fds", "idle_cpu_percent", "start_to_healthy_s",
                              "start_to_all_registered_s", "start_cpu_s", "registered")}
    return {"agencies": n, "host": host, "per_agency": per_agency, "prepare_s": m["prepare_s"],
            "idle_window_s": idle_window}


def goal(runs: list[dict]) -> dict:
    """The goal judged at the largest N measured; `met` only if that N is at least the goal's."""
    if not runs:
        return {"goal": GOAL, "met": None}
    top = max(runs, key=lambda r: r["agencies"])
    h = top["host"]
    checks = {"rss": h["rss_mib"] <= GOAL["rss_mib"], "threads": h["threads"] <= GOAL["threads"],
              "start": h["start_to_all_registered_s"] is not None and h["start_to_all_registered_s"] <= GOAL["start_s"]}
    return {"goal": GOAL, "at_agencies": top["agencies"], **checks,
            "met": top["agencies"] >= GOAL["agencies"] and all(checks.values())}


def _spec(code: str, name: str, other: str) -> NodeSpec:
    # both at the top of this two-agency test tree: neither registers anywhere, each knows the other
    return NodeSpec(code, name, peers={other: other}, extra={"node": {"root": True}, "sealing": {"mode": "off"}})


def _measure(a, b, args) -> dict:
    return {"latency": bench.latency(a, b, args.latency_documents, args.size, args.rate),
            "end_to_end": bench.throughput(a, b, args.documents, args.size, args.threads)}


def standalone_pair(root: Path, args) -> dict:
    a, b = nodes.pair(root, _spec(A, "Sở A", B), _spec(B, "Huyện B", A))
    for h in (a, b):
        nodes.start(h)
    try:
        nodes.wait_healthy([a, b])
        return _measure(a, b, args)
    finally:
        for h in (a, b):
            nodes.terminate(h)


def co_hosted(root: Path, args) -> dict:
    ca = nodes.make_ca(root)
    listen = f"127.0.0.1:{nodes.free_port()}"
    h = hosts.prepare_host(root, ca, "host", [_spec(A, "Sở A", B), _spec(B, "Huyện B", A)],
                           {A: listen, B: listen}, listen=listen)
    hosts.start(h)
    a, b = h.agencies[A], h.agencies[B]
    try:
        nodes.wait_healthy([a, b])
        return _measure(a, b, args)
    finally:
        nodes.terminate(a)


def two_hosts(root: Path, args) -> dict:
    ca = nodes.make_ca(root)
    addresses = {A: f"127.0.0.1:{nodes.free_port()}", B: f"127.0.0.1:{nodes.free_port()}"}
    ha = hosts.prepare_host(root, ca, "host-a", [_spec(A, "Sở A", B)], addresses, listen=addresses[A])
    hb = hosts.prepare_host(root, ca, "host-b", [_spec(B, "Huyện B", A)], addresses, listen=addresses[B])
    for h in (ha, hb):
        hosts.start(h)
    a, b = ha.agencies[A], hb.agencies[B]
    try:
        nodes.wait_healthy([a, b])
        return _measure(a, b, args)
    finally:
        for h in (a, b):
            nodes.terminate(h)


def ratios(run: dict, base: dict) -> dict:
    r = lambda x, y: round(x / y, 3) if y else None  # noqa: E731
    lat, lat0 = run["latency"]["to_commit_at_b"], base["latency"]["to_commit_at_b"]
    return {"end_to_end_docs_per_s": r(run["end_to_end"]["docs_per_s"], base["end_to_end"]["docs_per_s"]),
            "latency_p50": r(lat["p50_ms"], lat0["p50_ms"]), "latency_p99": r(lat["p99_ms"], lat0["p99_ms"])}


def exchange(args) -> dict:
    runs = {}
    for name, run in (("standalone_pair", standalone_pair), ("co_hosted", co_hosted), ("two_hosts", two_hosts)):
        with tempfile.TemporaryDirectory(prefix=f"lienthong-bench-host-{name}-") as d:
            runs[name] = run(Path(d), args)
    runs["over_standalone_pair"] = {k: ratios(runs[k], runs["standalone_pair"]) for k in ("co_hosted", "two_hosts")}
    return runs


def counts(text: str) -> list[int]:
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
    if not out or any(n < 1 or n > 5000 for n in out):
        raise argparse.ArgumentTypeError("each number of agencies must be 1..5000 (a host's limit)")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/bench-host", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agencies", type=counts, default=[1, 100, 1000],
                   help="comma-separated numbers of idle agencies, one host each (default 1,100,1000)")
    p.add_argument("--documents", type=int, default=1000, help="end-to-end run of each placement")
    p.add_argument("--size", type=int, default=10_000)
    p.add_argument("--threads", type=int, default=4, help="sending threads; on a host of several agencies one agency's calls hold at most half its API workers (8; AGENCY_BUSY past it), and the bench's Watch holds one")
    p.add_argument("--latency-documents", type=int, default=300)
    p.add_argument("--rate", type=float, default=50.0)
    p.add_argument("--start-timeout", type=float, default=300.0,
                   help="seconds for every agency of a host to register; past it the host is measured all the same, "
                        "`registered` saying how many had")
    p.add_argument("--idle-window", type=float, default=host_bench.IDLE_WINDOW_S,
                   help="seconds over which idle CPU is counted once every agency registered (default 10; "
                        "longer is steadier: heartbeats come every registry.heartbeat)")
    p.add_argument("--no-exchange", action="store_true", help="the footprint only")
    args = p.parse_args(argv)
    runs = []
    for n in args.agencies:
        runs.append(footprint(n, args.start_timeout, args.idle_window))
        print(json.dumps({"progress": runs[-1]}), file=sys.stderr, flush=True)
    result: dict = {"footprint": runs, "goal": goal(runs)}
    if not args.no_exchange:
        result["exchange"] = exchange(args)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
