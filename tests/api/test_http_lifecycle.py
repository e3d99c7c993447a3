"""The HTTP face starts and stops with the node process: SIGTERM ends its event streams and the node
exits 0; an address it cannot bind stops start-up naming api.http_listen; and a node without it never
loads aiohttp (idle memory), seen in the maps of the real processes."""
from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from node.harness import nodes
from node.harness.http_api import HttpApi, SseWatch
from node.harness.nodes import NodeSpec

A = "000.00.01.H53"
TIMEOUT = 20.0
ROOT = Path(__file__).resolve().parents[2]


def solo(root: Path, http_listen: str | None) -> nodes.NodeHandle:
    extra = {"api": {"http_listen": http_listen}} if http_listen else {}
    return nodes.prepare_node(root, nodes.make_ca(root), NodeSpec(A, "Sở A", extra=extra),
                              {A: f"127.0.0.1:{nodes.free_port()}"})


def loads_aiohttp(pid: int) -> bool:
    """aiohttp's compiled parser is mapped into the process once aiohttp.web is imported."""
    return "/aiohttp/" in Path(f"/proc/{pid}/maps").read_text()


@pytest.fixture
def handle(tmp_path):
    h = solo(tmp_path, f"127.0.0.1:{nodes.free_port()}")
    yield h
    nodes.kill9(h)


def test_sigterm_ends_the_event_streams_and_the_node_exits_0(handle):
    nodes.start(handle)
    nodes.wait_healthy([handle], timeout=60)
    api = HttpApi(nodes.runtime_info(handle)["http"], handle.token, TIMEOUT)
    assert loads_aiohttp(handle.pid)
    with SseWatch(api) as watch:
        assert api.mailbox("CountPending")["total"] == "0"
        assert nodes.terminate(handle) == 0, nodes.tail(handle)
        assert watch.wait_ended(TIMEOUT), "the event stream outlived the node"
    assert "stopped in" in nodes.tail(handle, 5)


def test_a_node_without_the_http_face_never_loads_aiohttp(tmp_path):
    h = solo(tmp_path, None)
    try:
        nodes.start(h)
        nodes.wait_healthy([h], timeout=60)
        assert not loads_aiohttp(h.pid)
        assert "http" not in nodes.runtime_info(h)
        assert nodes.terminate(h) == 0
    finally:
        nodes.kill9(h)


def test_an_address_in_use_stops_start_up_naming_the_key(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        h = solo(tmp_path, f"127.0.0.1:{taken.getsockname()[1]}")
        proc = subprocess.run([sys.executable, "-m", "node", "run", "--config", str(h.config)], capture_output=True,
                              text=True, timeout=60, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2, proc.stderr
    assert "api.http_listen" in proc.stderr and "cannot listen" in proc.stderr


def test_a_dead_http_face_makes_the_node_not_serving(tmp_path):
    from node.config import load_config
    from node.runtime import Node
    node = Node(load_config(solo(tmp_path, "127.0.0.1:0").config))
    node.start()
    try:
        assert node.health.check() and node.http_port > 0
        face = node.http_face
        face._loop.call_soon_threadsafe(face._loop.stop)  # what a crash of its event loop would leave
        face._thread.join(TIMEOUT)
        assert not node.health.check()
        assert "api.http_listen" in node.health.problem
    finally:
        node.stop(grace=1.0)
