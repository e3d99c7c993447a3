"""`scripts/bench`: A → B over mutual TLS with durable, signed receipts; prints JSON.

exchange: node-to-node throughput. A's queue is filled while B is down; B is started
and the drain is timed from the first to the last signed receipt A holds (deliver,
verify, fsync at B, receipt back, receipt verified, fsync at A). `stages_ms_per_batch`: the mean
time of each stage of a batch over the drain, from each node's `lienthong_batch_stage_seconds`
(docs/metrics.md): at A `out.*` for the documents and `in.*` for their 01s, at B the other way round.
end_to_end: documents of 10 KB posted by several client threads into A's local API
while B is up; timed from the first post to the last receipt (adds the local API).
latency: documents posted at a fixed offered rate; time from the post call to the
arrival event streamed from B's mailbox.
memory: resident set of each node process, idle and after the run.
bare_hop: run first, the floor (node.harness.bare_hop: signed 10 KB envelopes in batches, one
ECDSA verify each, one fsync and one signed receipt per batch); every run's figures are also given
as ratios to it (`over_bare_hop`), so what the node adds is measured in the same sitting.
sealing: all of it twice in one run, a pair with `sealing.mode: off` and a pair with `required`
(every payload sealed for B, so nothing falls back to clear unnoticed), and the ratio sealed/clear
of throughput and latency: the cost of confidentiality. `--sealing on|off` runs one of them.
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
import urllib.request
from pathlib import Path

import grpc
from prometheus_client.parser import text_string_to_metric_families

from ..pb import envelope_pb2 as pb
from . import bare_hop, nodes
from .waiting import EventWaiter

A, B = "000.00.01.H53", "000.00.35.H53"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return -1.0


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def paced(n: int, rate: float):
    """Yield 0..n-1 at `rate` per second: an open-loop offered load that never waits for results."""
    t0 = time.perf_counter()
    for i in range(n):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)  # pacing the offered load, not waiting for a result
        yield i


def document(i: int, size: int) -> pb.Document:
    return pb.Document(subject=f"Bench {i}", document_id=f"{A},2026/11/21,{i}/BENCH",
                       attachments=[pb.Attachment(name="a.bin", content_type="application/octet-stream",
                                                  data=bytes(size))])


def throughput(a, b, n: int, size: int, threads: int) -> dict:
    with EventWaiter(a.client(), inbox=False) as ev:
        cpu0 = (cpu_s(a.pid), cpu_s(b.pid), time.process_time())
        t0 = time.perf_counter()
        _post(a, n, size, threads)
        t_posted = time.perf_counter() - t0
        ev.wait(lambda evs: sum(e.type == "delivered" for e in evs) >= n, timeout=600)
        elapsed = time.perf_counter() - t0
        cpu1 = (cpu_s(a.pid), cpu_s(b.pid), time.process_time())
    cpu = {k: round((y - x) / elapsed, 2) for k, x, y in zip(("node_a", "node_b", "client"), cpu0, cpu1)}
    return {"cpu_cores_busy": cpu, "documents": n, "doc_bytes": size, "client_threads": threads, "seconds": round(elapsed, 3),
            "docs_per_s": round(n / elapsed, 1), "post_docs_per_s": round(n / t_posted, 1)}


def exchange(a, b, n: int, size: int, threads: int) -> dict:
    """Node-to-node only: fill A's queue while B is down, start B, time the drain."""
    nodes.terminate(b)
    _post(a, n, size, threads)
    with EventWaiter(a.client(), inbox=False) as ev:
        nodes.start(b)
        nodes.wait_healthy([b])
        ev.wait(lambda evs: len(evs) >= 1, timeout=60)
        t0, cpu0 = time.perf_counter(), (cpu_s(a.pid), cpu_s(b.pid))
        stages0 = (stage_totals(a), stage_totals(b))
        first = len(ev.events)
        ev.wait(lambda evs: sum(e.type == "delivered" for e in evs) >= n, timeout=600)
        elapsed = time.perf_counter() - t0
        cpu1 = (cpu_s(a.pid), cpu_s(b.pid))
        stages1 = (stage_totals(a), stage_totals(b))
    cpu = {k: round((y - x) / elapsed, 2) for k, x, y in zip(("node_a", "node_b"), cpu0, cpu1)}
    return {"documents": n - first, "doc_bytes": size, "seconds": round(elapsed, 3),
            "docs_per_s": round((n - first) / elapsed, 1), "cpu_cores_busy": cpu,
            # A sends the documents (out) and takes their 01s (in); B the other way round
            "stages_ms_per_batch": {k: stage_means(x, y) for k, x, y in zip(("node_a", "node_b"), stages0, stages1)}}


def stage_totals(handle) -> dict[str, tuple[float, float]]:
    """"direction.stage" -> (sum of seconds, batches) of lienthong_batch_stage_seconds, read from GET /metrics."""
    address = nodes.runtime_info(handle)["metrics"]
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    totals: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in ("lienthong_batch_stage_seconds_sum", "lienthong_batch_stage_seconds_count"):
                slot = totals.setdefault(f"{s.labels['direction']}.{s.labels['stage']}", [0.0, 0.0])
                slot[s.name.endswith("_count")] = s.value
    return {k: (v[0], v[1]) for k, v in totals.items()}


def stage_means(before: dict, after: dict) -> dict[str, float]:
    """Mean milliseconds per batch of each stage between two readings (what the drain alone added)."""
    out = {}
    for key, (total, count) in sorted(after.items()):
        t0, c0 = before.get(key, (0.0, 0.0))
        if count > c0:
            out[key] = round((total - t0) * 1000 / (count - c0), 2)
    return out


def _post(a, n: int, size: int, threads: int) -> list[str]:
    ids: list[str] = []
    lock = threading.Lock()

    def post(k: int):
        c = a.client()
        for i in range(k, n, threads):
            mid = c.send(document(i, size), [B]).envelopes[0].message_id
            with lock:
                ids.append(mid)

    workers = [threading.Thread(target=post, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return ids


def latency(a, b, n: int, size: int, rate: float) -> dict:
    sent_at: dict[str, float] = {}
    arrived_at: dict[str, float] = {}
    committed_at: dict[str, float] = {}
    sent_wall: dict[str, float] = {}
    cond = threading.Condition()
    stream = b.client().watch(inbox=True, sent=False)
    ready = threading.Event()

    def read():
        try:
            _read()
        except grpc.RpcError:  # cancelled below once every arrival is in
            pass

    def _read():
        for e in stream:
            if e.type == "watching":
                ready.set()
            elif e.type == "arrived":
                with cond:
                    arrived_at[e.message_id] = time.perf_counter()
                    committed_at[e.message_id] = e.time_us / 1e6
                    cond.notify_all()

    threading.Thread(target=read, daemon=True).start()
    ready.wait(10)
    c = a.client()
    for i in paced(n, rate):
        start, wall = time.perf_counter(), time.time()
        mid = c.send(document(i, size), [B]).envelopes[0].message_id
        sent_at[mid] = start
        sent_wall[mid] = wall
    with cond:
        cond.wait_for(lambda: len(arrived_at) >= n, timeout=60)
    stream.cancel()
    def summary(values: list[float]) -> dict:
        values = sorted(values)
        q = statistics.quantiles(values, n=100)
        return {"p50_ms": round(q[49], 2), "p90_ms": round(q[89], 2), "p99_ms": round(q[98], 2), "max_ms": round(values[-1], 2)}

    done = [m for m in sent_at if m in arrived_at]
    return {"offered_docs_per_s": rate, "documents": n, "delivered": len(done),
            # post call → committed in B's mailbox (B's commit timestamp, same machine clock)
            "to_commit_at_b": summary([(committed_at[m] - sent_wall[m]) * 1000 for m in done]),
            # post call → the arrival event has streamed back to this client (adds the watch stream)
            "to_event_at_client": summary([(arrived_at[m] - sent_at[m]) * 1000 for m in done])}


def run_pair(root: Path, mode: str, args) -> dict:
    """One pair of nodes with `sealing.mode: mode`, measured in full."""
    # metrics on (loopback, a port of its own): the stages of each batch are read from them
    spec = lambda code, name: nodes.NodeSpec(code, name, extra={  # noqa: E731
        "sealing": {"mode": mode}, "metrics": {"listen": "127.0.0.1:0"}})
    a, b = nodes.pair(root, spec(A, "Sở A"), spec(B, "Huyện B"))
    for h in (a, b):
        nodes.start(h)
    try:
        nodes.wait_healthy([a, b])
        idle = {"a_rss_mb": rss_mb(a.pid), "b_rss_mb": rss_mb(b.pid)}
        return {
            "sealing_mode": mode,
            "idle_memory": idle,
            "latency": latency(a, b, args.latency_documents, args.size, args.rate),
            "end_to_end": throughput(a, b, args.documents, args.size, args.threads),
            "exchange": exchange(a, b, args.exchange_documents, args.size, args.threads),
            "memory_after": {"a_rss_mb": rss_mb(a.pid), "b_rss_mb": rss_mb(b.pid)},
        }
    finally:
        for h in (a, b):
            nodes.terminate(h)


def cost_of_sealing(off: dict, on: dict) -> dict:
    """Sealed over clear, same run: below 1 for throughput, above 1 for latency, means sealing costs."""
    ratio = lambda x, y: round(x / y, 3) if y else None  # noqa: E731
    lat_on, lat_off = on["latency"]["to_commit_at_b"], off["latency"]["to_commit_at_b"]
    return {
        "exchange_docs_per_s": ratio(on["exchange"]["docs_per_s"], off["exchange"]["docs_per_s"]),
        "end_to_end_docs_per_s": ratio(on["end_to_end"]["docs_per_s"], off["end_to_end"]["docs_per_s"]),
        "latency_p50": ratio(lat_on["p50_ms"], lat_off["p50_ms"]),
        "latency_p99": ratio(lat_on["p99_ms"], lat_off["p99_ms"]),
        # CPU per document in the exchange drain: steadier than rates on a machine shared with other work
        "cpu_ms_per_doc": {side: {"off": cpu_ms(off, side), "on": cpu_ms(on, side),
                                  "ratio": ratio(cpu_ms(on, side), cpu_ms(off, side))} for side in ("node_a", "node_b")},
    }


def cpu_ms(run: dict, side: str) -> float:
    x = run["exchange"]
    return round(x["cpu_cores_busy"][side] * 1000 / x["docs_per_s"], 3) if x["docs_per_s"] else 0.0


def over_bare_hop(run: dict, bare: dict) -> dict:
    """A run's throughput as a fraction of the bare hop's (a document and its 01 are two envelopes:
    0.5 is the ceiling for the exchange) and its CPU per document as a multiple of the bare hop's."""
    ratio = lambda x, y: round(x / y, 3) if y else None  # noqa: E731
    return {
        "exchange_docs_per_s": ratio(run["exchange"]["docs_per_s"], bare["docs_per_s"]),
        "end_to_end_docs_per_s": ratio(run["end_to_end"]["docs_per_s"], bare["docs_per_s"]),
        "cpu_ms_per_doc": {side: ratio(cpu_ms(run, side), bare["cpu_ms_per_doc"][side]) for side in ("node_a", "node_b")},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--documents", type=int, default=3000, help="end to end run")
    p.add_argument("--exchange-documents", type=int, default=10_000,
                   help="queued for the exchange run: long enough to measure the steady drain, not B's start")
    p.add_argument("--size", type=int, default=10_000)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--latency-documents", type=int, default=500)
    p.add_argument("--rate", type=float, default=100.0)
    p.add_argument("--sealing", choices=("both", "on", "off"), default="both",
                   help="both (default): a sealed pair and a clear pair in the same run, and their ratio")
    args = p.parse_args(argv)
    modes = {"both": ("off", "required"), "on": ("required",), "off": ("off",)}[args.sealing]
    result: dict = {
        "transport": "grpc mutual TLS, ECDSA P-256",
        "durability": "SQLite WAL synchronous=FULL at both ends; signed receipts verified",
        "sealing": "payloads sealed for B: ECDH P-256 + HKDF-SHA256 + AES-256-GCM (docs/sealing.md)",
    }
    with tempfile.TemporaryDirectory(prefix="lienthong-bench-bare-") as tmp:
        bare = bare_hop.run(Path(tmp), args.exchange_documents, args.size)
    result["bare_hop"] = bare
    runs = {}
    for mode in modes:
        with tempfile.TemporaryDirectory(prefix=f"lienthong-bench-{mode}-") as tmp:
            runs[mode] = run_pair(Path(tmp), mode, args)
        runs[mode]["over_bare_hop"] = over_bare_hop(runs[mode], bare)
    if "off" in runs:
        result["sealing_off"] = runs["off"]
    if "required" in runs:
        result["sealing_on"] = runs["required"]
    if len(runs) == 2:
        result["sealed_over_clear"] = cost_of_sealing(runs["off"], runs["required"])
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
