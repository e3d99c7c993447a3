"""What one agency costs inside a shared process: N agencies on one `LocalNetwork`, measured.

`scripts/bench-footprint --agencies 10 100 300` runs each N in a fresh child process (so one
run's memory does not count in the next) and prints one JSON object: per N, the process's RSS,
threads (Python's and the OS's), open descriptors, the time to build and start each agency,
and the CPU it burns idle over `--idle` seconds; each also divided by N.

The tree is a province (`000.00.00.H19`) and N-1 communes under it with Decision 20/2020
identifier codes (`H19.26001`, ...: QCVN 102 has room for 99 level-2 units only), each with
the province as its explicit parent, as docs/topologies.md codes communes past the 79th. The
province is started first; the communes register with it in process (no peer port), then
heartbeat at the default interval, which is the idle load measured.

Phases, so the cost of what a Host will share is told apart from what stays per agency:

- `built`: every `Node` constructed (keys, trust store, CRL, mailbox opened and migrated, the
  exchange, directory and health objects) but not started: what stays per agency;
- `started`: `start()` called too, which today adds each node's own local-API gRPC server (a
  port and API_WORKERS threads at most) and its own APScheduler (a timing thread and a pool):
  the part the Host takes over.

`--trace` runs tracemalloc over the `built` phase and reports its top allocation sites
(divided by N); it slows start-up and adds its own memory, so it is a separate run.
Key material is made once per directory (`--dir`, reused) and never counted.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import yaml

from ..identity import certs, revocation

PROVINCE = "000.00.00.H19"
FIRST_COMMUNE = 26001  # identifiers H19.26001, H19.26002, ... (illustrative NSO-style numbers)


def codes(n: int) -> list[str]:
    """The province, then n-1 communes under it."""
    return [PROVINCE] + [f"H19.{FIRST_COMMUNE + i}" for i in range(n - 1)]


def address(i: int) -> str:
    """Where the i-th agency is found on the LocalNetwork: nothing is bound, so the name only has to be unique."""
    return f"agency-{i}.inproc:1"


def prepare(root: Path, n: int, tag: str, crl_serials: int = 0) -> list[Path]:
    """Keys, certificates and a node.yaml per agency in root/<code>/ (keys kept if already there); `tag` names
    this run's mailboxes (data-<tag>/), so each run starts from fresh ones. `crl_serials`: every agency
    loads a CRL (tls.crl) revoking that many serials, as the national CA's would."""
    ca = root / "ca"
    if not (ca / "ca.pem").exists():
        certs.init_ca(ca)
    crl = _crl(root, ca, crl_serials) if crl_serials else None
    all_codes = codes(n)
    configs = []
    for i, code in enumerate(all_codes):
        d = root / code
        if not (d / "keys" / "node.pem").exists():
            certs.init_node(d / "keys", code, f"agency {code}", ca)
        config: dict = {
            "node": {"code": code, "name": f"agency {code}", "data_dir": f"data-{tag}"},
            "listen": address(i),
            "tls": {"key": "keys/node.key", "cert": "keys/node.pem", "trust_anchors": ["keys/ca.pem"],
                    **({"crl": str(crl)} if crl else {})},
            "api": {"listen": "127.0.0.1:0", "token": secrets.token_urlsafe(32)},
            "log_level": "WARNING",
        }
        if i == 0:
            config["node"]["root"] = True
            config["parents_of"] = {c: PROVINCE for c in all_codes[1:]}  # odd codes the province lets register
        else:
            config["node"]["parent"] = PROVINCE
            config["peers"] = [{"code": PROVINCE, "address": address(0)}]
        (d / f"node-{tag}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        configs.append(d / f"node-{tag}.yaml")
    return configs


def _crl(root: Path, ca: Path, serials: int) -> Path:
    """A CRL of the test CA revoking `serials` made-up serials (none of our agencies'), made once per count."""
    path = root / f"crl-{serials}.pem"
    if not path.exists():
        when = "2026-01-01T00:00:00+00:00"
        state = {"number": 0, "revoked": {format((1 << 100) + i, "x"): {"time": when, "reason": "superseded",
                                                                         "subject": "CN=gone"}
                                          for i in range(serials)}}
        (ca / revocation.LIST_FILE).write_text(json.dumps(state))
        path.write_bytes(revocation.make_crl(ca, days=365).read_bytes())
    return path


# ---- what the process holds ---------------------------------------------------------------

def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def snapshot() -> dict:
    return {"rss_mb": round(rss_bytes() / 2**20, 1), "threads": threading.active_count(),
            "os_threads": os_threads(), "fds": open_fds()}


def _per(before: dict, after: dict, n: int) -> dict:
    return {"mb": round((after["rss_mb"] - before["rss_mb"]) / n, 3),
            "os_threads": round((after["os_threads"] - before["os_threads"]) / n, 2),
            "fds": round((after["fds"] - before["fds"]) / n, 2)}


def idle_cpu(seconds: float) -> dict:
    """CPU used by the whole process while nothing is asked of it (heartbeats, sweeps, health checks)."""
    c0, t0 = cpu_seconds(), time.monotonic()
    threading.Event().wait(seconds)  # the measurement window itself, not waiting for something
    used, wall = cpu_seconds() - c0, time.monotonic() - t0
    return {"seconds": round(wall, 1), "cpu_s": round(used, 3), "percent_of_one_core": round(100 * used / wall, 2)}


def _top(snap: tracemalloc.Snapshot, base: tracemalloc.Snapshot, n: int, limit: int = 25) -> list[dict]:
    stats = snap.compare_to(base, "lineno")
    return [{"site": f"{s.traceback[0].filename.split('site-packages/')[-1].split('/work/')[-1]}:{s.traceback[0].lineno}",
             "kb_per_agency": round(s.size_diff / n / 1024, 2), "blocks_per_agency": round(s.count_diff / n, 1)}
            for s in stats[:limit] if s.size_diff > 0]


def measure(root: Path, n: int, idle_s: float, trace: bool, start_servers: bool = True, crl_serials: int = 0,
            report=None) -> dict:
    """Build, then start, n agencies in this process; the figures of each phase. `report`: called with them
    before the agencies are stopped (stopping a thousand, each with its last checkpoint, takes long under
    load; a benchmark child reports and exits)."""
    from ..config import load_config
    from ..runtime import Node
    from ..transport.in_process import LocalNetwork

    logging.getLogger().setLevel(logging.WARNING)
    configs = prepare(root, n, f"{n}-{os.getpid()}", crl_serials)
    settings = [load_config(c) for c in configs]
    import gc
    gc.collect()
    base = snapshot()
    if trace:
        tracemalloc.start(1)
        t_base = tracemalloc.take_snapshot()
    network = LocalNetwork()
    nodes = []
    t0 = time.monotonic()
    try:
        for s in settings:
            nodes.append(Node(s, network=network))
        built_s = time.monotonic() - t0
        gc.collect()
        built = snapshot()
        result: dict = {"agencies": n, "crl_serials": crl_serials, "baseline": base,
                        "built": {**built, "per_agency": _per(base, built, n), "ms_per_agency": round(1000 * built_s / n, 2)}}
        if trace:
            result["built"]["tracemalloc_top"] = _top(tracemalloc.take_snapshot(), t_base, n)
            tracemalloc.stop()
        if not start_servers:
            if report is not None:
                report(result)
            return result
        jobs = _JobCosts(nodes)  # before start(): the scheduler is handed the wrapped jobs
        registered = _registrations(nodes[0], set(s.node.code for s in settings[1:]))
        t1 = time.monotonic()
        for node in nodes:
            node.start()
        start_s = time.monotonic() - t1
        all_in = registered.wait(max(60.0, n * 0.2))
        up_s = time.monotonic() - t1
        gc.collect()
        started = snapshot()
        result["started"] = {**started, "per_agency": _per(base, started, n),
                             "start_ms_per_agency": round(1000 * start_s / n, 2),
                             "build_and_start_ms_per_agency": round(1000 * (built_s + start_s) / n, 2),
                             "all_registered": all_in, "registered_after_s": round(up_s, 2),
                             "servers_and_schedulers": _per(built, started, n)}
        if idle_s > 0:
            jobs.reset()
            result["idle"] = idle_cpu(idle_s)
            result["idle"]["jobs"] = jobs.report(n, result["idle"]["seconds"])
            result["idle"]["percent_per_agency"] = round(result["idle"]["percent_of_one_core"] / n, 4)
            result["after_idle"] = snapshot()
        if report is not None:
            report(result)
        return result
    finally:
        for node in reversed(nodes):
            if node.api_server is not None or node.local_peer is not None:
                node.stop(grace=0.5)
            else:
                node.db.close()
                node.data_dir.release()


class _JobCosts:
    """The CPU each periodic job of an agency takes (thread CPU time, summed over all agencies), apart from
    the scheduler's and the servers' own threads: what stays per agency whichever scheduler runs them.
    The jobs are the Node's attributes its start() schedules; one a later Node lacks is left out. In process a
    call to the parent runs the parent's servicer in the caller's thread: a heartbeat's cost has both sides."""

    JOBS = ("_sweep", "_probe_backing_off", "_keepalive")

    def __init__(self, nodes: list) -> None:
        self.cpu: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()
        for node in nodes:
            for name in self.JOBS:
                if hasattr(node, name):
                    setattr(node, name, self._timed(name, getattr(node, name)))
            if hasattr(node, "health"):
                node.health.check = self._timed("health", node.health.check)
            if hasattr(node, "checkpointer"):
                node.checkpointer.tick = self._timed("checkpoint", node.checkpointer.tick)

    def _timed(self, name: str, job):
        def timed(*args, **kwargs):
            t0 = time.thread_time()
            try:
                return job(*args, **kwargs)
            finally:
                with self._lock:
                    self.cpu[name] = self.cpu.get(name, 0.0) + time.thread_time() - t0
                    self.calls[name] = self.calls.get(name, 0) + 1
        return timed

    def reset(self) -> None:
        with self._lock:
            self.cpu.clear()
            self.calls.clear()

    def report(self, n: int, seconds: float) -> dict:
        """Per job: calls, ms per call, and its share of one core per agency (% of one core / n)."""
        with self._lock:
            return {name.lstrip("_"): {"calls": self.calls[name],
                                       "ms_per_call": round(1000 * self.cpu[name] / self.calls[name], 3),
                                       "percent_per_agency": round(100 * self.cpu[name] / seconds / n, 5)}
                    for name in sorted(self.cpu)}


def _registrations(province, expected: set[str]) -> threading.Event:
    """An event set once the province has heard every commune register (its event bus, subscribed now)."""
    from ..events import REGISTERED
    done = threading.Event()
    if not expected:
        done.set()
        return done
    sub = province.bus.subscribe({REGISTERED})
    seen: set[str] = set()

    def follow() -> None:
        while not done.is_set():
            ev = sub.get(timeout=1.0)
            if ev is not None:
                seen.add(ev.peer)
                if seen >= expected:
                    done.set()
        sub.close()
    threading.Thread(target=follow, name="footprint-registrations", daemon=True).start()
    return done


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench-footprint", description=__doc__.split("\n\n")[0])
    p.add_argument("--agencies", type=int, nargs="+", default=[10, 100, 300], help="N for each run (default 10 100 300)")
    p.add_argument("--idle", type=float, default=30.0, help="seconds of idle CPU measured once started (default 30)")
    p.add_argument("--trace", action="store_true", help="also a tracemalloc run per N: top allocation sites per agency")
    p.add_argument("--crl-serials", type=int, default=0,
                   help="every agency loads a CRL revoking this many serials (tls.crl; default none)")
    p.add_argument("--dir", type=Path, default=None, help="where keys and mailboxes go (default: a temporary directory)")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # the child process: one N, one JSON line
    p.add_argument("--built-only", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.one:
        def report_and_exit(result: dict) -> None:  # the figures are taken: no orderly stop of every agency
            print(json.dumps(result), flush=True)
            os._exit(0)
        measure(a.dir, a.agencies[0], a.idle, a.trace, start_servers=not a.built_only, crl_serials=a.crl_serials,
                report=report_and_exit)
        return 0
    with tempfile.TemporaryDirectory(prefix="footprint-") as tmp:
        root = a.dir or Path(tmp)
        runs = []
        for n in a.agencies:
            runs.append(_child(root, n, a.idle, trace=False, crl_serials=a.crl_serials))
            if a.trace:
                runs[-1]["trace"] = _child(root, n, 0, trace=True, built_only=True,
                                           crl_serials=a.crl_serials)["built"]["tracemalloc_top"]
        print(json.dumps({"bench": "footprint", "python": sys.version.split()[0], "cpus": os.cpu_count(),
                          "runs": runs}, indent=1))
    return 0


def _child(root: Path, n: int, idle: float, trace: bool, built_only: bool = False, crl_serials: int = 0) -> dict:
    cmd = [sys.executable, "-m", "node.harness.footprint", "--one", "--agencies", str(n), "--idle", str(idle),
           "--dir", str(root), "--crl-serials", str(crl_serials)]
    cmd += (["--trace"] if trace else []) + (["--built-only"] if built_only else [])
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=str(Path(__file__).resolve().parents[2]))
    if out.returncode != 0:
        return {"agencies": n, "error": out.stderr[-2000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.exit(main())
