"""A tree of real node processes on this machine: `scripts/cluster up small`, then talk to any node.

`Cluster(directory).up(topology)` issues a test CA and every node's key and certificate,
writes each node's YAML (its parent's code as ``node.parent`` and the parent's address as
its only peer: the registry does the rest; a parent of codes the topology places by an explicit
``parent`` lists them in ``parents_of``, as it must to let them register), starts every node as its own OS process, and
returns when every node answers gRPC health and every parent lists all its children as
registered and reachable. The map of the running cluster (code → addresses, API token,
pid, config) is written to ``cluster.json`` in the directory, so separate invocations
(`scripts/cluster status`, `stop`, `kill`, `restart`, `down`) work on the same cluster; with
`up --http` every node serves its HTTP/JSON face too, at the address cluster.json names `http`.

Each node runs under a one-line ``sh`` supervisor that records the node's pid before the
node starts and its exit status when it ends; the node is the process that gets
signalled (SIGTERM to stop, SIGKILL to crash it), and the supervisor is what anyone, the
starting process or a later one, waits on (a pidfd), so `down` can report exit statuses
even for nodes another process started.

Start-up is paced for small machines: nodes start in tree order (a parent is healthy
before its children start, so they register on their first try), with a bounded number
of processes starting at once.
"""
from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import grpc

from ..client import MailboxClient
from ..pb import mailbox_pb2 as mpb
from . import nodes, topology as topo_mod
from .topology import Topology
from .waiting import EventWaiter

REPO = Path(__file__).resolve().parents[2]
STATE_FILE = "cluster.json"
MARKER = ".lienthong-cluster"      # a directory `up` may wipe carries this file
PID_FILE = "node.pid"                # written by the supervisor's child just before it execs the node
EXIT_FILE = "exit_status"            # written by the supervisor when the node has ended
POLL_PACE_S = 0.05                   # between rounds of a registration poll (paces gRPC calls)

# $1: node dir; the rest: the node's command line. The inner sh writes its own pid and
# execs the node, so the pid file exists before the node can be healthy.
SUPERVISOR = r'''
dir=$1; shift
/bin/sh -c 'echo $$ > "$0/node.pid.tmp" && mv "$0/node.pid.tmp" "$0/node.pid" && exec "$@"' "$dir" "$@" &
wait $!
status=$?
echo $status > "$dir/exit_status.tmp" && mv "$dir/exit_status.tmp" "$dir/exit_status"
exit $status
'''


class ClusterError(RuntimeError):
    pass


@dataclass
class NodeInfo:
    code: str
    name: str
    parent: str | None
    listen: str
    api: str
    token: str
    config: str
    dir: str
    pid: int | None = None          # the node process
    supervisor: int | None = None   # its sh supervisor (what exit is waited on)
    http: str | None = None         # the HTTP/JSON face (api.http_listen), with `up --http`

    def client(self, timeout: float = 30.0) -> MailboxClient:
        return MailboxClient(self.api, self.token, timeout)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------- processes


def _proc_state(pid: int) -> str | None:
    """Process state letter from /proc (R, S, Z, ...), or None if there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _runs_with(pid: int | None, marker: str) -> bool:
    """The pid is alive (not a zombie) and its command line holds `marker` (guards against pid reuse)."""
    if not pid or _proc_state(pid) in (None, "Z", "X"):
        return False
    try:
        return marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _is_node_process(pid: int | None, config: str) -> bool:
    return _runs_with(pid, config)  # the node runs with --config <its file>


def _is_supervisor(pid: int | None, node_dir: str) -> bool:
    return _runs_with(pid, node_dir)  # the sh supervisor's script names the node's directory


def _wait_pid_exit(pid: int, timeout: float) -> bool:
    """Block until `pid` (any process, not only our child) has exited; False on timeout."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        p = select.poll()
        p.register(fd, select.POLLIN)
        return bool(p.poll(max(0, int(timeout * 1000))))
    finally:
        os.close(fd)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# ------------------------------------------------------------------------------- the cluster


class Cluster:
    def __init__(self, directory: str | os.PathLike, python: str = sys.executable) -> None:
        self.dir = Path(directory).resolve()
        self.python = python
        self.nodes: dict[str, NodeInfo] = {}
        self._procs: dict[str, subprocess.Popen] = {}   # supervisors this process started
        self._registrations: dict[str, EventWaiter] = {}  # parent -> its registry events, from up()
        self._lock = threading.Lock()
        self._clients: dict[str, MailboxClient] = {}
        state = self.dir / STATE_FILE
        if state.exists():
            for code, info in json.loads(state.read_text()).items():
                self.nodes[code] = NodeInfo(code=code, **{k: info.get(k) for k in (
                    "name", "parent", "listen", "api", "token", "config", "dir", "pid", "supervisor", "http")})

    # ---- state ----------------------------------------------------------------------

    def reload(self) -> None:
        """Take pids from cluster.json: another invocation may have killed or restarted nodes."""
        state = self.dir / STATE_FILE
        if not state.exists():
            return
        for code, info in json.loads(state.read_text()).items():
            n = self.nodes.get(code)
            if n is None:
                continue
            n.pid, n.supervisor = info.get("pid"), info.get("supervisor")
            p = self._procs.get(code)
            if p is not None and p.pid != n.supervisor:
                p.poll()  # ours, superseded: reap it if it has ended
                if p.returncode is not None:
                    del self._procs[code]

    def _save(self) -> None:
        with self._lock:
            data = {c: {k: v for k, v in asdict(n).items() if k != "code"} for c, n in self.nodes.items()}
            tmp = self.dir / (STATE_FILE + ".tmp")
            tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False))
            os.replace(tmp, self.dir / STATE_FILE)

    def map(self) -> dict[str, dict]:
        """code → {listen, api, token, pid, config, dir, parent} (what cluster.json holds)."""
        return {c: {k: v for k, v in asdict(n).items() if k != "code"} for c, n in self.nodes.items()}

    def children(self, code: str) -> list[str]:
        return [c for c, n in self.nodes.items() if n.parent == code]

    def client(self, code: str) -> MailboxClient:
        """A cached local-API client for `code` (closed by down/close)."""
        with self._lock:
            c = self._clients.get(code)
            if c is None:
                n = self.nodes[code]
                c = self._clients[code] = MailboxClient(n.api, n.token)
            return c

    def handle(self, code: str) -> nodes.NodeHandle:
        n = self.nodes[code]
        return nodes.NodeHandle(code, Path(n.dir), Path(n.config), n.listen, n.api, n.token,
                                self._procs.get(code), Path(n.dir) / "node.log")

    def alive(self, code: str) -> bool:
        n = self.nodes[code]
        return _is_node_process(n.pid, n.config)

    # ---- set-up ---------------------------------------------------------------------

    def _prepare_dir(self) -> None:
        if self.dir.exists() and any(self.dir.iterdir()):
            if not (self.dir / MARKER).exists():
                raise ClusterError(f"{self.dir} is not empty and was not made by the cluster harness; "
                                   "choose another --dir")
            running = [c for c in self.nodes if self.alive(c)]
            if running:
                raise ClusterError(f"a cluster is still running in {self.dir} ({len(running)} nodes); "
                                   "stop it first (scripts/cluster down)")
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / MARKER).write_text("made by node.harness.cluster; `up` may wipe this directory\n")
        self.nodes.clear()

    def prepare(self, topology: Topology, extra: dict | None = None,
                node_extra: dict[str, dict] | None = None, http: bool = False) -> None:
        """CA, keys, certificates and YAML for every node; ports allocated here and unique. `http`: every node
        serves its HTTP/JSON face too (api.http_listen), its address in cluster.json as `http`."""
        self._prepare_dir()
        ca = nodes.make_ca(self.dir)
        used: set[int] = set()

        def port() -> int:
            while (p := nodes.free_port()) in used:
                pass
            used.add(p)
            return p

        addresses = {n.code: f"127.0.0.1:{port()}" for n in topology}
        faces = {n.code: f"127.0.0.1:{port()}" for n in topology} if http else {}
        for n in topology:
            own = _merge({"api": {"http_listen": faces[n.code]}} if http else {}, (node_extra or {}).get(n.code, {}))
            spec = nodes.NodeSpec(n.code, n.name, peers={n.parent: n.parent} if n.parent else {},
                                  parent=n.parent, extra=_merge(_merge(hosts(topology, n.code), extra or {}), own))
            h = nodes.prepare_node(self.dir, ca, spec, addresses)
            while int(h.api.rsplit(":", 1)[1]) in used:  # prepare_node picks the API port itself
                h = nodes.prepare_node(self.dir, ca, spec, addresses)
            used.add(int(h.api.rsplit(":", 1)[1]))
            self.nodes[n.code] = NodeInfo(n.code, n.name, n.parent, h.listen, h.api, h.token,
                                          str(h.config), str(h.dir), http=faces.get(n.code))
        self._save()

    # ---- processes ------------------------------------------------------------------

    def _spawn(self, code: str) -> None:
        n = self.nodes[code]
        d = Path(n.dir)
        for f in (PID_FILE, EXIT_FILE):
            (d / f).unlink(missing_ok=True)
        with open(d / "node.log", "ab") as log:
            p = subprocess.Popen(
                ["/bin/sh", "-c", SUPERVISOR, "lienthong-node", str(d),
                 self.python, "-m", "node", "run", "--config", n.config],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=str(REPO), start_new_session=True)
        self._procs[code] = p
        n.supervisor, n.pid = p.pid, None
        self._save()  # cluster.json always names every process we started

    def _wait_healthy(self, code: str, timeout: float) -> None:
        n = self.nodes[code]
        handle = self.handle(code)
        try:
            nodes.wait_healthy([handle], timeout)
        except (RuntimeError, TimeoutError) as e:
            raise ClusterError(f"{code}: {e}\n--- {n.dir}/node.log ---\n{nodes.tail(handle)}") from None
        # The pid file was written before the node started, so it is there now.
        n.pid = int((Path(n.dir) / PID_FILE).read_text())
        self._save()

    def start_all(self, order: list[str], parallel: int, timeout: float,
                  healthy: Callable[[int], None] = lambda n: None) -> None:
        """Start nodes in `order` (parents first), at most `parallel` starting at once;
        a node starts only once its parent (if any in the cluster) is healthy. `healthy(n)`: n are."""
        done = {c: threading.Event() for c in order}
        count, counting = [0], threading.Lock()
        failed: list[str] = []
        deadline = time.monotonic() + timeout

        def launch(code: str) -> None:
            try:
                parent = self.nodes[code].parent
                if parent in done:
                    if not done[parent].wait(max(0.0, deadline - time.monotonic())):
                        raise ClusterError(f"{code}: parent {parent} not healthy in time")
                if failed:
                    return
                self._spawn(code)
                self._wait_healthy(code, max(1.0, deadline - time.monotonic()))
                with counting:
                    count[0] += 1
                    healthy(count[0])
                if self.children(code):  # subscribe before any child starts: no registration is missed
                    self._registrations[code] = EventWaiter(self.client(code), inbox=False, sent=False, registry=True)
            except BaseException:
                failed.append(code)
                raise
            finally:
                done[code].set()

        ex = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="start")
        try:
            futures = [ex.submit(launch, c) for c in order]
            for f in futures:
                f.result()  # the first failure (or Ctrl-C) stops the rest from starting
        except BaseException:
            failed.append("stop")
            raise
        finally:
            ex.shutdown(wait=True, cancel_futures=True)
            self._save()

    def up(self, topology: Topology | str, extra: dict | None = None, node_extra: dict[str, dict] | None = None,
           parallel: int | None = None, timeout: float = 600.0, quiet: bool = False,
           registered: bool = True, prepared=None, http: bool = False,
           progress: Callable[[str], None] | None = None) -> dict[str, dict]:
        """Prepare, start every node, wait until all are healthy and registered; returns the map.

        `extra` is merged into every node's YAML (e.g. {"retry": {...}}), `node_extra` per code;
        `prepared(cluster)`, if given, runs after the CA, keys and configs exist and before any node
        starts (e.g. to write a CRL a config names). `progress(line)`: told each step and each node healthy
        (scripts/demo shows them while it waits).
        On any failure every node started so far is killed before the error propagates.
        """
        topo = topo_mod.load(topology) if isinstance(topology, (str, os.PathLike)) else topology
        say = (lambda m: None) if quiet else _log
        tell = progress or (lambda m: None)
        t0 = time.monotonic()
        self.prepare(topo, extra, node_extra, http=http)
        tell(f"CA, {len(topo)} keys, certificates and configs made ({time.monotonic() - t0:.1f}s)")
        if prepared is not None:
            prepared(self)
        say(f"prepared {len(topo)} nodes of '{topo.name}' in {self.dir} ({time.monotonic() - t0:.1f}s)")
        parallel = parallel or max(2, 3 * (os.cpu_count() or 1))
        order = [n.code for n in sorted(topo.nodes, key=lambda n: n.depth)]  # stable: tree order per level
        try:
            self.start_all(order, parallel, timeout, lambda n: tell(f"{n}/{len(order)} nodes started and healthy "
                                                                    f"({time.monotonic() - t0:.1f}s)"))
            say(f"{len(order)} nodes healthy ({time.monotonic() - t0:.1f}s)")
            if registered:
                tell("waiting until every parent lists its children as reachable")
                self.wait_registered(timeout=max(10.0, timeout - (time.monotonic() - t0)))
        except BaseException:
            self.kill_all()
            raise
        self.started_in_s = round(time.monotonic() - t0, 2)
        if registered:
            say(f"every parent lists its children as reachable ({self.started_in_s}s)")
        self._save()
        return self.map()

    # ---- registration ---------------------------------------------------------------

    def directory(self, code: str, parent: str = "", recursive: bool = False, timeout: float = 5.0) -> list[mpb.Agency]:
        """What `code` lists below `parent` (empty: its own children; with recursive, its subtree), every page."""
        c = self.client(code)
        out, token = [], ""
        while True:
            resp = c.stub.Directory(mpb.DirectoryRequest(parent=parent or code, recursive=recursive, page_size=1000,
                                                         page_token=token), metadata=c.metadata, timeout=timeout)
            out.extend(resp.agencies)
            if not resp.has_more:
                return out
            token = resp.next_page_token

    def lookup(self, code: str, target: str, timeout: float = 5.0) -> mpb.Agency:
        c = self.client(code)
        return c.stub.Lookup(mpb.AgencyLookupRequest(code=target), metadata=c.metadata, timeout=timeout)

    def _registered(self, parent: str, since_ms: dict[str, int] | None = None) -> set[str]:
        """Children `parent` lists as reachable (and, for codes in since_ms, seen since then)."""
        try:
            agencies = self.directory(parent)
        except grpc.RpcError:
            return set()
        since_ms = since_ms or {}
        return {a.code for a in agencies if a.reachable and a.last_seen_ms >= since_ms.get(a.code, 0)}

    def wait_registered(self, parents: list[str] | None = None, timeout: float = 120.0,
                        since_ms: dict[str, int] | None = None) -> None:
        """Until each parent's Directory lists all its expected children as reachable.

        Polls the parents' local APIs (a gRPC round trip each) until the deadline, asking
        again only the parents still missing children; rounds are paced so a large tree is
        not hammered while its nodes are still busy starting.
        """
        pending = {p: set(self.children(p)) for p in (parents if parents is not None else list(self.nodes))}
        pending = {p: kids for p, kids in pending.items() if kids}
        deadline = time.monotonic() + timeout
        if since_ms is None:  # after up(): wait on each parent's registration events
            for p in [p for p in pending if p in self._registrations]:
                waiter, kids = self._registrations.pop(p), pending[p]
                try:
                    waiter.wait(lambda evs: {e.peer for e in evs if e.type == "registered"} >= kids,
                                timeout=max(0.1, deadline - time.monotonic()))
                    del pending[p]
                except TimeoutError as e:
                    if waiter.ended is None and time.monotonic() >= deadline:
                        raise ClusterError(f"children of {p} not registered after {timeout}s: "
                                           f"{sorted(kids - {e.peer for e in waiter.events})}") from None
                    # the watch stream ended early: ask the parent's Directory below instead
                    print(f"cluster: {e}; polling {p}'s directory instead", file=sys.stderr)
                finally:
                    waiter.close()
        pace = threading.Event()
        while pending:
            for p in list(pending):
                if not self.alive(p) and p in self._procs and self._procs[p].poll() is not None:
                    raise ClusterError(f"{p} exited while waiting for registrations")
                pending[p] -= self._registered(p, since_ms)
                if not pending[p]:
                    del pending[p]
            if not pending:
                return
            if time.monotonic() > deadline:
                missing = {p: sorted(k) for p, k in pending.items()}
                raise ClusterError(f"children not registered after {timeout}s: {missing}")
            pace.wait(POLL_PACE_S)  # pacing the next round of calls, not waiting for a result

    # ---- operations -----------------------------------------------------------------

    def kill(self, code: str, timeout: float = 10.0) -> int | None:
        """kill -9 the node; returns its exit status as the supervisor saw it (137)."""
        self.reload()
        n = self.nodes[code]
        if self.alive(code):
            os.kill(n.pid, signal.SIGKILL)
        status = self._wait_stopped(code, timeout)
        n.pid = None
        self._save()
        return status

    def stop(self, code: str, timeout: float = 30.0) -> int | str | None:
        """Stop the node gracefully (SIGTERM), as systemd does; its exit status (0), "not running", or "killed"
        when it did not stop within `timeout`."""
        self.reload()
        n = self.nodes[code]
        if not self.alive(code):
            self._reap(code)
            return "not running"
        os.kill(n.pid, signal.SIGTERM)
        status = self._wait_stopped(code, timeout)
        if status is None:
            self._killpg(code)
            status = "killed"
        n.pid = None
        self._save()
        return status

    def start(self, code: str, timeout: float = 60.0) -> None:
        """Start a stopped node and wait until it is healthy (its pid recorded: down() stops it)."""
        if self.alive(code):
            raise ClusterError(f"{code} is already running (pid {self.nodes[code].pid})")
        self._reap(code)
        self._spawn(code)
        self._wait_healthy(code, timeout)

    def restart(self, code: str, timeout: float = 60.0) -> None:
        """Start the node again with its config (edited or not) and ports, stopping it first (SIGTERM) if it
        runs; wait until it is healthy, its parent has seen it register again, and its own children are
        listed as reachable."""
        self.reload()
        n = self.nodes[code]
        if self.alive(code) and self.stop(code) not in (0, "not running"):
            raise ClusterError(f"{code} did not stop cleanly; see {n.dir}/node.log")
        self._reap(code)
        t_ms = int(time.time() * 1000)
        self._spawn(code)
        self._wait_healthy(code, timeout)
        self._save()
        if n.parent in self.nodes:
            self.wait_registered([n.parent], timeout, since_ms={code: t_ms})
        self.wait_registered([code], timeout)

    def _reap(self, code: str) -> None:
        p = self._procs.pop(code, None)
        if p is not None:
            p.wait()

    def _wait_stopped(self, code: str, timeout: float) -> int | None:
        """Wait for the node's supervisor to finish; its recorded exit status, or None if it did not."""
        n = self.nodes[code]
        p = self._procs.get(code)
        if p is not None:
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                return None
            self._procs.pop(code, None)
        elif _is_supervisor(n.supervisor, n.dir):
            if not _wait_pid_exit(n.supervisor, timeout):
                return None
        elif _is_node_process(n.pid, n.config):  # supervisor gone (should not happen): wait on the node
            if not _wait_pid_exit(n.pid, timeout):
                return None
        try:
            return int((Path(n.dir) / EXIT_FILE).read_text())
        except (OSError, ValueError):
            return None

    def down(self, timeout: float | None = None) -> dict[str, Any]:
        """SIGTERM every running node, wait for each to stop; {code: exit status}.

        A node still running after `timeout` is killed (status "killed"); one that was not
        running is reported as "not running" (or its last recorded status). The default
        timeout grows with the cluster: a hundred nodes stopping at once share two cores.
        """
        self.reload()
        statuses: dict[str, Any] = {}
        stopping = []
        for code, n in self.nodes.items():
            if self.alive(code):
                os.kill(n.pid, signal.SIGTERM)
                stopping.append(code)
            else:
                try:
                    statuses[code] = f"not running (last exit {int((Path(n.dir) / EXIT_FILE).read_text())})"
                except (OSError, ValueError):
                    statuses[code] = "not running"
                self._reap(code)
        timeout = timeout if timeout is not None else max(30.0, 1.0 * len(stopping))
        deadline = time.monotonic() + timeout
        for code in stopping:
            st = self._wait_stopped(code, max(0.0, deadline - time.monotonic()))
            if st is None:
                self._killpg(code)
                st = "killed"
            statuses[code] = st
            self.nodes[code].pid = None
        self._close_clients()
        self._save()
        return statuses

    def _killpg(self, code: str) -> None:
        n = self.nodes[code]
        for pid in (n.supervisor, n.pid):
            if pid and (_is_supervisor(pid, n.dir) or _is_node_process(pid, n.config)):
                try:
                    os.killpg(pid, signal.SIGKILL)  # the supervisor leads the session and group
                except (ProcessLookupError, PermissionError):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        p = self._procs.pop(code, None)
        if p is not None:
            p.kill()
            p.wait()

    def kill_all(self) -> None:
        """Crash-stop everything this cluster runs (cleanup on failure)."""
        self.reload()
        for code in list(self.nodes):
            self._killpg(code)
            n = self.nodes[code]
            if n.pid and _is_node_process(n.pid, n.config):
                _wait_pid_exit(n.pid, 10)
            n.pid = None
        self._close_clients()
        if (self.dir / STATE_FILE).exists():
            self._save()

    def _close_clients(self) -> None:
        for waiter in self._registrations.values():
            waiter.close()
        self._registrations.clear()
        with self._lock:
            for c in self._clients.values():
                c.close()
            self._clients.clear()

    def close(self) -> dict[str, Any]:
        """down(), and kill anything that did not stop (for fixtures' teardown)."""
        try:
            return self.down()
        finally:
            self.kill_all()

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- status ---------------------------------------------------------------------

    def status(self, timeout: float = 2.0) -> list[dict]:
        """Per node: pid, alive, healthy, and for parents how many children are registered / reachable."""
        self.reload()
        out = []
        for code, n in self.nodes.items():
            row: dict[str, Any] = {"code": code, "name": n.name, "pid": n.pid, "alive": self.alive(code),
                                   "healthy": False}
            kids = self.children(code)
            if row["alive"]:
                c = self.client(code)
                row["healthy"] = c.healthy(timeout)
                if kids:
                    try:
                        agencies = self.directory(code, timeout=timeout)
                        row["children"] = len(kids)
                        row["registered"] = sum(a.code in kids for a in agencies)
                        row["reachable"] = sum(a.code in kids and a.reachable for a in agencies)
                    except grpc.RpcError as e:
                        row["children"], row["error"] = len(kids), e.code().name
            elif kids:
                row["children"] = len(kids)
            out.append(row)
        return out

    def rss_mb(self) -> dict[str, float]:
        return {c: round(rss_kb(n.pid) / 1024, 1) for c, n in self.nodes.items() if self.alive(c)}


def hosts(topology: Topology, code: str) -> dict:
    """`parents_of` for the children of `code` that the topology places by an explicit parent: a parent
    registers a code outside the QCVN form only where its own configuration puts it (node.registry)."""
    odd = {n.code: code for n in topology if n.parent == code and n.explicit_parent}
    return {"parents_of": odd} if odd else {}


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# ------------------------------------------------------------------------------- CLI


def default_dir(name: str) -> Path:
    return REPO / "var" / f"cluster-{name}"


def _find_dir(args) -> Path:
    if args.dir:
        return Path(args.dir)
    if getattr(args, "topology", None):
        return default_dir(Path(args.topology).stem)
    found = sorted(p.parent for p in (REPO / "var").glob(f"cluster-*/{STATE_FILE}"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise ClusterError("no cluster found under var/; start one with `scripts/cluster up small` or pass --dir")
    raise ClusterError("several clusters under var/ (" + ", ".join(p.name for p in found) + "); pass --dir or --topology")


def _print_status(rows: list[dict]) -> None:
    w = max(len(r["code"]) for r in rows)
    for r in rows:
        kids = ""
        if "children" in r:
            kids = (f"  children {r.get('reachable', '?')}/{r['children']} reachable"
                    + (f" ({r['error']})" if "error" in r else ""))
        state = "healthy" if r["healthy"] else ("running, NOT healthy" if r["alive"] else "stopped")
        print(f"{r['code']:<{w}}  pid {str(r['pid'] or '-'):>7}  {state}{kids}  {r['name']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/cluster", description="Run a tree of lienthong nodes on this machine.")
    sub = p.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start every node of a topology; prints the cluster map as JSON")
    up.add_argument("topology", help="a name in configs/topologies (small, dong-nai, binh-phuoc) or a YAML path")
    up.add_argument("--parallel", type=int, default=None, help="processes starting at once (default 3 x CPUs)")
    up.add_argument("--timeout", type=float, default=600.0, help="seconds for every node to be up and registered")
    up.add_argument("--http", action="store_true",
                    help="every node serves its HTTP/JSON face too; its address is `http` in cluster.json")
    for name, text in (("down", "stop every node (SIGTERM) and report exit statuses"),
                       ("status", "pid, health and registered children of every node"),
                       ("stop", "stop one node gracefully (SIGTERM), as systemd does"),
                       ("kill", "kill -9 one node"),
                       ("restart", "start one node again with its config (stopping it first if it runs; after an "
                                   "edit of its node.yaml) and wait until it is back")):
        sp = sub.add_parser(name, help=text)
        if name in ("stop", "kill", "restart"):
            sp.add_argument("code", help="the node's agency code")
        if name == "status":
            sp.add_argument("--json", action="store_true")
        sp.add_argument("--topology", help="find the cluster in var/cluster-<name>")
    for sp in sub.choices.values():
        sp.add_argument("--dir", help="cluster directory (default var/cluster-<topology name>)")
    args = p.parse_args(argv)
    try:
        if args.cmd == "up":
            topo = topo_mod.load(args.topology)
            d = Path(args.dir) if args.dir else default_dir(topo.name)
            cluster = Cluster(d)
            print(json.dumps(cluster.up(topo, parallel=args.parallel, timeout=args.timeout, http=args.http), indent=2,
                             ensure_ascii=False))
            _log(f"cluster map: {d / STATE_FILE}; stop with: scripts/cluster down --dir {d}")
            return 0
        cluster = Cluster(_find_dir(args))
        if not cluster.nodes:
            raise ClusterError(f"no {STATE_FILE} in {cluster.dir}")
        if args.cmd == "down":
            statuses = cluster.down()
            print(json.dumps(statuses, indent=2))
            return 0 if all(s == 0 or str(s).startswith("not running") for s in statuses.values()) else 1
        if args.cmd == "status":
            rows = cluster.status()
            if args.json:
                print(json.dumps(rows, indent=2, ensure_ascii=False))
            else:
                _print_status(rows)
            return 0 if all(r["healthy"] for r in rows) else 1
        if args.code not in cluster.nodes:
            raise ClusterError(f"{args.code} is not in this cluster")
        if args.cmd == "kill":
            status = cluster.kill(args.code)
            print(json.dumps({args.code: status}))
            return 0
        if args.cmd == "stop":
            status = cluster.stop(args.code)
            print(json.dumps({args.code: status}))
            return 0 if status in (0, "not running") else 1
        if args.cmd == "restart":
            t0 = time.monotonic()
            cluster.restart(args.code)
            n = cluster.nodes[args.code]
            print(json.dumps({args.code: {"pid": n.pid, "api": n.api, "listen": n.listen, "http": n.http,
                                          "seconds": round(time.monotonic() - t0, 2)}}))
            return 0
    except (ClusterError, topo_mod.TopologyError) as e:
        _log(f"scripts/cluster {args.cmd}: {e}")
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
