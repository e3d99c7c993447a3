"""The metrics endpoint's own server (node/metrics_server.py), on port 0 with a registry of its own: a scrape in
a loop makes the answer once per `cache_for` (the node's clock), and a client that does not read its answer
holds only its own connection."""
from __future__ import annotations

import socket
import urllib.request

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

from node import metrics_server
from node.clock import FakeClock
from node.metrics_server import MetricsServer

TIMEOUT = 20.0


class Counting:
    """A collector that counts how often it is read (the mailbox's, read when scraped, runs several queries)."""

    def __init__(self, series: int = 1) -> None:
        self.reads, self.series = 0, series

    def collect(self):
        self.reads += 1
        g = GaugeMetricFamily("lienthong_test_rows", "rows", labels=["hop"])
        for i in range(self.series):
            g.add_metric([f"000.{i:08d}.35.H53-{'x' * 40}"], i)
        yield g


@pytest.fixture
def serve():
    servers = []

    def start(collector, cache_for: float, clock=None) -> MetricsServer:
        registry = CollectorRegistry()
        registry.register(collector)
        server = MetricsServer("127.0.0.1", 0, registry, cache_for=lambda: cache_for,
                               now=(clock or FakeClock()).now)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def scrape(server: MetricsServer) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=TIMEOUT) as resp:
        assert resp.status == 200
        return resp.read()


def test_scrapes_in_a_row_read_the_node_once_per_cache_for(serve):
    clock, rows = FakeClock(), Counting()
    server = serve(rows, cache_for=2.0, clock=clock)
    bodies = {scrape(server) for _ in range(5)}
    assert rows.reads == 1 and server.made == 1 and len(bodies) == 1
    clock.advance(1.9)
    scrape(server)
    assert rows.reads == 1  # still within cache_for
    clock.advance(0.2)
    scrape(server)
    assert rows.reads == 2  # made again once it is older than cache_for


def test_cache_for_zero_reads_the_node_for_every_scrape(serve):
    rows = Counting()
    server = serve(rows, cache_for=0.0)
    for _ in range(3):
        scrape(server)
    assert rows.reads == 3


def test_a_client_that_does_not_read_holds_no_one_else(serve, monkeypatch):
    """The answer was sent with a blocking sendall on the one thread: a client that asked and did not read held
    every other scrape for up to SEND_TIMEOUT_S. Now each is sent as its client reads."""
    monkeypatch.setattr(metrics_server, "SEND_TIMEOUT_S", 120.0)  # far past TIMEOUT: only not blocking can pass
    server = serve(Counting(series=100_000), cache_for=60.0)  # about 8 MB: more than any socket buffer holds
    stuck = []
    for _ in range(3):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", server.port))
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        stuck.append(s)
    try:
        body = scrape(server)  # answered while the three hold answers they do not read
        assert len(body) > 8_000_000
        for s in stuck:  # and each of them still gets its whole answer when it reads at last
            s.settimeout(TIMEOUT)
            data = bytearray()
            while chunk := s.recv(1 << 20):
                data += chunk
            assert data.endswith(body) and b"Content-Length: %d" % len(body) in data
    finally:
        for s in stuck:
            s.close()
