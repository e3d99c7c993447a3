"""A plain HTTP client of the HTTP/JSON face (stdlib http.client, no generated code), as a vendor
would write one: for the tests and scripts/bench-api. `SseWatch` waits on Watch events
streamed as server-sent events, the way EventWaiter waits on the gRPC stream."""
from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from typing import Any, Callable, Iterator

from ..events import WATCHING


class HttpApi:
    def __init__(self, address: str, token: str | None, timeout: float = 30.0) -> None:
        self.address, self.token, self.timeout = address, token, timeout
        host, port = address.rsplit(":", 1)
        self._host, self._port = host.strip("[]"), int(port)
        self._conn: http.client.HTTPConnection | None = None  # kept alive between calls

    def headers(self, token: str | None = ..., extra: dict | None = None) -> dict:
        token = self.token if token is ... else token
        out = {"Content-Type": "application/json"}
        if token is not None:
            out["Authorization"] = f"Bearer {token}"
        return {**out, **(extra or {})}

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)

    def raw(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
            ) -> tuple[int, dict, bytes]:
        """(status, headers, body) of one request on the kept connection (reopened if the node closed it)."""
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = self.connection()
            try:
                self._conn.request(method, path, body=body, headers=headers if headers is not None else self.headers())
                resp = self._conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
                continue
            if resp.will_close:
                self.close()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        raise AssertionError("unreachable")

    def call(self, path: str, body: Any = None, **kw) -> tuple[int, dict]:
        """POST `body` (a dict, sent as JSON; bytes as they are) to `path`: (HTTP status, JSON answer)."""
        data = body if isinstance(body, bytes) else json.dumps(body if body is not None else {}).encode()
        status, _, answer = self.raw("POST", path, data, self.headers(**kw))
        return status, json.loads(answer)

    def ok(self, path: str, body: Any = None) -> dict:
        status, answer = self.call(path, body)
        if status != 200:
            raise AssertionError(f"{path}: HTTP {status}: {answer}")
        return answer

    def mailbox(self, method: str, body: Any = None) -> dict:
        return self.ok(f"/v1/mailbox/{method}", body)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def is_a(value, name: str) -> bool:
    """An event type or state string as JSON shows it: "arrived", or the name of an enum value that
    ends in it ("ARRIVED", "EVENT_TYPE_ARRIVED"), should the proto make it an enum."""
    return isinstance(value, str) and value.lower().endswith(name.lower())


def sse_events(resp: http.client.HTTPResponse) -> Iterator[tuple[str, Any]]:
    """(event name, JSON data) per server-sent event; comments (keep-alives) skipped."""
    name, data = "message", []
    while line := resp.readline():
        line = line.rstrip(b"\r\n")
        if not line:
            if data:
                yield name, json.loads(b"\n".join(data))
            name, data = "message", []
        elif line.startswith(b":"):
            continue
        elif line.startswith(b"event:"):
            name = line[6:].strip().decode()
        elif line.startswith(b"data:"):
            data.append(line[5:].lstrip())


class SseWatch:
    """Watch over HTTP: subscribe first (returns once the `watching` event came), act, then wait."""

    def __init__(self, api: HttpApi, inbox: bool = True, sent: bool = True, registry: bool = False,
                 ready_timeout: float = 10.0) -> None:
        self.events: list[dict] = []
        self.errors: list[dict] = []
        self.ended = False
        self._cond = threading.Condition()
        self._ready = threading.Event()
        self._conn = api.connection()
        self._conn.request("POST", "/v1/mailbox/Watch",
                           body=json.dumps({"inbox": inbox, "sent": sent, "registry": registry}).encode(),
                           headers=api.headers())
        self.response = self._conn.getresponse()
        if self.response.status != 200:
            body = json.loads(self.response.read())
            self._conn.close()
            raise WatchRefused(self.response.status, body)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        if not self._ready.wait(ready_timeout):
            self.close()
            raise TimeoutError(f"watch on {api.address} did not start")

    def _read(self) -> None:
        try:
            for name, data in sse_events(self.response):
                if name == "error":
                    self.errors.append(data)
                elif is_a(data.get("type"), WATCHING):
                    self._ready.set()
                    continue
                with self._cond:
                    self.events.append(data)
                    self._cond.notify_all()
        except Exception:  # noqa: BLE001 - closed under it (close() from another thread), or cut by the node
            pass
        finally:
            self.ended = True
            self._ready.set()
            with self._cond:
                self._cond.notify_all()

    def wait(self, done: Callable[[list[dict]], bool], timeout: float) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not done(self.events):
                left = deadline - time.monotonic()
                if self.ended and not done(self.events):
                    raise TimeoutError(f"event stream ended; {len(self.events)} events seen: {self.events[-5:]}")
                if left <= 0:
                    raise TimeoutError(f"condition not met in {timeout}s; {len(self.events)} events seen: "
                                       f"{self.events[-5:]}")
                self._cond.wait(left)
            return list(self.events)

    def wait_ended(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self) -> None:
        sock = self._conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._conn.close()
        self._thread.join(5)

    def __enter__(self) -> "SseWatch":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class WatchRefused(Exception):
    def __init__(self, status: int, body: dict) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status, self.body = status, body
