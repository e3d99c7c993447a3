"""Prepare node directories (keys, certificates, YAML) and run each node as its own OS process.

Ports are allocated here, not by the nodes, so a node restarted after kill -9 comes back
on the address its peers already know. Readiness is a gRPC health check, never a sleep.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import grpc
import yaml

from ..client import RUNTIME_FILE, MailboxClient, probe_health
from ..identity import certs


_PICKED_BELOW = 10000  # never below: well-known and registered services
_cursor: list[int] = []  # the next port this process tries (set at the first pick)
_cursor_lock = threading.Lock()
# The readiness channel retries its connection within 50-200 ms: with gRPC's default backoff (1 s, then
# x1.6) a node that binds just after a failed attempt was seen healthy up to seconds later, at every start.
READY_CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 50), ("grpc.min_reconnect_backoff_ms", 50),
                         ("grpc.max_reconnect_backoff_ms", 200)]


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return low, high
    except (OSError, ValueError):
        return 49152, 65535  # IANA's dynamic range (BSD, macOS, Windows)


def free_port() -> int:
    """A port nobody holds now, for a node to bind later (the harness allocates ports so a restarted node
    comes back on the address its peers know). Picked outside the kernel's ephemeral range: a port from it
    (what binding port 0 returns) could be taken, before the node binds it, as the local end of any
    outgoing connection, such as a child's first call to its parent during the cluster's start, and the
    node then fails to start (address in use). Handed out in turn from a random start (SystemRandom: tests
    seed the global generator), so one process never hands out a port twice before going round the range
    (random picks did: about 2 % of 30-node clusters got one port twice) and concurrent harnesses rarely
    meet; each checked free by binding it."""
    low, high = _ephemeral_range()
    start, end = (_PICKED_BELOW, low) if low - _PICKED_BELOW >= 4096 else (high + 1, 65536)
    if end - start >= 4096:
        for _ in range(256):
            with _cursor_lock:
                if not _cursor:
                    _cursor.append(random.SystemRandom().randrange(start, end))
                port = start + (_cursor[0] - start) % (end - start)
                _cursor[0] = port + 1
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    with socket.socket() as s:  # no room outside the ephemeral range: the kernel's choice
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class NodeSpec:
    code: str
    name: str
    peers: dict[str, str] = field(default_factory=dict)  # code -> name of another NodeSpec or an address
    parent: str | None = None
    extra: dict = field(default_factory=dict)           # merged into the YAML (e.g. retry, messages)


@dataclass
class NodeHandle:
    code: str
    dir: Path
    config: Path
    listen: str
    api: str
    token: str
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    def client(self, timeout: float = 30.0) -> MailboxClient:
        return MailboxClient(self.api, self.token, timeout)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None


def make_ca(root: Path) -> Path:
    ca_dir = root / "ca"
    if not (ca_dir / "ca.pem").exists():
        certs.init_ca(ca_dir)
    return ca_dir


def prepare_node(root: Path, ca_dir: Path, spec: NodeSpec, addresses: dict[str, str], *,
                 insecure: bool = False) -> NodeHandle:
    """Keys, certificate from the CA, and a YAML config in root/<code>/."""
    d = root / spec.code
    keys_dir = d / "keys"
    if not (keys_dir / "node.pem").exists():
        certs.init_node(keys_dir, spec.code, spec.name, ca_dir)
    token = secrets.token_urlsafe(32)
    api = f"127.0.0.1:{free_port()}"
    listen = addresses[spec.code]
    config = {
        "node": {"code": spec.code, "name": spec.name, "data_dir": "data"},
        "listen": listen,
        "tls": {"key": "keys/node.key", "cert": "keys/node.pem", "trust_anchors": ["keys/ca.pem"],
                "insecure_plaintext": insecure},
        "api": {"listen": api, "token": token},
        "peers": [{"code": c, "address": addresses.get(a, a)} for c, a in spec.peers.items()],
        "log_level": "INFO",
    }
    if spec.parent:
        config["node"]["parent"] = spec.parent
    elif _needs_root(spec):
        config["node"]["root"] = True  # the top of this test tree, though the code rule places it under another
    for k, v in spec.extra.items():
        config[k] = {**config.get(k, {}), **v} if isinstance(v, dict) and isinstance(config.get(k), dict) else v
    (d / "node.yaml").write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    return NodeHandle(spec.code, d, d / "node.yaml", listen, api, token)


def _needs_root(spec: NodeSpec) -> bool:
    """A node without a parent whose code-rule parent is not among its peers: the top of its (test) tree."""
    from ..codes import ROOT, CodeError, Hierarchy
    try:
        parent = Hierarchy(dict(spec.extra.get("parents_of") or {})).parent(spec.code)
    except CodeError:
        return False
    return bool(parent) and parent != ROOT and parent not in spec.peers


def start(handle: NodeHandle, python: str = sys.executable, *, open_files: int | None = None) -> None:
    """`open_files`: the node runs with this RLIMIT_NOFILE, soft and hard (as under a tight systemd unit)."""
    handle.log_path = handle.dir / "node.log"
    log = open(handle.log_path, "ab")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [python, "-m", "node", "run", "--config", str(handle.config)]
    if open_files is not None:  # a launcher sets the limit, then execs the node in its place (same pid)
        command = [python, "-c", "import os, resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, "
                   f"({open_files}, {open_files})); os.execv(sys.executable, [sys.executable, *sys.argv[1:]])",
                   *command[1:]]
    handle.process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        cwd=str(Path(__file__).resolve().parents[2]), start_new_session=True,
    )
    log.close()


def wait_healthy(handles: list[NodeHandle], timeout: float = 60.0) -> None:
    """Block until every node's local API reports SERVING (gRPC health), or fail naming the laggards."""
    deadline = time.monotonic() + timeout
    pending = list(handles)
    channels = {h.code: grpc.insecure_channel(h.api, options=READY_CHANNEL_OPTIONS) for h in handles}
    try:
        while pending:
            for h in list(pending):
                if h.process is not None and h.process.poll() is not None:
                    raise RuntimeError(f"node {h.code} exited with {h.process.returncode}; log: {tail(h)}")
                ch = channels[h.code]
                ready = grpc.channel_ready_future(ch)
                try:
                    ready.result(timeout=max(0.05, min(1.0, deadline - time.monotonic())))
                except grpc.FutureTimeoutError:
                    ready.cancel()  # stop its polling thread before the channel is closed
                else:
                    if probe_health(ch, timeout=2.0):
                        pending.remove(h)
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"nodes not healthy after {timeout}s: {[h.code for h in pending]}")
    finally:
        for ch in channels.values():
            ch.close()


def kill9(handle: NodeHandle) -> None:
    if handle.process and handle.process.poll() is None:
        handle.process.send_signal(signal.SIGKILL)
        handle.process.wait()


def terminate(handle: NodeHandle, timeout: float = 20.0) -> int | None:
    """SIGTERM and wait; returns the exit status."""
    p = handle.process
    if p is None:
        return None
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return p.returncode


def runtime_info(handle: NodeHandle) -> dict:
    return json.loads((handle.dir / "data" / RUNTIME_FILE).read_text())


def tail(handle: NodeHandle, lines: int = 20) -> str:
    try:
        return "\n".join(handle.log_path.read_text(errors="replace").splitlines()[-lines:])
    except (OSError, AttributeError):
        return "(no log)"


def pair(root: Path, a: NodeSpec, b: NodeSpec, **kw) -> tuple[NodeHandle, NodeHandle]:
    """Two nodes that know each other's address from their configs."""
    ca = make_ca(root)
    addresses = {a.code: f"127.0.0.1:{free_port()}", b.code: f"127.0.0.1:{free_port()}"}
    a.peers.setdefault(b.code, b.code)
    b.peers.setdefault(a.code, a.code)
    return prepare_node(root, ca, a, addresses, **kw), prepare_node(root, ca, b, addresses, **kw)


def start_registered(parent: NodeHandle, child: NodeHandle, timeout: float = 30.0) -> None:
    """Start `child` as its own process and return once `parent` has seen it register (by the
    parent's Watch events, subscribed before the start, so the event cannot be missed)."""
    from .waiting import EventWaiter  # waiting imports the client, as this module does: no cycle at import
    with EventWaiter(parent.client(), inbox=False, sent=False, registry=True) as reg:
        start(child)
        reg.wait(lambda evs: any(e.type == "registered" and e.peer == child.code for e in evs), timeout)


@contextlib.contextmanager
def parent_and_child(root: Path, ca: Path, parent: NodeSpec, child: NodeSpec,
                     timeout: float = 30.0) -> Iterator[tuple[NodeHandle, NodeHandle]]:
    """Two node processes, `child` (whose parent is `parent`) registered under `parent`, each on a port of its
    own; both stopped on exit. Yields (parent's handle, child's handle)."""
    addresses = {code: f"127.0.0.1:{free_port()}" for code in (parent.code, child.code)}
    handles = [prepare_node(root, ca, spec, addresses) for spec in (parent, child)]
    try:
        start(handles[0])
        wait_healthy([handles[0]], timeout)
        start_registered(handles[0], handles[1], timeout)
        yield handles[0], handles[1]
    finally:
        for h in handles:
            terminate(h)


def mailbox_path(node_dir: Path) -> Path:
    """Where a harness node's mailbox lives (node.data_dir is `data/` under its directory)."""
    return node_dir / "data" / "mailbox.sqlite3"


def audit_chain(node_dir: Path) -> list:
    """A harness node's audit rows, read without touching the node (a read-only connection)."""
    from ..store import audit
    ro = audit.ReadOnly(mailbox_path(node_dir))
    try:
        return list(ro.rows())
    finally:
        ro.close()
