"""Connections held open against D's HTTP servers: the metrics endpoint and the HTTP/JSON face.

200 idle connections to the metrics port once made 200 threads that never ended (prometheus_client's
server); 120 connections trickling their headers to the HTTP face stayed open for an hour each. Now
the metrics server is one thread with a bounded set of connections and a deadline per request
(node/metrics_server.py), and the HTTP face closes a connection without a whole request after
IDLE_TIMEOUT_S and answers one past its cap 503 TOO_MANY_CONNECTIONS (node/api/http_server.py).
Each case ends with D's own answers as they should be, and every attacking connection closed by D.
"""
from __future__ import annotations

import json
import select
import socket
import time
import urllib.request
from pathlib import Path

from node import descriptors
from node.api.http_server import IDLE_TIMEOUT_S
from node.metrics_server import MAX_CONNECTIONS as METRICS_CONNECTIONS
from node.metrics_server import REQUEST_TIMEOUT_S

from .core import Observed, case
from .world import D

MARGIN_S = 10.0  # on top of a server's own timeout, for a loaded machine


def address(s, key: str) -> tuple[str, int]:
    """D's bound address for `key` in its runtime.json (`metrics`, `http`)."""
    info = json.loads((Path(s.w.cluster.nodes[D].dir) / "data" / "runtime.json").read_text())
    host, port = info[key].rsplit(":", 1)
    return host.strip("[]"), int(port)


def threads(s) -> int:
    status = Path(f"/proc/{s.w.cluster.nodes[D].pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


def connect(where: tuple[str, int], n: int, first: bytes = b"") -> list[socket.socket]:
    out = []
    for _ in range(n):
        sock = socket.create_connection(where, timeout=10)
        if first:
            sock.sendall(first)
        out.append(sock)
    return out


def closed_by_d(socks: list[socket.socket], within: float, trickle: bytes = b"") -> int:
    """Wait until D has closed every socket (select wakes on D's EOF, at most a second apart); with `trickle`,
    each one still open sends it once a round, as a slow client would. Returns how many D closed in time."""
    for sock in socks:
        sock.setblocking(False)  # (with a timeout, Python waits out EAGAIN inside recv and send)
    open_ = list(socks)
    deadline = time.monotonic() + within
    while open_ and time.monotonic() < deadline:
        select.select(open_, [], [], 1.0)
        still = []
        for sock in open_:
            try:
                if sock.recv(65536) == b"":
                    continue  # EOF: D closed it
            except BlockingIOError:
                pass
            except OSError:
                continue  # reset by D
            if trickle:
                try:
                    sock.send(trickle)
                except OSError:
                    continue
            still.append(sock)
        open_ = still
    for sock in socks:
        sock.close()
    return len(socks) - len(open_)


def open_files_limit(s) -> int:
    limits = Path(f"/proc/{s.w.cluster.nodes[D].pid}/limits").read_text()
    return int(next(line.split()[3] for line in limits.splitlines() if line.startswith("Max open files")))


def get(url: str, headers: dict | None = None, data: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@case("connections", "200 idle connections to the metrics port", "OK", "scraped; one thread; all closed",
      via="TCP to D's metrics.listen")
def _(s):
    host, port = address(s, "metrics")
    before = threads(s)
    idle = connect((host, port), 200)
    status, body = get(f"http://{host}:{port}/metrics")  # a scraper's request comes at once: served
    assert status == 200 and b"lienthong_" in body, status
    grown = threads(s) - before
    assert grown <= 10, f"D has {grown} more threads with 200 idle metrics connections"
    closed = closed_by_d(idle, REQUEST_TIMEOUT_S + MARGIN_S)
    assert closed == 200, f"D closed {closed} of 200 idle metrics connections"
    return Observed("OK", "scraped; one thread; all closed")


@case("connections", f"{METRICS_CONNECTIONS * 2} metrics connections trickling a request", "OK", "all closed",
      via="TCP to D's metrics.listen")
def _(s):
    host, port = address(s, "metrics")
    slow = connect((host, port), METRICS_CONNECTIONS * 2, b"GET /metrics HTTP/1.1\r\n")
    closed = closed_by_d(slow, REQUEST_TIMEOUT_S + MARGIN_S, trickle=b"X")
    assert closed == len(slow), f"D closed {closed} of {len(slow)}"
    return Observed("OK", "all closed")


@case("connections", "120 connections to the HTTP face trickling their headers", "OK", "served; all closed",
      via="TCP to D's api.http_listen")
def _(s):
    host, port = address(s, "http")
    slow = connect((host, port), 120, b"POST /v1/mailbox/Lookup HTTP/1.1\r\nHost: x\r\n")
    status, body = get(f"http://{host}:{port}/v1/health")
    assert status == 200 and b"SERVING" in body, (status, body)
    closed = closed_by_d(slow, IDLE_TIMEOUT_S + MARGIN_S, trickle=b"X")
    assert closed == 120, f"D closed {closed} of 120 slow HTTP connections"
    return Observed("OK", "served; all closed")


@case("connections", "connections past the HTTP face's cap", "RESOURCE_EXHAUSTED", "TOO_MANY_CONNECTIONS",
      via="TCP to D's api.http_listen")
def _(s):
    host, port = address(s, "http")
    cap = descriptors.budget(open_files_limit(s)).http
    held = connect((host, port), cap)
    try:
        extra = socket.create_connection((host, port), timeout=10)
        extra.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while chunk := extra.recv(65536):
            answer += chunk
        extra.close()
    finally:
        for sock in held:
            sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503"), answer[:200]
    error = json.loads(body)["error"]
    return Observed(error["status"], error["reason"], detail=error["message"])
