"""`scripts/bench-attacks`: what the stall and amplification attacks of issue 18 cost a victim node; prints JSON.

The hostile world (tests/hostile/world.py: real node processes, insiders with certificates from the
same CA) with the victim D at its default limits. For each attack: the victim's CPU (user + system,
from /proc) and peak resident memory above where it started, per attack call, and the latency of
honest mail during the attack (C1 → D: from just before C1's Send to D's arrival event, stamped
after its commit) against the same without an attack.

  stall_lookups     100 lookups at once (4 askers × 25) for codes below M, which holds every lookup
                    for its whole deadline, as a slow child would
  heartbeat_rows    20 heartbeats at once from M, each with 20,000 signed counter rows
  children_listing  20 listings at once of M's subtree, asked by X (no neighbour); M lists 20,000 records
  batch_marks       20 batches at once from M, each of 1,000 envelopes with 17 self-chained relay marks

Runs on any commit of the project (it sets only keys every version has), so the same file measures
main and a branch.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = "hostile"

from node import envelope  # noqa: E402
from node.harness.waiting import EventWaiter  # noqa: E402
from node.pb import envelope_pb2 as pb  # noqa: E402
from node.pb import exchange_pb2 as xpb  # noqa: E402
from node.pb import registry_pb2 as rpb  # noqa: E402
from node.pb import stats_pb2 as spb  # noqa: E402
from node.stats import sign as sign_stats  # noqa: E402

from . import world as W  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
WIDE = 64 << 20  # the attackers' own message limit: they send and read what the victim allows


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Peak(threading.Thread):
    """The victim's resident memory, sampled until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.start_mb, self.peak_mb = pid, rss_mb(pid), rss_mb(pid)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            self.peak_mb = max(self.peak_mb, rss_mb(self.pid))


def honest(w: W.World, n: int, timeout: float = 120.0) -> list[float]:
    """Latency (ms) of `n` documents C1 → D, one after another."""
    out = []
    with EventWaiter(w.api(W.D), sent=False) as arrivals:
        for i in range(n):
            t0 = time.time()
            mid = w.api(W.C1).send(pb.Document(subject=f"honest {i}"), [W.D]).envelopes[0].message_id
            arrivals.wait(lambda evs: any(e.type == "arrived" and e.message_id == mid for e in evs), timeout=timeout)
            [e] = [e for e in arrivals.events if e.type == "arrived" and e.message_id == mid]
            out.append(max(0.0, e.time_us / 1e6 - t0) * 1000)
    return out


def summary(ms: list[float]) -> dict:
    return {"p50_ms": round(statistics.median(ms), 1), "max_ms": round(max(ms), 1), "samples": len(ms)}


def measure(w: W.World, name: str, calls: list, honest_n: int, baseline: dict) -> dict:
    """Start every attack call at once (each a function returning an outcome name), measure honest mail meanwhile."""
    pid = w.cluster.nodes[W.D].pid
    peak = Peak(pid)
    peak.start()
    cpu0, t0 = cpu_s(pid), time.perf_counter()
    with futures.ThreadPoolExecutor(len(calls)) as pool:
        running = [pool.submit(c) for c in calls]
        during = honest(w, honest_n)
        results = [f.result() for f in running]
    elapsed = time.perf_counter() - t0
    cpu = cpu_s(pid) - cpu0
    peak.done.set()
    peak.join()
    counts: dict[str, int] = {}
    for r in results:
        counts[r] = counts.get(r, 0) + 1
    lat = summary(during)
    return {"attack_calls": len(calls), "outcomes": counts, "seconds": round(elapsed, 1),
            "victim_cpu_s": round(cpu, 2), "victim_cpu_ms_per_call": round(cpu * 1000 / len(calls), 1),
            "victim_peak_rss_mb_over_start": round(peak.peak_mb - peak.start_mb, 1),
            "honest_latency": lat, "honest_p50_vs_baseline": round(lat["p50_ms"] / baseline["p50_ms"], 1)}


def outcome(fn) -> str:
    try:
        fn()
        return "OK"
    except grpc.RpcError as e:
        from node.grpc_errors import reason_of
        return reason_of(e) or e.code().name


# ---- the attacks ---------------------------------------------------------------------------------

RELEASED = threading.Event()  # set after each attack: whatever M still holds ends


def stall_lookups(w: W.World) -> list:
    RELEASED.clear()
    w.fake.on_lookup = lambda request, context: (RELEASED.wait(30), context.abort(grpc.StatusCode.UNAVAILABLE, "slow"))
    askers = (W.X, W.R, W.G, W.M2)
    return [lambda i=i, who=askers[i % 4]: outcome(lambda: w.registry(who).Lookup(
        rpb.LookupRequest(code=f"{100 + i:03d}.23.35.H53"), timeout=60)) for i in range(100)]


def heartbeat_rows(w: W.World) -> list:
    m = w.signer(W.M)
    now = int(time.time() * 1000)
    rows = [sign_stats(m, spb.AgencyStats(code=W.M, name=f"agency {W.M}", as_of_ms=now - i)) for i in range(20_000)]
    request = rpb.HeartbeatRequest(code=W.M, time_ms=now, signed_stats=rows)
    stub = w.registry(W.M)
    return [lambda: outcome(lambda: stub.Heartbeat(request, timeout=120, compression=grpc.Compression.Gzip))
            for _ in range(20)]


def children_listing(w: W.World) -> list:
    entry = rpb.DirectoryEntry(record=w.record(W.G, parent=W.M), reachable=True)
    listing = rpb.ChildrenResponse(entries=[entry] * 20_000)
    w.fake.on_children = lambda request, context: listing
    stub = w.registry(W.X)
    return [lambda: outcome(lambda: stub.Children(rpb.ChildrenRequest(code=W.M), timeout=120)) for _ in range(20)]


def batch_marks(w: W.World) -> list:
    g, m = w.signer(W.G), w.signer(W.M)
    raws = []
    for i in range(1000):
        _, raw = W.seal(g, W.D)
        env = pb.Envelope.FromString(raw)
        for _ in range(17):
            envelope.add_trace(env, m)
        raws.append(env.SerializeToString())
    request = xpb.DeliverBatchRequest(envelopes=raws)
    stub = w.exchange(W.M)

    def batch() -> str:
        try:
            resp = stub.DeliverBatch(request, timeout=120)
        except grpc.RpcError as e:
            from node.grpc_errors import reason_of
            return reason_of(e) or e.code().name
        reasons = {o.rejection.reason or "receipt" for o in resp.outcomes}
        return "per envelope: " + ",".join(sorted(reasons))
    return [batch for _ in range(20)]


ATTACKS = {"stall_lookups": stall_lookups, "heartbeat_rows": heartbeat_rows, "children_listing": children_listing,
           "batch_marks": batch_marks}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/bench-attacks", description=__doc__.split("\n\n")[0])
    ap.add_argument("--honest", type=int, default=5, help="honest documents measured per run (default 5)")
    ap.add_argument("--only", choices=sorted(ATTACKS), action="append", help="run only this attack (repeatable)")
    args = ap.parse_args(argv)
    W.MAX_SIZE = WIDE  # the attackers' channels; the victim keeps its defaults:
    W.NODE_EXTRA = {W.D: {"parents_of": {W.CONFIGURED: W.C1}}}
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-attacks-") as tmp, W.hostile_world(Path(tmp)) as w:
        honest(w, 2)  # warm the route
        base = summary(honest(w, args.honest))
        out["baseline"] = {"honest_latency": base}
        for name in args.only or ATTACKS:
            calls = ATTACKS[name](w)
            out[name] = measure(w, name, calls, args.honest, base)
            RELEASED.set()
            w.fake.reset()
            print(json.dumps({name: out[name]}), file=sys.stderr, flush=True)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
