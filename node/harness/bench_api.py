"""`scripts/bench-api`: the latency of Send over the HTTP/JSON face against gRPC; prints JSON.

Two node processes A → B; A has the HTTP face on. The same 10 KB document (one attachment)
is sent N times over each face from one client thread each call at a time, the two faces
interleaved (gRPC, HTTP, gRPC, HTTP, ... in one run, with the order flipped every other
round) so both see the same machine, the same database and the same background delivery.
The time is the client's: from the call to its answer (the node commits the envelope with
fsync before answering). Both clients keep their connection open, as an integration would.
Also: the idle resident memory of A (HTTP face on) and B (off).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from google.protobuf import json_format

from ..pb import envelope_pb2 as pb
from ..pb import mailbox_pb2 as mpb
from . import nodes
from .bench import rss_mb
from .http_api import HttpApi

A, B = "000.00.01.H53", "000.00.35.H53"


def _percentiles(samples_ms: list[float]) -> dict:
    q = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return {"n": len(samples_ms), "p50_ms": round(statistics.median(samples_ms), 3), "p90_ms": round(q[89], 3),
            "p99_ms": round(q[98], 3), "mean_ms": round(statistics.fmean(samples_ms), 3),
            "min_ms": round(min(samples_ms), 3)}


def request(i: int, size: int) -> mpb.SendRequest:
    doc = pb.Document(subject=f"Bench API {i}", document_id=f"{A},2026/11/29,{i}/BENCH",
                      attachments=[pb.Attachment(name="a.bin", content_type="application/octet-stream",
                                                 data=bytes(size))])
    return mpb.SendRequest(document=doc, recipients=[B])


def run(a: nodes.NodeHandle, n: int, size: int, warmup: int) -> dict:
    client = a.client()
    api = HttpApi(nodes.runtime_info(a)["http"], a.token)
    times: dict[str, list[float]] = {"grpc": [], "http": []}
    try:
        for i in range(warmup + n):
            for face in (("grpc", "http") if i % 2 == 0 else ("http", "grpc")):
                req = request(2 * i + (face == "http"), size)
                body = json_format.MessageToDict(req)  # the JSON a vendor builds: outside the timing, like req
                t0 = time.perf_counter()
                if face == "grpc":
                    client._call(client.stub.Send, req)
                else:
                    api.mailbox("Send", body)
                if i >= warmup:
                    times[face].append((time.perf_counter() - t0) * 1000)
    finally:
        client.close()
        api.close()
    out = {face: _percentiles(samples) for face, samples in times.items()}
    out["http_over_grpc_p50"] = round(out["http"]["p50_ms"] / out["grpc"]["p50_ms"], 2)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/bench-api", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--documents", type=int, default=500, help="Sends per face")
    p.add_argument("--size", type=int, default=10_000, help="attachment bytes")
    p.add_argument("--warmup", type=int, default=20, help="Sends per face not counted")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lienthong-bench-api-") as tmp:
        a, b = nodes.pair(Path(tmp), nodes.NodeSpec(A, "Sở A", extra={"api": {"http_listen": f"127.0.0.1:{nodes.free_port()}"}}),
                          nodes.NodeSpec(B, "Huyện B"))
        for h in (b, a):
            nodes.start(h)
        try:
            nodes.wait_healthy([a, b])
            idle = {"a_with_http_rss_mb": rss_mb(a.pid), "b_without_http_rss_mb": rss_mb(b.pid)}
            result = {
                "what": "Send latency, client side, one call at a time, gRPC and HTTP/JSON interleaved",
                "document_bytes": args.size,
                "send": run(a, args.documents, args.size, args.warmup),
                "idle_memory": idle,
                "memory_after": {"a_with_http_rss_mb": rss_mb(a.pid), "b_without_http_rss_mb": rss_mb(b.pid)},
            }
        finally:
            for h in (a, b):
                nodes.terminate(h)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
