"""Waiting on what a node reports, not on the clock: events from its Watch stream."""
from __future__ import annotations

import threading
import time
from typing import Callable

import grpc

from ..client import MailboxClient
from ..events import WATCHING
from ..pb import mailbox_pb2 as mpb


class EventWaiter:
    """Subscribe first, then act, then wait for the events that prove it happened."""

    def __init__(self, client: MailboxClient, inbox: bool = True, sent: bool = True, registry: bool = False,
                 ready_timeout: float = 10.0) -> None:
        self.events: list[mpb.Event] = []
        self.ended: grpc.RpcError | None = None  # why the stream stopped, if it did
        self._address = client.address
        self._cond = threading.Condition()
        self._ready = threading.Event()
        self._stream = client.watch(inbox=inbox, sent=sent, registry=registry)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        if not self._ready.wait(ready_timeout):
            self.close()
            raise TimeoutError(f"watch on {client.address} did not start")

    def _read(self) -> None:
        try:
            for event in self._stream:
                if event.type == WATCHING:
                    self._ready.set()
                    continue
                with self._cond:
                    self.events.append(event)
                    self._cond.notify_all()
        except grpc.RpcError as e:
            self.ended = e
        finally:
            self._ready.set()
            with self._cond:
                self._cond.notify_all()

    def wait(self, done: Callable[[list[mpb.Event]], bool], timeout: float) -> list[mpb.Event]:
        """Block until `done(events)` holds; raise TimeoutError with what was seen otherwise."""
        start = time.monotonic()
        deadline = start + timeout
        with self._cond:
            while not done(self.events):
                left = deadline - time.monotonic()
                if not self._thread.is_alive():  # the stream ended: say why, not "timed out"
                    why = (f"{self.ended.code().name}: {self.ended.details()}" if self.ended is not None
                           else "closed by the node")
                    raise TimeoutError(f"watch on {self._address} ended after {time.monotonic() - start:.1f}s "
                                       f"({why}); condition not met, {len(self.events)} events seen")
                if left <= 0:
                    raise TimeoutError(f"condition not met in {timeout}s; {len(self.events)} events seen")
                self._cond.wait(left)
            return list(self.events)

    def ids(self, type_: str) -> set[str]:
        with self._cond:
            return {e.message_id for e in self.events if e.type == type_}

    def close(self) -> None:
        self._stream.cancel()
        self._thread.join(5)

    def __enter__(self) -> "EventWaiter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def wait_for_statuses(client: MailboxClient, doc_id: str, want: dict[str, list[str]], timeout: float = 60):
    """Until the sender's Track shows exactly `want` (recipient -> status codes in order); re-checked on
    every arrival at the sender, after a first check (statuses may have come before we subscribed)."""
    with EventWaiter(client, sent=False) as ev:
        def done(_):
            track = client.track(doc_id)
            return all([s.status_code for s in r.statuses] == want[r.recipient]
                       for r in track.recipients if r.recipient in want)
        ev.wait(done, timeout=timeout)
    return client.track(doc_id)
