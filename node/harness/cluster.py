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

With a placement (`up --hosts per-agency|per-province`, or `host:` keys in the topology file) the
agencies run on hosts (docs/hosting.md) instead: one process per host, with a host file and one agency
file per agency in its agencies directory (hosts/NAME/), each agency's keys and mailbox still under
<dir>/<code>/. Every agency's entry in cluster.json then names its host (`host`: name, pid, ports, its
agencies); the agency's own `pid`, `listen` and `api` are its host's. `stop`, `kill` and `restart` of a
code act on its host, so on every agency placed there.

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
import secrets
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
import yaml

from ..client import MailboxClient
from ..host.config import AGENCY_SECTIONS, AGENCY_SUBKEYS
from ..identity import certs
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



def _port_picker(used: set[int]):
    """Free ports, none of them twice in one cluster (`used` also holds those picked elsewhere)."""
    def port() -> int:
        while (p := nodes.free_port()) in used:
            pass
        used.add(p)
        return p
    return port

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
    host: str | None = None         # the host it is placed on (None: a node process of its own)

    def client(self, timeout: float = 30.0) -> MailboxClient:
        return MailboxClient(self.api, self.token, timeout)


@dataclass
class HostInfo:
    """One host process and the agencies placed on it; `dir` holds host.yaml, agencies/ and its log."""
    name: str
    listen: str
    api: str
    config: str
    dir: str
    agencies: list[str]
    pid: int | None = None
    supervisor: int | None = None


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
        self.hosts: dict[str, HostInfo] = {}
        self._procs: dict[str, subprocess.Popen] = {}   # supervisors this process started, by unit
        self._registrations: dict[str, EventWaiter] = {}  # parent -> its registry events, from up()
        self._lock = threading.Lock()
        self._clients: dict[str, MailboxClient] = {}
        state = self.dir / STATE_FILE
        if state.exists():
            for code, info in json.loads(state.read_text()).items():
                host = info.get("host")
                self.nodes[code] = NodeInfo(code=code, **{k: info.get(k) for k in (
                    "name", "parent", "listen", "api", "token", "config", "dir", "pid", "supervisor", "http")},
                    host=host["name"] if host else None)
                if host:
                    self.hosts[host["name"]] = HostInfo(**host)

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
            if n.host and info.get("host"):
                h = self.hosts[n.host]
                h.pid, h.supervisor = info["host"].get("pid"), info["host"].get("supervisor")
        for unit, p in list(self._procs.items()):
            if p.pid != self._unit_info(unit).supervisor:
                p.poll()  # ours, superseded: reap it if it has ended
                if p.returncode is not None:
                    del self._procs[unit]

    def _save(self) -> None:
        with self._lock:
            data = self.map()
            tmp = self.dir / (STATE_FILE + ".tmp")
            tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False))
            os.replace(tmp, self.dir / STATE_FILE)

    def map(self) -> dict[str, dict]:
        """code → {listen, api, token, pid, config, dir, parent, host} (what cluster.json holds); `host`: its host's
        {name, pid, listen, api, config, dir, agencies}, or None for a node process of its own."""
        out = {}
        for c, n in self.nodes.items():
            row = {k: v for k, v in asdict(n).items() if k != "code"}
            if n.host:
                row["host"] = asdict(self.hosts[n.host])
            out[c] = row
        return out

    # ---- units: what runs as one process (a node, or a host and its agencies) ---------

    def unit(self, code: str) -> str:
        """The process serving `code`: its host's name, or the code itself for a node process of its own."""
        return self.nodes[code].host or code

    def _unit_info(self, unit: str) -> NodeInfo | HostInfo:
        return self.hosts[unit] if unit in self.hosts else self.nodes[unit]

    def _unit_codes(self, unit: str) -> list[str]:
        return list(self.hosts[unit].agencies) if unit in self.hosts else [unit]

    def _units(self) -> list[str]:
        return list(self.hosts) if self.hosts else list(self.nodes)

    def _set_pid(self, unit: str, pid: int | None, supervisor: int | None = None, keep_supervisor: bool = True) -> None:
        """Record the unit's pid (and supervisor) on it and on every agency it serves."""
        for info in [self._unit_info(unit)] + ([self.nodes[c] for c in self.hosts[unit].agencies]
                                               if unit in self.hosts else []):
            info.pid = pid
            if not keep_supervisor:
                info.supervisor = supervisor

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
        n, u = self.nodes[code], self._unit_info(self.unit(code))
        return nodes.NodeHandle(code, Path(n.dir), Path(n.config), n.listen, n.api, n.token,
                                self._procs.get(self.unit(code)), Path(u.dir) / "node.log")

    def alive(self, code: str) -> bool:
        return self._unit_alive(self.unit(code))

    def _unit_alive(self, unit: str) -> bool:
        u = self._unit_info(unit)
        return _is_node_process(u.pid, u.config)

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
        self.hosts.clear()

    def prepare(self, topology: Topology, extra: dict | None = None,
                node_extra: dict[str, dict] | None = None, http: bool = False,
                placement: dict[str, str] | None = None) -> None:
        """CA, keys, certificates and YAML for every node; ports allocated here and unique. `http`: every node
        serves its HTTP/JSON face too (api.http_listen), its address in cluster.json as `http`. `placement`:
        code -> host name (topology.place): host files and agency files instead of one node.yaml each."""
        if placement is not None:
            if http:
                raise ClusterError("--http with --hosts is not built in the harness yet (a host serves one HTTP face for "
                                   "all its agencies: docs/hosting.md); start the cluster without --hosts")
            return self._prepare_hosts(topology, placement, extra or {}, node_extra or {})
        self._prepare_dir()
        ca = nodes.make_ca(self.dir)
        used: set[int] = set()
        port = _port_picker(used)

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

    def _prepare_hosts(self, topology: Topology, placement: dict[str, str], extra: dict,
                       node_extra: dict[str, dict]) -> None:
        """One host file per host (process-wide keys of `extra` and of its agencies' `node_extra`) and one agency
        file per agency in its agencies directory; keys and mailbox of each agency under <dir>/<code>/."""
        missing = [n.code for n in topology if n.code not in placement]
        if missing:
            raise ClusterError(f"no host for {', '.join(missing)}")
        self._prepare_dir()
        ca = nodes.make_ca(self.dir)
        used: set[int] = set()
        port = _port_picker(used)

        names = list(dict.fromkeys(placement[n.code] for n in topology))  # tree order of each host's first agency
        for name in names:
            d = self.dir / "hosts" / name
            self.hosts[name] = HostInfo(name, f"127.0.0.1:{port()}", f"127.0.0.1:{port()}", str(d / "host.yaml"),
                                        str(d), [n.code for n in topology if placement[n.code] == name])
        for name, h in self.hosts.items():
            d = Path(h.dir)
            (d / "agencies").mkdir(parents=True)
            admin = secrets.token_urlsafe(32)
            (d / "admin.token").write_text(admin)
            os.chmod(d / "admin.token", 0o600)
            process, _ = _split(extra)
            for code in h.agencies:
                process = _merge(process, _split(node_extra.get(code, {}))[0])
            config = _merge({"listen": h.listen, "tls": {"trust_anchors": [str(ca / "ca.pem")]},
                             "api": {"listen": h.api}, "agencies_dir": "agencies",
                             "host": {"admin_token_file": "admin.token"}, "log_level": "INFO"}, process)
            (d / "host.yaml").write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
        for n in topology:
            h = self.hosts[placement[n.code]]
            d = self.dir / n.code
            if not (d / "keys" / "node.pem").exists():
                certs.init_node(d / "keys", n.code, n.name, ca)
            token = secrets.token_urlsafe(32)
            own = _merge(_merge(hosts(topology, n.code), _split(extra)[1]), _split(node_extra.get(n.code, {}))[1])
            peers = {n.parent: self.hosts[placement[n.parent]].listen} if n.parent else {}
            agency = _merge({"node": {"code": n.code, "name": n.name, "data_dir": str(d / "data")},
                             "tls": {"key": str(d / "keys" / "node.key"), "cert": str(d / "keys" / "node.pem")},
                             "api": {"token": token},
                             "peers": [{"code": c, "address": a} for c, a in peers.items()]}, own)
            if n.parent:
                agency["node"]["parent"] = n.parent
            elif nodes._needs_root(nodes.NodeSpec(n.code, n.name, extra=own)):
                agency["node"]["root"] = True
            (Path(h.dir) / "agencies" / f"{n.code}.yaml").write_text(
                yaml.safe_dump(agency, allow_unicode=True, sort_keys=False))
            self.nodes[n.code] = NodeInfo(n.code, n.name, n.parent, h.listen, h.api, token, h.config, str(d),
                                          host=h.name)
        self._save()

    # ---- processes ------------------------------------------------------------------

    def _spawn(self, unit: str) -> None:
        u = self._unit_info(unit)
        d = Path(u.dir)
        for f in (PID_FILE, EXIT_FILE):
            (d / f).unlink(missing_ok=True)
        with open(d / "node.log", "ab") as log:
            p = subprocess.Popen(
                ["/bin/sh", "-c", SUPERVISOR, "lienthong-node", str(d),
                 self.python, "-m", "node", "run", "--config", u.config],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=str(REPO), start_new_session=True)
        self._procs[unit] = p
        self._set_pid(unit, None, p.pid, keep_supervisor=False)
        self._save()  # cluster.json always names every process we started

    def _wait_healthy(self, unit: str, timeout: float) -> None:
        u = self._unit_info(unit)
        handle = nodes.NodeHandle(unit, Path(u.dir), Path(u.config), u.listen, u.api, "", self._procs.get(unit),
                                  Path(u.dir) / "node.log")
        try:
            nodes.wait_healthy([handle], timeout)  # a host's "" health: SERVING when every agency is
        except (RuntimeError, TimeoutError) as e:
            raise ClusterError(f"{unit}: {e}\n--- {u.dir}/node.log ---\n{nodes.tail(handle)}") from None
        # The pid file was written before the node started, so it is there now.
        self._set_pid(unit, int((Path(u.dir) / PID_FILE).read_text()))
        self._save()

    def _unit_parent(self, unit: str) -> str | None:
        """The unit serving the parent of the unit's first agency (None if that is the unit itself or none)."""
        parent = self.nodes[self._unit_codes(unit)[0]].parent
        if parent is None or parent not in self.nodes or self.unit(parent) == unit:
            return None
        return self.unit(parent)

    def start_all(self, order: list[str], parallel: int, timeout: float,
                  healthy: Callable[[int], None] = lambda n: None) -> None:
        """Start units (nodes or hosts) in `order` (parents first), at most `parallel` starting at once;
        a unit starts only once its parent's (if any in the cluster) is healthy. `healthy(n)`: n are."""
        done = {c: threading.Event() for c in order}
        count, counting = [0], threading.Lock()
        failed: list[str] = []
        deadline = time.monotonic() + timeout

        def launch(code: str) -> None:
            try:
                parent = self._unit_parent(code)
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
                if not self.hosts and self.children(code):  # subscribe before any child starts: none missed
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
           progress: Callable[[str], None] | None = None, hosts: str | None = None) -> dict[str, dict]:
        """Prepare, start every node, wait until all are healthy and registered; returns the map.

        `extra` is merged into every node's YAML (e.g. {"retry": {...}}), `node_extra` per code;
        `prepared(cluster)`, if given, runs after the CA, keys and configs exist and before any node
        starts (e.g. to write a CRL a config names). `progress(line)`: told each step and each node healthy
        (scripts/demo shows them while it waits). `hosts`: a placement rule (topology.PLACEMENTS) putting the
        agencies on host processes; without it, the topology file's `host:` keys if it has any.
        On any failure every node started so far is killed before the error propagates.
        """
        topo = topo_mod.load(topology) if isinstance(topology, (str, os.PathLike)) else topology
        say = (lambda m: None) if quiet else _log
        tell = progress or (lambda m: None)
        t0 = time.monotonic()
        self.prepare(topo, extra, node_extra, http=http, placement=topo_mod.place(topo, hosts))
        tell(f"CA, {len(topo)} keys, certificates and configs made ({time.monotonic() - t0:.1f}s)")
        if prepared is not None:
            prepared(self)
        say(f"prepared {len(topo)} nodes of '{topo.name}' in {self.dir} ({time.monotonic() - t0:.1f}s)")
        parallel = parallel or max(2, 3 * (os.cpu_count() or 1))
        order = [n.code for n in sorted(topo.nodes, key=lambda n: n.depth)]  # stable: tree order per level
        if self.hosts:
            order = list(dict.fromkeys(self.unit(c) for c in order))
        try:
            self.start_all(order, parallel, timeout, lambda n: tell(f"{n}/{len(order)} nodes started and healthy "
                                                                    f"({time.monotonic() - t0:.1f}s)"))
            say(f"{len(order)} {'hosts' if self.hosts else 'nodes'} healthy ({time.monotonic() - t0:.1f}s)")
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

    # Each takes an agency's code and acts on the process serving it: on a host, every agency placed there.

    def kill(self, code: str, timeout: float = 10.0) -> int | None:
        """kill -9 the node (or its host); returns its exit status as the supervisor saw it (137)."""
        self.reload()
        unit = self.unit(code)
        u = self._unit_info(unit)
        if self._unit_alive(unit):
            os.kill(u.pid, signal.SIGKILL)
        status = self._wait_stopped(unit, timeout)
        self._set_pid(unit, None)
        self._save()
        return status

    def stop(self, code: str, timeout: float = 30.0) -> int | str | None:
        """Stop the node (or its host) gracefully (SIGTERM), as systemd does; its exit status (0), "not running",
        or "killed" when it did not stop within `timeout`."""
        self.reload()
        unit = self.unit(code)
        u = self._unit_info(unit)
        if not self._unit_alive(unit):
            self._reap(unit)
            return "not running"
        os.kill(u.pid, signal.SIGTERM)
        status = self._wait_stopped(unit, timeout)
        if status is None:
            self._killpg(unit)
            status = "killed"
        self._set_pid(unit, None)
        self._save()
        return status

    def start(self, code: str, timeout: float = 60.0) -> None:
        """Start a stopped node (or its host) and wait until it is healthy (its pid recorded: down() stops it)."""
        unit = self.unit(code)
        if self._unit_alive(unit):
            raise ClusterError(f"{code} is already running (pid {self._unit_info(unit).pid})")
        self._reap(unit)
        self._spawn(unit)
        self._wait_healthy(unit, timeout)

    def restart(self, code: str, timeout: float = 60.0) -> None:
        """Start the node (or its host) again with its config (edited or not) and ports, stopping it first
        (SIGTERM) if it runs; wait until it is healthy, each parent has seen its agencies register again, and
        their own children are listed as reachable."""
        self.reload()
        unit = self.unit(code)
        if self._unit_alive(unit) and self.stop(code) not in (0, "not running"):
            raise ClusterError(f"{code} did not stop cleanly; see {self._unit_info(unit).dir}/node.log")
        self._reap(unit)
        t_ms = int(time.time() * 1000)
        self._spawn(unit)
        self._wait_healthy(unit, timeout)
        self._save()
        served = self._unit_codes(unit)
        for c in served:
            parent = self.nodes[c].parent
            if parent in self.nodes:
                self.wait_registered([parent], timeout, since_ms={c: t_ms})
        self.wait_registered(served, timeout)

    def _reap(self, unit: str) -> None:
        p = self._procs.pop(unit, None)
        if p is not None:
            p.wait()

    def _wait_stopped(self, unit: str, timeout: float) -> int | None:
        """Wait for the unit's supervisor to finish; its recorded exit status, or None if it did not."""
        u = self._unit_info(unit)
        p = self._procs.get(unit)
        if p is not None:
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                return None
            self._procs.pop(unit, None)
        elif _is_supervisor(u.supervisor, u.dir):
            if not _wait_pid_exit(u.supervisor, timeout):
                return None
        elif _is_node_process(u.pid, u.config):  # supervisor gone (should not happen): wait on the node
            if not _wait_pid_exit(u.pid, timeout):
                return None
        try:
            return int((Path(u.dir) / EXIT_FILE).read_text())
        except (OSError, ValueError):
            return None

    def down(self, timeout: float | None = None) -> dict[str, Any]:
        """SIGTERM every running node, wait for each to stop; {code: exit status}.

        A node still running after `timeout` is killed (status "killed"); one that was not
        running is reported as "not running" (or its last recorded status). The default
        timeout grows with the cluster: a hundred nodes stopping at once share two cores.
        On hosts, each agency is given its host's status.
        """
        self.reload()
        statuses: dict[str, Any] = {}
        stopping = []
        for unit in self._units():
            u = self._unit_info(unit)
            if self._unit_alive(unit):
                os.kill(u.pid, signal.SIGTERM)
                stopping.append(unit)
            else:
                try:
                    st: Any = f"not running (last exit {int((Path(u.dir) / EXIT_FILE).read_text())})"
                except (OSError, ValueError):
                    st = "not running"
                statuses.update({c: st for c in self._unit_codes(unit)})
                self._reap(unit)
        timeout = timeout if timeout is not None else max(30.0, 1.0 * len(self.nodes))
        deadline = time.monotonic() + timeout
        for unit in stopping:
            st = self._wait_stopped(unit, max(0.0, deadline - time.monotonic()))
            if st is None:
                self._killpg(unit)
                st = "killed"
            statuses.update({c: st for c in self._unit_codes(unit)})
            self._set_pid(unit, None)
        self._close_clients()
        self._save()
        return statuses

    def _killpg(self, unit: str) -> None:
        n = self._unit_info(unit)
        for pid in (n.supervisor, n.pid):
            if pid and (_is_supervisor(pid, n.dir) or _is_node_process(pid, n.config)):
                try:
                    os.killpg(pid, signal.SIGKILL)  # the supervisor leads the session and group
                except (ProcessLookupError, PermissionError):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        p = self._procs.pop(unit, None)
        if p is not None:
            p.kill()
            p.wait()

    def kill_all(self) -> None:
        """Crash-stop everything this cluster runs (cleanup on failure)."""
        self.reload()
        for unit in self._units():
            self._killpg(unit)
            n = self._unit_info(unit)
            if n.pid and _is_node_process(n.pid, n.config):
                _wait_pid_exit(n.pid, 10)
            self._set_pid(unit, None)
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
        """Per running process: by code for nodes of their own, by host name for hosts."""
        return {u: round(rss_kb(self._unit_info(u).pid) / 1024, 1) for u in self._units() if self._unit_alive(u)}


def hosts(topology: Topology, code: str) -> dict:
    """`parents_of` for the children of `code` that the topology places by an explicit parent: a parent
    registers a code outside the QCVN form only where its own configuration puts it (node.registry)."""
    odd = {n.code: code for n in topology if n.parent == code and n.explicit_parent}
    return {"parents_of": odd} if odd else {}


def _split(extra: dict) -> tuple[dict, dict]:
    """(process-wide part, agency part) of settings meant for one node: what goes in a host file and what
    in an agency file (node.host.config.AGENCY_SECTIONS / AGENCY_SUBKEYS)."""
    process: dict = {}
    agency: dict = {}
    for k, v in extra.items():
        if k in AGENCY_SECTIONS:
            agency[k] = v
        elif k in AGENCY_SUBKEYS and isinstance(v, dict):
            own = {s: x for s, x in v.items() if s in AGENCY_SUBKEYS[k]}
            rest = {s: x for s, x in v.items() if s not in AGENCY_SUBKEYS[k]}
            if own:
                agency[k] = own
            if rest:
                process[k] = rest
        else:
            process[k] = v
    return process, agency


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
    up.add_argument("--hosts", choices=topo_mod.PLACEMENTS, default=None,
                    help="run the agencies on hosts: one host each (per-agency) or one per province with the "
                         "national root on its own (per-province); default: the topology's `host:` keys, if any")
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
            print(json.dumps(cluster.up(topo, parallel=args.parallel, timeout=args.timeout, http=args.http,
                                        hosts=args.hosts), indent=2, ensure_ascii=False))
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
