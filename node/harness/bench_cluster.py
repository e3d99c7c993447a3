"""`scripts/bench-cluster`: relayed exchange through a tree of real node processes; prints JSON.

small (15 nodes): commune → commune across provinces (7 nodes on the route, 6 hops) and
across districts of one province (5 nodes, 4 hops).
  throughput: documents of --size bytes posted by --threads client threads into the
    sender's local API, one Send call each (throughput) or --per-call documents per
    SendBatch call (throughput_send_batch); timed from the first post to the last arrival event streamed from
    the recipient's mailbox (end to end, every relay verifying, storing with fsync and
    receipting). `first_hop_s` is when the sender held receipts for all of them (its
    "delivered" only means its first hop took custody); `statuses_back_s`, when every
    automatic 01 status had come back to it. Each run (latency too) waits for those, so
    the next one starts on a quiet tree. `cpu_ms_per_doc`: CPU time of each node on the
    route (sender, relays, recipient) per document, its 01 on the way back included.
  latency: documents posted at --rate per second; from the wall-clock time just before
    the post call to the recipient's arrival event time (`Event.time_us`, stamped after
    its commit; same machine clock).
  per_hop: where the milliseconds of those documents went, hop by hop (p50 and p90 over
    them), read afterwards from each mailbox on the route (node.store.passage) and the
    relay marks (same machine clock; whole milliseconds):
      custody_to_sent_ms      from this node taking custody (the sender: making the envelope)
                              to the attempt that sent it (its outbox `delivered_ms`): this
                              node's lock wait, commit and fsync, the wake, the wait in its
                              queue, the claim;
      sent_to_verified_ms     from then to the next hop's relay mark, signed once the envelope
                              verified there: the wire, parsing and every signature checked;
      verified_to_custody_ms  the next hop from that mark to taking custody: routing, its
                              receipts (and at the recipient, the 01) signed, before its lock;
    and at_recipient_commit_ms: the recipient from taking custody to its arrival event (its
    lock wait, commit and fsync). The parts add up to the whole passage, with nothing counted
    twice. The recipient signs no relay mark: its hop's "verified" is its custody time, so that
    hop's sent_to_verified_ms also holds its routing and its automatic 01 made (signed, sealed).
dong-nai (109 nodes, --topology dong-nai: the province since 2025, its 13 departments and
  95 communes directly below it, 16 of them with identifiers): time to start every node and
  have every parent list all its children as registered, the total resident memory (VmRSS),
  and one document from the first leaf to the last. Any topology without small's pairs runs
  this way (binh-phuoc: the province before it merged into Đồng Nai, 123 nodes in three tiers).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from typing import Callable

from pathlib import Path

from .. import codes
from ..pb import envelope_pb2 as pb
from ..store import passage
from .bench import cpu_s, paced
from . import nodes, topology
from .cluster import Cluster, rss_kb
from .waiting import EventWaiter

CROSS_PROVINCE = ("000.23.38.H53", "000.21.31.H29")
CROSS_DISTRICT = ("000.23.38.H53", "000.21.35.H53")


def document(sender: str, i: int, size: int) -> pb.Document:
    return pb.Document(subject=f"Bench {i}", document_id=f"{sender},2026/11/21,{i}/BENCH",
                       attachments=[pb.Attachment(name="a.bin", content_type="application/octet-stream",
                                                  data=bytes(size))])


def summary(values: list[float]) -> dict:
    values = sorted(values)
    q = statistics.quantiles(values, n=100)
    return {"p50_ms": round(q[49], 1), "p90_ms": round(q[89], 1), "p99_ms": round(q[98], 1),
            "max_ms": round(values[-1], 1)}


def throughput(cluster: Cluster, sender: str, recipient: str, n: int, size: int, threads: int,
               per_call: int = 1) -> dict:
    """`per_call` 1: one Send per document; more: SendBatch calls of that many documents."""
    ids: list[str] = []
    lock = threading.Lock()

    def post(k: int) -> None:
        c = cluster.client(sender)
        mine = list(range(k, n, threads))
        for start in range(0, len(mine), per_call):
            chunk = mine[start:start + per_call]
            if per_call == 1:
                got = [c.send(document(sender, chunk[0], size), [recipient]).envelopes[0].message_id]
            else:
                got = [r.envelopes[0].message_id
                       for r in c.send_batch([(document(sender, i, size), [recipient]) for i in chunk])]
            with lock:
                ids.extend(got)

    route = codes.DEFAULT.route(sender, recipient)
    with EventWaiter(cluster.client(recipient), sent=False) as arrivals, \
            EventWaiter(cluster.client(sender)) as receipts:
        cpu0 = {c: cpu_s(cluster.nodes[c].pid) for c in route}
        t0 = time.perf_counter()
        workers = [threading.Thread(target=post, args=(k,)) for k in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        posted = time.perf_counter() - t0
        receipts.wait(lambda evs: sum(e.type == "delivered" for e in evs) >= n, timeout=900)
        first_hop = time.perf_counter() - t0
        arrivals.wait(lambda evs: sum(e.type == "arrived" for e in evs) >= n, timeout=900)
        elapsed = time.perf_counter() - t0
        receipts.wait(lambda evs: statuses_back(evs) >= n, timeout=900)  # the next run starts on a quiet tree
        back = time.perf_counter() - t0
        cpu1 = {c: cpu_s(cluster.nodes[c].pid) for c in route}
        got = {e.message_id for e in arrivals.events if e.type == "arrived"}
    assert got == set(ids), "arrivals differ from what was sent"
    return {"documents": n, "doc_bytes": size, "client_threads": threads, "documents_per_call": per_call,
            "seconds": round(elapsed, 2),
            "docs_per_s": round(n / elapsed, 1), "mb_per_s": round(n * size / elapsed / 1e6, 2),
            "posted_s": round(posted, 2), "first_hop_s": round(first_hop, 2), "statuses_back_s": round(back, 2),
            # each node on the route, sender first: CPU per document, its 01 on the way back included
            "cpu_ms_per_doc": {c: round((cpu1[c] - cpu0[c]) * 1000 / n, 3) for c in route}}


def statuses_back(events) -> int:
    """Automatic 01 statuses that reached the sender (the return traffic of the documents)."""
    return sum(e.type == "arrived" and e.kind == pb.STATUS for e in events)


def latency(cluster: Cluster, sender: str, recipient: str, n: int, size: int, rate: float) -> dict:
    posted_us: dict[str, float] = {}
    c = cluster.client(sender)
    with EventWaiter(cluster.client(recipient), sent=False) as arrivals, \
            EventWaiter(cluster.client(sender), sent=False) as back:
        for i in paced(n, rate):
            wall_us = time.time() * 1e6
            posted_us[c.send(document(sender, i, size), [recipient]).envelopes[0].message_id] = wall_us
        evs = arrivals.wait(lambda evs: sum(e.type == "arrived" for e in evs) >= n, timeout=300)
        back.wait(lambda evs: statuses_back(evs) >= n, timeout=300)
    arrived_us = {e.message_id: e.time_us for e in evs if e.type == "arrived"}
    return {"offered_docs_per_s": rate, "documents": n, "doc_bytes": size,
            "post_to_arrival": summary([(arrived_us[m] - t) / 1000 for m, t in posted_us.items()]),
            "per_hop": per_hop(cluster, codes.DEFAULT.route(sender, recipient),
                               {m: arrived_us[m] for m in posted_us})}


def per_hop(cluster: Cluster, route: list[str], arrived_us: dict[str, float]) -> dict:
    """Each hop's share of the documents' time (see the module docstring), from the mailboxes on `route`."""
    ids = list(arrived_us)
    seen = {code: passage.read(nodes.mailbox_path(Path(cluster.nodes[code].dir)), ids) for code in route}
    hops = len(route) - 1
    parts = [{"custody_to_sent_ms": [], "sent_to_verified_ms": [], "verified_to_custody_ms": []} for _ in range(hops)]
    at_recipient: list[float] = []
    for m in ids:
        kept = seen[route[-1]][m].envelope
        marks = [pb.TraceBody.FromString(t.body).time_ms for t in pb.Envelope.FromString(kept).trace] if kept else []
        custody = [seen[route[0]][m].created_ms] + [_custody_ms(seen[c][m].custody_receipt) for c in route[1:]]
        sent = [seen[c][m].delivered_ms for c in route[:-1]]  # stamped with the time of the attempt that sent it
        if len(marks) != hops - 1 or None in custody or None in sent:
            continue  # not every node on the route holds it as expected: left out rather than guessed
        verified = marks + [custody[-1]]  # the recipient signs no relay mark: its checks end at its custody time
        for i in range(hops):
            parts[i]["custody_to_sent_ms"].append(sent[i] - custody[i])
            parts[i]["sent_to_verified_ms"].append(verified[i] - sent[i])
            parts[i]["verified_to_custody_ms"].append(custody[i + 1] - verified[i])
        at_recipient.append(arrived_us[m] / 1000 - custody[-1])
    return {"documents": len(at_recipient),
            "hops": [{"from": route[i], "to": route[i + 1], **{k: _p50_p90(v) for k, v in parts[i].items()}}
                     for i in range(hops)],
            "at_recipient_commit_ms": _p50_p90(at_recipient)}


def _custody_ms(receipt: bytes | None) -> int | None:
    return pb.ReceiptBody.FromString(pb.Receipt.FromString(receipt).body).received_ms if receipt else None


def _p50_p90(values: list[float]) -> dict:
    if len(values) < 2:
        return {"p50": values[0] if values else None, "p90": values[0] if values else None}
    q = statistics.quantiles(sorted(values), n=10)
    return {"p50": round(statistics.median(values), 1), "p90": round(q[8], 1)}


def path_report(sender: str, recipient: str, hierarchy: codes.Hierarchy = codes.DEFAULT) -> dict:
    """The route by the tree; `hierarchy` places codes a topology gives an explicit parent (dong-nai's identifiers)."""
    route = hierarchy.route(sender, recipient)
    return {"from": sender, "to": recipient, "route": route, "hops": len(route) - 1}


def on_a_fresh_cluster(topo, measure: Callable[[Cluster, float], dict], **up) -> dict:
    """Start `topo` in a scratch directory, measure it (given the start-up seconds), stop it."""
    with tempfile.TemporaryDirectory(prefix="lienthong-bench-cluster-") as tmp:
        cluster = Cluster(tmp)
        try:
            t0 = time.perf_counter()
            cluster.up(topo, **up)
            result = measure(cluster, time.perf_counter() - t0)
        finally:
            statuses = cluster.close()
    result["stopped"] = sorted({str(s) for s in statuses.values()})
    return result


def bench_small(args) -> dict:
    topo = topology.load(args.topology)

    def measure(cluster: Cluster, started: float) -> dict:
        rss = cluster.rss_mb()
        result: dict = {"topology": topo.name, "nodes": len(topo), "start_and_register_s": round(started, 2),
                        "idle_rss_mb_total": round(sum(rss.values()), 1),
                        "transport": "grpc mutual TLS between every pair of hops, ECDSA P-256",
                        "durability": "every hop: verify, SQLite WAL synchronous=FULL, signed receipt"}
        for label, (s, r) in (("across_provinces", CROSS_PROVINCE), ("across_districts", CROSS_DISTRICT)):
            result[label] = {
                **path_report(s, r),
                "latency": latency(cluster, s, r, args.latency_documents, args.size, args.rate),
                "throughput": throughput(cluster, s, r, args.documents, args.size, args.threads),
                "throughput_send_batch": throughput(cluster, s, r, args.documents, args.size, args.threads,
                                                    per_call=args.per_call),
            }
        result["rss_mb_total_after"] = round(sum(cluster.rss_mb().values()), 1)
        return result

    return on_a_fresh_cluster(topo, measure, quiet=True)


def bench_startup(args) -> dict:
    topo = topology.load(args.topology)

    def measure(cluster: Cluster, started: float) -> dict:
        rss_kb_total = sum(rss_kb(n.pid) for n in cluster.nodes.values())
        leaves = topo.leaves()
        a, b = leaves[0], leaves[-1]
        with EventWaiter(cluster.client(b), sent=False) as arrivals:
            t1 = time.time() * 1e6
            mid = cluster.client(a).send(document(a, 0, args.size), [b]).envelopes[0].message_id
            [ev] = [e for e in arrivals.wait(lambda evs: any(e.message_id == mid for e in evs), 60)
                    if e.message_id == mid]
        return {"topology": topo.name, "nodes": len(topo), "parallel_starts": args.parallel or "default",
                "start_and_register_s": round(started, 2),
                "rss_mb_total": round(rss_kb_total / 1024, 1),
                "rss_mb_per_node": round(rss_kb_total / 1024 / len(topo), 1),
                "one_document": {**path_report(a, b, topo.hierarchy()), "post_to_arrival_ms": round((ev.time_us - t1) / 1000, 1)}}

    return on_a_fresh_cluster(topo, measure, parallel=args.parallel, quiet=not args.verbose)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/bench-cluster", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--topology", default="small", help="small (relayed exchange) or dong-nai (start-up and memory; any other topology too)")
    p.add_argument("--documents", type=int, default=1000, help="documents per throughput run")
    p.add_argument("--size", type=int, default=10_000, help="attachment bytes per document")
    p.add_argument("--threads", type=int, default=8, help="client threads posting")
    p.add_argument("--per-call", type=int, default=25, help="documents per SendBatch call (second throughput run)")
    p.add_argument("--latency-documents", type=int, default=500)
    p.add_argument("--rate", type=float, default=50.0, help="offered documents per second for latency")
    p.add_argument("--parallel", type=int, default=None, help="dong-nai: node processes starting at once")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    topo = topology.load(args.topology)
    has_pairs = all(c in topo for pair in (CROSS_PROVINCE, CROSS_DISTRICT) for c in pair)
    result = bench_small(args) if has_pairs else bench_startup(args)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
