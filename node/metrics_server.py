"""The Prometheus endpoint (metrics.listen) on a small bounded server of our own.

prometheus_client's own server starts a thread per connection and never closes an idle one: 200
idle connections to the metrics port made 200 threads, held for good, and a node's descriptors
with them. This one is one thread and a selector: at most MAX_CONNECTIONS open at once (past it,
the oldest still waiting for its request is closed, so a flood of idle connections cannot keep a
scraper out: its request comes at once), at most MAX_PER_CLIENT of them from one address (past it,
that address's own oldest goes, so one host cannot push the others out), each given
REQUEST_TIMEOUT_S in all to send its request line and headers however slowly it trickles them, then
answered once (`GET /metrics`) and closed (`Connection: close`).

The answer is sent without blocking, as the client reads it, within SEND_TIMEOUT_S: a client that
does not read holds its own connection only, never the thread (a blocking send once held it up to
5 s per such client). And the answer is made at most once per `cache_for` seconds (metrics.cache_for)
and sent again as made to every scrape in between: each made one reads the mailbox (several queries)
and formats every series, so a client scraping in a loop cost the node that work each time. `now`
reads the node's clock (seconds).
"""
from __future__ import annotations

import collections
import logging
import selectors
import socket
import threading
import time
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 32
MAX_PER_CLIENT = 8           # connections one address may hold open at once
REQUEST_TIMEOUT_S = 5.0
MAX_REQUEST_BYTES = 8 << 10  # request line and headers; a scraper sends a few hundred bytes
SEND_TIMEOUT_S = 5.0         # for the client to read the whole answer; one that does not is dropped
TICK_S = 0.5


class _Connection:
    __slots__ = ("sock", "client", "deadline", "head", "out")

    def __init__(self, sock: socket.socket, client: str, deadline: float) -> None:
        self.sock, self.client, self.deadline = sock, client, deadline
        self.head = bytearray()
        self.out: memoryview | None = None  # the answer still to send, once the request is read


class MetricsServer:
    def __init__(self, host: str, port: int, registry: CollectorRegistry,
                 cache_for: Callable[[], float] = lambda: 0.0, now: Callable[[], float] = time.monotonic) -> None:
        """Binds now (OSError if it cannot); serves once `start` is called."""
        self.registry = registry
        self._cache_for, self._now = cache_for, now
        self._made: tuple[float, bytes] | None = None  # (when, body) of the last answer made
        self.made = 0  # answers made from the registry (the rest were sent again as made)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.create_server((host, port), family=family, backlog=MAX_CONNECTIONS)
        self._sock.setblocking(False)
        self.port = self._sock.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._sock, selectors.EVENT_READ)
        self._open: collections.OrderedDict[socket.socket, _Connection] = collections.OrderedDict()  # by arrival
        self._thread = threading.Thread(target=self._run, name="metrics", daemon=True)
        self._stopping = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(TICK_S * 4)

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                for key, _ in self._selector.select(TICK_S):
                    if key.fileobj is self._sock:
                        self._accept()
                    elif key.fileobj in self._open:
                        c = self._open[key.fileobj]  # type: ignore[index]
                        if c.out is None:
                            self._read(c)
                        else:
                            self._write(c)
                self._expire(time.monotonic())
        finally:
            for sock in list(self._open):
                self._close(sock)
            self._selector.close()
            self._sock.close()

    def _accept(self) -> None:
        for _ in range(MAX_CONNECTIONS):  # what is waiting now, bounded per turn
            try:
                sock, address = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # EMFILE and the like: try again on the next turn
                log.warning("metrics: cannot accept a connection: %s", e.strerror or e)
                return
            client = address[0] if isinstance(address, tuple) else str(address)
            own = [c for c in self._open.values() if c.client == client]
            if len(own) >= MAX_PER_CLIENT:
                self._close(_oldest(own))  # this address's own
            elif len(self._open) >= MAX_CONNECTIONS:
                self._close(_oldest(list(self._open.values())))
            sock.setblocking(False)
            self._open[sock] = _Connection(sock, client, time.monotonic() + REQUEST_TIMEOUT_S)
            self._selector.register(sock, selectors.EVENT_READ)

    def _read(self, c: _Connection) -> None:
        try:
            chunk = c.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._close(c.sock)
            return
        c.head += chunk
        if b"\r\n\r\n" in c.head:
            try:
                response = self._response_to(bytes(c.head))
            except Exception:  # noqa: BLE001 - a collector's bug must not end the server
                log.exception("metrics scrape failed")
                self._close(c.sock)
                return
            c.out, c.deadline = memoryview(response), time.monotonic() + SEND_TIMEOUT_S
            self._selector.modify(c.sock, selectors.EVENT_WRITE)
            self._write(c)
        elif len(c.head) > MAX_REQUEST_BYTES:
            self._close(c.sock)

    def _write(self, c: _Connection) -> None:
        """As much of the answer as the socket takes now; the rest when it is writable again."""
        try:
            sent = c.sock.send(c.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # the client left: nothing more to do for it
            self._close(c.sock)
            return
        c.out = c.out[sent:]
        if not c.out:
            self._close(c.sock)

    def _expire(self, now: float) -> None:
        for sock, c in list(self._open.items()):
            if c.deadline <= now:
                self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        self._open.pop(sock, None)
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()

    def _body(self) -> bytes:
        """The metrics as text: made anew at most once per `cache_for` seconds."""
        now = self._now()
        if self._made is None or not 0 <= now - self._made[0] < self._cache_for():
            self._made = (now, generate_latest(self.registry))
            self.made += 1
        return self._made[1]

    def _response_to(self, head: bytes) -> bytes:
        parts = head.split(b"\r\n", 1)[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
            return _response(400, b"bad request\n")
        method, target = parts[0], parts[1].split(b"?", 1)[0]
        if target != b"/metrics":
            return _response(404, b"not found: the metrics are at /metrics\n")
        if method not in (b"GET", b"HEAD"):
            return _response(405, b"use GET\n", extra=b"Allow: GET, HEAD\r\n")
        body = self._body()
        return _response(200, b"" if method == b"HEAD" else body, CONTENT_TYPE_LATEST.encode(), length=len(body))


def _oldest(connections: list[_Connection]) -> socket.socket:
    """The one to close for a newcomer: the oldest still waiting for its request, else the oldest (in arrival order)."""
    return next((c for c in connections if c.out is None), connections[0]).sock


_REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 405: b"Method Not Allowed"}


def _response(status: int, body: bytes, content_type: bytes = b"text/plain; charset=utf-8", *,
              extra: bytes = b"", length: int | None = None) -> bytes:
    return (b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n%s\r\n"
            % (status, _REASONS[status], content_type, len(body) if length is None else length, extra)) + body
