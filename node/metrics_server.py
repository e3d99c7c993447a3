"""The Prometheus endpoint (metrics.listen) on a small bounded server of our own.

prometheus_client's own server starts a thread per connection and never closes an idle one: 200
idle connections to the metrics port made 200 threads, held for good, and a node's descriptors
with them. This one is one thread and a selector: at most MAX_CONNECTIONS open at once (past it,
the oldest still waiting for its request is closed, so a flood of idle connections cannot keep a
scraper out: its request comes at once), each given REQUEST_TIMEOUT_S in all to send its request
line and headers however slowly it trickles them, then answered once (`GET /metrics`,
prometheus_client.generate_latest) and closed (`Connection: close`).
"""
from __future__ import annotations

import collections
import logging
import selectors
import socket
import threading
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 32
REQUEST_TIMEOUT_S = 5.0
MAX_REQUEST_BYTES = 8 << 10  # request line and headers; a scraper sends a few hundred bytes
SEND_TIMEOUT_S = 5.0         # the answer (tens of kB) fits the socket's buffer; a reader that stalls is dropped
TICK_S = 0.5


class MetricsServer:
    def __init__(self, host: str, port: int, registry: CollectorRegistry) -> None:
        """Binds now (OSError if it cannot); serves once `start` is called."""
        self.registry = registry
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.create_server((host, port), family=family, backlog=MAX_CONNECTIONS)
        self._sock.setblocking(False)
        self.port = self._sock.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._sock, selectors.EVENT_READ)
        self._pending: collections.OrderedDict[socket.socket, tuple[float, bytearray]] = collections.OrderedDict()
        self._thread = threading.Thread(target=self._run, name="metrics", daemon=True)
        self._stopping = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(TICK_S * 4 + SEND_TIMEOUT_S)

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                for key, _ in self._selector.select(TICK_S):
                    if key.fileobj is self._sock:
                        self._accept()
                    else:
                        self._read(key.fileobj)  # type: ignore[arg-type]
                self._expire(time.monotonic())
        finally:
            for conn in list(self._pending):
                self._close(conn)
            self._selector.close()
            self._sock.close()

    def _accept(self) -> None:
        for _ in range(MAX_CONNECTIONS):  # what is waiting now, bounded per turn
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # EMFILE and the like: try again on the next turn
                log.warning("metrics: cannot accept a connection: %s", e.strerror or e)
                return
            if len(self._pending) >= MAX_CONNECTIONS:
                self._close(next(iter(self._pending)))  # the oldest still waiting for its request
            conn.setblocking(False)
            self._pending[conn] = (time.monotonic() + REQUEST_TIMEOUT_S, bytearray())
            self._selector.register(conn, selectors.EVENT_READ)

    def _read(self, conn: socket.socket) -> None:
        try:
            chunk = conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._close(conn)
            return
        head = self._pending[conn][1]
        head += chunk
        if b"\r\n\r\n" in head:
            self._answer(conn, bytes(head))
        elif len(head) > MAX_REQUEST_BYTES:
            self._close(conn)

    def _answer(self, conn: socket.socket, head: bytes) -> None:
        try:
            response = self._response_to(head)
            conn.setblocking(True)
            conn.settimeout(SEND_TIMEOUT_S)
            conn.sendall(response)
        except OSError:
            pass  # the client left or does not read: nothing more to do for it
        except Exception:  # noqa: BLE001 - a collector's bug must not end the server
            log.exception("metrics scrape failed")
        finally:
            self._close(conn)

    def _expire(self, now: float) -> None:
        for conn, (deadline, _) in list(self._pending.items()):
            if deadline > now:
                break  # in order of arrival, so of deadline
            self._close(conn)

    def _close(self, conn: socket.socket) -> None:
        self._pending.pop(conn, None)
        try:
            self._selector.unregister(conn)
        except (KeyError, ValueError):
            pass
        conn.close()

    def _response_to(self, head: bytes) -> bytes:
        parts = head.split(b"\r\n", 1)[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
            return _response(400, b"bad request\n")
        method, target = parts[0], parts[1].split(b"?", 1)[0]
        if target != b"/metrics":
            return _response(404, b"not found: the metrics are at /metrics\n")
        if method not in (b"GET", b"HEAD"):
            return _response(405, b"use GET\n", extra=b"Allow: GET, HEAD\r\n")
        body = generate_latest(self.registry)
        return _response(200, b"" if method == b"HEAD" else body, CONTENT_TYPE_LATEST.encode(), length=len(body))


_REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 405: b"Method Not Allowed"}


def _response(status: int, body: bytes, content_type: bytes = b"text/plain; charset=utf-8", *,
              extra: bytes = b"", length: int | None = None) -> bytes:
    return (b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n%s\r\n"
            % (status, _REASONS[status], content_type, len(body) if length is None else length, extra)) + body
