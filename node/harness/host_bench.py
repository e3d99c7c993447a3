"""What one host process costs with N idle agencies: RSS, threads, open descriptors, start time, idle CPU.

The agencies are a province and N-1 of its communes, all on one host (node/host/), registered
and idle (heartbeats every registry.heartbeat). Read from /proc after every commune has registered.
`python -m node.harness.host_bench 1 10 100` prints one JSON object per N (scripts/bench-host will
wrap it). Measured, never asserted: a number here is for a human or a benchmark to compare.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from ..store import registry as registry_store
from . import hosts, nodes
from .nodes import NodeSpec

PROVINCE = "000.00.01.H53"
IDLE_WINDOW_S = 10.0  # CPU is counted over this window once everything is registered
TICKS = os.sysconf("SC_CLK_TCK")


def commune(i: int) -> str:
    """The i-th commune code under PROVINCE: 000.NN.01.H53 for the first 99 (its level-3 codes), then
    identifiers H53.NNNNN placed under it by its `parents_of` (as topologies code communes past the 79th;
    000.NN.02.H53 would be under 000.00.02.H53 by the code rule, and refused WRONG_PARENT)."""
    return f"000.{1 + i:02d}.01.H53" if i < 99 else f"H53.{i:05d}"


def proc(pid: int) -> dict:
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])
    threads = int(next(line for line in status.splitlines() if line.startswith("Threads:")).split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu_s = (int(stat[11]) + int(stat[12])) / TICKS  # utime + stime
    return {"rss_mib": rss_kb / 1024, "threads": threads, "fds": fds, "cpu_s": cpu_s}


def registered(db: Path) -> int:
    return registry_store.count_in_file(db)


def measure(root: Path, n: int, timeout: float = 600.0, idle_window: float = IDLE_WINDOW_S) -> dict:
    """Start a host of `n` agencies in `root`, wait until every commune registered, measure, stop it. Not all
    registered within `timeout`: measured all the same, `registered` saying how many were. Idle CPU is
    counted over `idle_window` seconds once all registered."""
    ca = nodes.make_ca(root)
    listen = f"127.0.0.1:{nodes.free_port()}"
    codes = [PROVINCE] + [commune(i) for i in range(n - 1)]
    odd = {c: PROVINCE for c in codes[1:] if not c.startswith("000.")}
    specs = [NodeSpec(PROVINCE, "UBND tỉnh", extra={"node": {"root": True}, **({"parents_of": odd} if odd else {})})] + [
        NodeSpec(c, f"UBND xã {c}", peers={PROVINCE: PROVINCE}, parent=PROVINCE) for c in codes[1:]]
    t0 = time.monotonic()
    h = hosts.prepare_host(root, ca, f"host{n}", specs, {c: listen for c in codes}, listen=listen)
    prepared_s = time.monotonic() - t0
    t0 = time.monotonic()
    hosts.start(h)
    try:
        nodes.wait_healthy([h.agencies[PROVINCE]], timeout=timeout)
        healthy_s = time.monotonic() - t0
        db = nodes.mailbox_path(h.agencies[PROVINCE].dir)
        pace = threading.Event()
        while (count := registered(db)) < n - 1 and time.monotonic() - t0 <= timeout:
            pace.wait(0.2)
        all_registered_s = time.monotonic() - t0 if count >= n - 1 else None
        before = proc(h.process.pid)
        pace.wait(idle_window)
        after = proc(h.process.pid)
        return {"agencies": n, "rss_mib": round(after["rss_mib"], 1),
                "rss_mib_per_agency": round(after["rss_mib"] / n, 2), "threads": after["threads"],
                "fds": after["fds"], "start_to_healthy_s": round(healthy_s, 2),
                "start_to_all_registered_s": round(all_registered_s, 2) if all_registered_s is not None else None,
                "registered": count + 1 if count >= n - 1 else registered(db) + 1,
                "idle_cpu_percent": round(100 * (after["cpu_s"] - before["cpu_s"]) / idle_window, 2),
                "start_cpu_s": round(before["cpu_s"], 2),  # the host's CPU until all registered: steadier under load
                "prepare_s": round(prepared_s, 2)}
    finally:
        status = nodes.terminate(h.agencies[PROVINCE], timeout=120)
        if status != 0:
            print(f"host of {n} exited {status}: {nodes.tail(h.agencies[PROVINCE], 30)}", file=sys.stderr)


def main(argv: list[str]) -> int:
    counts = [int(a) for a in argv] or [1, 10, 100]
    for n in counts:
        with tempfile.TemporaryDirectory(prefix=f"host-bench-{n}-") as d:
            print(json.dumps(measure(Path(d), n)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
