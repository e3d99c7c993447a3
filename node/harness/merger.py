"""`scripts/merger-run`: Bình Phước merges into Đồng Nai on real node processes, with mail flowing; prints JSON
and a table (docs/restructuring.md, "The merger, run").

The before-tree: the national root VN; Bình Phước (000.00.00.H10) with `--districts` districts of two communes
each; Đồng Nai (000.00.00.H19) with communes directly below it; Tây Ninh (000.00.00.H53) with a district and two
communes. Documents go both ways and across provinces at `--rate` per second, addressed to any agency,
retired ones included. While they flow, every step of docs/restructuring.md is taken with its admin call:

1. each district merges its second commune into its first (the district is their parent);
2. Bình Phước abolishes its districts (`--old DISTRICT --to 000.00.00.H10`);
3. the national root retires Bình Phước into Đồng Nai;
4. re-parenting: mail to and from Bình Phước's codes pauses, what was sent settles, and each surviving commune
   restarts with Đồng Nai as its parent (its code unchanged); the root learns it from Đồng Nai's heartbeat;
   then that mail resumes.

Then traffic goes on ("after"), everything settles, and every inbox and every sender's Track are read: each
document must have arrived exactly once, at the agency addressed or one its successions lead to (at the final
successor when sent after the merger), and its automatic 01 status must be back at its sender. The retired
nodes (merged communes, districts, the province) retire into their successors (Admin.Retire) and must end
with nothing queued or parked; the harness, which made the CA, then revokes their certificates (`lienthong ca
revoke ... --reason cessation_of_operation`, `ca crl`), installs the CRL at the root and reloads it, checks that
it reached every node in service and that the retired nodes' peer calls are refused (CERT_REVOKED), and stops
them (node.harness.revoke_retired).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import yaml

from ..pb import envelope_pb2 as pb
from . import revoke_retired, topology as topo_mod
from .cluster import Cluster
from .waiting import EventWaiter

VN, BP, DN, TN = "VN", "000.00.00.H10", "000.00.00.H19", "000.00.00.H53"
# lookups cached 1 s: a sender follows a succession at once (a document to a retired code sent on a stale record is
# refused RECIPIENT_RETIRED by the issuer and its notice routed by the code rule, through the old tree: a sender
# moved since is not reached that way, docs/restructuring.md "Not built yet")
FAST = {"registry": {"heartbeat": "1s", "stale_after": "5s", "cache_ttl": "1s"},
        "retry": {"first_delay": "100ms", "multiplier": 2.0, "max_delay": "1s"}}
REASON = {"communes": "Nghị quyết sắp xếp đơn vị hành chính cấp xã 2025",
          "districts": "Luật Tổ chức chính quyền địa phương 2025: không tổ chức cấp huyện",
          "province": "Nghị quyết 202/2025/QH15: sáp nhập tỉnh Bình Phước vào tỉnh Đồng Nai"}


def before_tree(districts: int = 3, dn_communes: int = 3) -> dict:
    """The topology document of the before-tree (node.harness.topology)."""
    bp = [{"code": f"000.00.{31 + d}.H10", "name": f"UBND huyện {31 + d} (Bình Phước)",
           "children": [{"code": f"000.0{k}.{31 + d}.H10", "name": f"UBND xã {k} huyện {31 + d}"} for k in (1, 2)]}
          for d in range(districts)]
    dn = [{"code": f"000.00.{21 + k}.H19", "name": f"UBND xã {21 + k} (Đồng Nai)"} for k in range(dn_communes)]
    tn = [{"code": "000.00.35.H53", "name": "UBND thị xã Hòa Thành",
           "children": [{"code": "000.21.35.H53", "name": "UBND xã Trường Hòa"},
                        {"code": "000.22.35.H53", "name": "UBND xã Trường Tây"}]}]
    return {"name": "merger-before", "nodes": [{"code": VN, "name": "Trục liên thông quốc gia", "children": [
        {"code": BP, "name": "UBND tỉnh Bình Phước", "children": bp},
        {"code": DN, "name": "UBND tỉnh Đồng Nai", "children": dn},
        {"code": TN, "name": "UBND tỉnh Tây Ninh", "children": tn}]}]}


class Watch:
    """Every node's Watch stream into one list under one condition, so a wait can span the tree; a node restarted
    gets a new stream (watch(code) again)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster, self.cond = cluster, threading.Condition()
        self.events: list[tuple[str, object]] = []
        self._streams: list = []

    def watch(self, code: str) -> None:
        stream = self.cluster.handle(code).client().watch(inbox=True, sent=True)
        ready = threading.Event()

        def read() -> None:
            try:
                for e in stream:
                    if e.type == "watching":
                        ready.set()
                        continue
                    with self.cond:
                        self.events.append((code, e))
                        self.cond.notify_all()
            except grpc.RpcError:
                pass
            finally:
                ready.set()

        threading.Thread(target=read, daemon=True, name=f"watch-{code}").start()
        if not ready.wait(30):
            raise TimeoutError(f"watch on {code} did not start")
        self._streams.append(stream)

    def wait(self, done, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not done(self.events):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"condition not met in {timeout}s ({len(self.events)} events)")
                self.cond.wait(left)

    def close(self) -> None:
        for s in self._streams:
            s.cancel()


@dataclass
class Sent:
    n: int
    phase: str
    sender: str
    addressed: str
    doc_id: str
    message_ids: set[str]
    t: float                     # monotonic, when posted
    told: bool = False           # the Send answer named a successor


@dataclass
class Run:
    cluster: Cluster
    watch: Watch
    districts: list[str]
    merged: dict[str, str]                          # commune retired -> commune it merged into
    successors: dict[str, str] = field(default_factory=dict)   # every succession issued, old -> new
    sent: list[Sent] = field(default_factory=list)
    paused: set[str] = field(default_factory=set)   # codes no document goes to or from now
    retired: set[str] = field(default_factory=set)  # codes whose nodes send nothing any more
    lock: threading.Lock = field(default_factory=threading.Lock)
    sending: threading.Lock = field(default_factory=threading.Lock)  # one send at a time: a pause waits for it
    phase: str = "before"
    errors: list[str] = field(default_factory=list)

    def final(self, code: str) -> str:
        for _ in range(8):
            if code not in self.successors:
                return code
            code = self.successors[code]
        return code

    def chain(self, code: str) -> list[str]:
        out = [code]
        while out[-1] in self.successors and len(out) < 9:
            out.append(self.successors[out[-1]])
        return out

    def agencies(self) -> list[str]:
        return [c for c in self.cluster.nodes if c != VN]

    def send_one(self, rng: random.Random) -> None:
        with self.sending:
            self._send_one(rng)

    def _send_one(self, rng: random.Random) -> None:
        with self.lock:
            senders = [c for c in self.agencies() if c not in self.retired and c not in self.paused]
            sender = rng.choice(senders)
            choices = [c for c in self.agencies() if c not in self.paused and self.final(c) != self.final(sender)]
            addressed, n, phase = rng.choice(choices), len(self.sent), self.phase
        subject = f"merger-run {n}"
        t = time.monotonic()
        try:
            r = self.cluster.client(sender).send(pb.Document(subject=subject,
                                                             document_id=f"{sender},2025/07/01,{n}/MR"), [addressed])
        except grpc.RpcError as e:
            with self.lock:
                self.errors.append(f"{sender} -> {addressed}: {e.code().name} {e.details()}")
            return
        with self.lock:
            self.sent.append(Sent(n, phase, sender, addressed, r.doc_id, {e.message_id for e in r.envelopes}, t,
                                  any(e.successor_of for e in r.envelopes)))

    def traffic(self, stop: threading.Event, rate: float, seed: int) -> threading.Thread:
        rng = random.Random(seed)

        def loop() -> None:
            while not stop.is_set():
                self.send_one(rng)
                stop.wait(1 / rate)  # pacing the offered load, not waiting for a result

        th = threading.Thread(target=loop, daemon=True, name="traffic")
        th.start()
        return th

    # ---- settling, read from the events ---------------------------------------------------

    def _settled(self, docs: list[Sent]):
        """A predicate on the events: each of `docs` arrived somewhere (any of its message ids, or one its sender
        sent again under a new id) and its 01 status is back at its sender."""
        def done(events) -> bool:
            again: dict[str, str] = {}       # new message id -> first
            arrived, statuses = set(), set()
            for code, e in events:
                if e.type == "readdressed" and e.ref_message_id:
                    again[e.message_id] = e.ref_message_id
                elif e.type == "arrived" and e.kind == pb.DOCUMENT:
                    arrived.add(e.message_id)
                elif e.type == "arrived" and e.kind == pb.STATUS:
                    statuses.add(e.ref_message_id)
            for d in docs:
                ids = d.message_ids | {m for m, first in again.items() if first in d.message_ids}
                if not (ids & arrived and ids & statuses):
                    return False
            return True
        return done

    def settle(self, timeout: float) -> float:
        with self.lock:
            docs = list(self.sent)
        t0 = time.monotonic()
        self.watch.wait(self._settled(docs), timeout)
        return time.monotonic() - t0


def _reparent(cluster: Cluster, code: str, parent: str) -> None:
    """Restart `code` with `parent` as its parent (node.parent and its one peer), as docs/restructuring.md says."""
    n = cluster.nodes[code]
    config = yaml.safe_load(Path(n.config).read_text())
    config["node"]["parent"] = parent
    config["peers"] = [{"code": parent, "address": cluster.nodes[parent].listen}]
    Path(n.config).write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    n.parent = parent
    cluster.restart(code)


def run(directory: Path, districts: int = 3, dn_communes: int = 3, rate: float = 4.0, before: int = 40,
        during_min: int = 40, after: int = 40, seed: int = 1, timeout: float = 600.0) -> dict:
    topo = topo_mod.parse(before_tree(districts, dn_communes))
    cluster = Cluster(directory)
    t_up = time.monotonic()
    cluster.up(topo, extra=FAST, quiet=True)
    started_s = time.monotonic() - t_up
    watch = Watch(cluster)
    dists = [f"000.00.{31 + d}.H10" for d in range(districts)]
    r = Run(cluster, watch, dists, {f"000.02.{31 + d}.H10": f"000.01.{31 + d}.H10" for d in range(districts)})
    result: dict = {"nodes": len(cluster.nodes), "started_s": round(started_s, 1)}
    try:
        for code in cluster.nodes:
            watch.watch(code)
        rng = random.Random(seed)
        for _ in range(before):
            r.send_one(rng)
        stop = threading.Event()
        r.phase = "during"
        th = r.traffic(stop, rate, seed + 1)
        t_merge = time.monotonic()
        for d in dists:  # 1. communes merged, by their district
            old = f"000.02.{d[7:9]}.H10"
            cluster.client(d).admin.issue_succession([old], r.merged[old], 0, REASON["communes"])
            with r.lock:
                r.successors[old] = r.merged[old]
                r.retired.add(old)
        for d in dists:  # 2. districts abolished, by the province
            cluster.client(BP).admin.issue_succession([d], BP, 0, REASON["districts"])
            with r.lock:
                r.successors[d] = BP
                r.retired.add(d)
        cluster.client(VN).admin.issue_succession([BP], DN, 0, REASON["province"])  # 3. the province merged
        with r.lock:
            r.successors[BP] = DN
            r.retired.add(BP)
        issued_s = time.monotonic() - t_merge
        t_pause = time.monotonic()  # 4. re-parenting: Bình Phước's codes paused, what was sent settles
        with r.sending, r.lock:  # after the send under way: it is among those that settle
            r.paused = {c for c in cluster.nodes if c.endswith(".H10")}
        rerouted_s = r.settle(timeout)
        moving = sorted(set(r.merged.values()))
        for code in moving:
            _reparent(cluster, code, DN)  # returns once Đồng Nai lists it as registered
            watch.watch(code)
        with EventWaiter(cluster.client(VN), inbox=False, sent=False, registry=True) as root:
            # Đồng Nai's next heartbeat tells the root (the claim is checked against the root's succession)
            root.wait(lambda evs: sum(e.type == "heartbeat" and e.peer == DN for e in evs) >= 2, timeout)
        with r.lock:
            r.paused = set()
        pause_s = time.monotonic() - t_pause
        while len([s for s in r.sent if s.phase == "during"]) < during_min:
            threading.Event().wait(0.2)  # pacing: the traffic thread adds the documents
        with r.lock:
            r.phase = "after"
        stop.set()
        th.join()
        for _ in range(after):
            r.send_one(rng)
        settle_s = r.settle(timeout)
        result.update(check(r))
        result.update({"successions_issued_s": round(issued_s, 2), "rerouted_all_s": round(rerouted_s, 2),
                       "reparent_pause_s": round(pause_s, 2), "final_settle_s": round(settle_s, 2),
                       "send_errors": r.errors[:10], "send_errors_total": len(r.errors)})
        ended = retired_nodes(cluster, sorted(r.retired), {c: r.final(c) for c in r.retired}, timeout)
        result["retired_nodes"] = ended.pop("nodes")
        result["revocation"] = ended
    finally:
        watch.close()
        cluster.close()
    return result


def check(r: Run) -> dict:
    """Every inbox and every sender's Track, read at the end."""
    arrivals: dict[int, list[str]] = {}
    for code in r.cluster.nodes:
        for e in r.cluster.client(code).inbox_all():
            if e.kind == pb.DOCUMENT and e.subject.startswith("merger-run "):
                arrivals.setdefault(int(e.subject.split()[1]), []).append(code)
    rows = {p: {"documents": 0, "rerouted": 0, "notices": 0, "lost": 0, "duplicated": 0, "wrong_place": 0,
                "statuses_back": 0} for p in ("before", "during", "after")}
    for s in r.sent:
        row = rows[s.phase]
        row["documents"] += 1
        at = arrivals.get(s.n, [])
        if not at:
            row["lost"] += 1
            continue
        if len(at) > 1:
            row["duplicated"] += 1
        place = at[0]
        if place not in r.chain(s.addressed) or (s.phase == "after" and place != r.final(s.addressed)):
            row["wrong_place"] += 1
        track = r.cluster.client(s.sender).track(s.doc_id)
        if place != s.addressed:
            row["rerouted"] += 1
            if s.told or any(t.successor_of == s.addressed and t.recipient == place for t in track.recipients):
                row["notices"] += 1
        if any(t.recipient == place and t.arrived_ms and t.latest_status for t in track.recipients):
            row["statuses_back"] += 1
    total = {k: sum(row[k] for row in rows.values()) for k in rows["before"]}
    return {"phases": rows, "total": total}


def retired_nodes(cluster: Cluster, codes: list[str], successor: dict[str, str], timeout: float = 120.0) -> dict:
    """Each retired node's agency reads its last documents and the node retires into its successor (Admin.Retire,
    `lienthong retire --to`): what it still holds (queued, parked, documents its agency has not fetched), whether
    it is drained and the revoke command the CA's operator runs then. The harness holds the CA: the drained ones are
    revoked, the CRL published at the root and checked (node.harness.revoke_retired); then they are stopped."""
    out = {}
    for code in codes:
        client = cluster.client(code)
        admin = client.admin
        for e in client.inbox_all(only_new=True):  # the agency reads and acknowledges what it still has (kept)
            if e.kind == pb.DOCUMENT:
                client.fetch(e.message_id)
                client.ack(e.message_id)
        try:
            r = admin.retire(successor[code])
        except grpc.RpcError as e:
            out[code] = {"retire": f"{e.code().name}: {e.details()}"[:300], "revoked": False}
            continue
        hops = admin.queues().hops
        out[code] = {"retiring_to": r.successor, "queued": r.queued, "parked": r.parked,
                     "unfetched": r.unfetched, "drained": r.drained, "revoke_command": r.revoke_command,
                     "queues_depth": sum(h.depth for h in hops), "revoked": False}
    drained = [c for c in codes if out[c].get("drained")]
    in_service = [c for c in cluster.nodes if c not in codes]
    revoked = revoke_retired.revoke(cluster, VN, drained, successor, in_service, timeout)
    for code, v in revoked.pop("codes").items():
        out[code].update(v)
    for code in codes:
        out[code]["stopped"] = cluster.stop(code)
    return {"nodes": out, **revoked}


def table(result: dict) -> str:
    cols = ("documents", "rerouted", "notices", "statuses_back", "lost", "duplicated", "wrong_place")
    lines = ["| phase | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, row in [*result["phases"].items(), ("total", result["total"])]:
        lines.append(f"| {name} | " + " | ".join(str(row[c]) for c in cols) + " |")
    lines.append(f"\nsuccessions issued in {result['successions_issued_s']} s; everything sent until then arrived "
                 f"(re-routed included), statuses back, {result['rerouted_all_s']} s later; Bình Phước's mail paused "
                 f"{result['reparent_pause_s']} s for re-parenting; retired nodes: "
                 + ", ".join(f"{c} queued {v.get('queued')} parked {v.get('parked')} drained {v.get('drained')} "
                             f"revoked {v.get('revoked')} (refused by the root: {v.get('refused_by_root')})"
                             for c, v in result["retired_nodes"].items())
                 + f"; CRL {result['revocation'].get('crl_number')} reached "
                   f"{result['revocation'].get('crl_reached')} nodes in service, missing "
                   f"{result['revocation'].get('crl_missing')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/merger-run", description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", help="cluster directory (default: a temporary one)")
    p.add_argument("--districts", type=int, default=3, help="Bình Phước's districts, two communes each (1-9)")
    p.add_argument("--dn-communes", type=int, default=3, help="Đồng Nai's communes (1-9)")
    p.add_argument("--rate", type=float, default=4.0, help="documents per second while the merger is applied")
    p.add_argument("--before", type=int, default=40, help="documents before the merger")
    p.add_argument("--during", type=int, default=40, help="documents at least while it is applied")
    p.add_argument("--after", type=int, default=40, help="documents after it")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    if not (1 <= a.districts <= 9 and 1 <= a.dn_communes <= 9):
        p.error("--districts and --dn-communes: 1 to 9")
    with tempfile.TemporaryDirectory(prefix="merger-run-") as tmp:
        result = run(Path(a.dir or tmp), a.districts, a.dn_communes, a.rate, a.before, a.during, a.after, a.seed)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    print(table(result), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
