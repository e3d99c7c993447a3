"""In-process fan-out of committed changes to local API watchers.

Publishers call after their transaction commits, so a watcher never sees an event
for something a crash could still undo. A slow watcher loses events beyond its
queue bound rather than slowing the node; it can always re-list.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Protocol

from .pb import mailbox_pb2 as mpb

ARRIVED, DELIVERED, REJECTED, EXPIRED = "arrived", "delivered", "rejected", "expired"
REGISTERED = "registered"  # peer: the child's code
HEARTBEAT = "heartbeat"    # peer: the child's code (its subtree's counters were just stored)
CHECKPOINT = "checkpoint"            # peer: the parent, which took this node's audit checkpoint at `seq`
CHECKPOINT_KEPT = "checkpoint_kept"  # peer: the child whose audit checkpoint at `seq` was kept here
CRL = "crl"                # peer: where it came from (tls.crl or the parent); crl_number: the list now held
SUCCESSION = "succession"  # peer: where it came from; recipient: the issuer; succession_number: the list now held
READDRESSED = "readdressed"  # recipient: the successor an envelope of ours now goes to; successor_of: the retired code
NOT_REGISTERED_YET = "not_registered_yet"  # peer: the node where a sent envelope waits; waits_until_ms: until when
WATCHING = "watching"  # first event of every stream: the subscription is in place
QUEUE_BOUND = 10_000
# the same, as the proto enum clients compare (Event.event_type; the string `type` is kept, deprecated)
EVENT_TYPES = {WATCHING: mpb.EVENT_TYPE_WATCHING, ARRIVED: mpb.EVENT_TYPE_ARRIVED, DELIVERED: mpb.EVENT_TYPE_DELIVERED,
               REJECTED: mpb.EVENT_TYPE_REJECTED, EXPIRED: mpb.EVENT_TYPE_EXPIRED,
               REGISTERED: mpb.EVENT_TYPE_REGISTERED, HEARTBEAT: mpb.EVENT_TYPE_HEARTBEAT,
               CHECKPOINT: mpb.EVENT_TYPE_CHECKPOINT, CHECKPOINT_KEPT: mpb.EVENT_TYPE_CHECKPOINT_KEPT, CRL: mpb.EVENT_TYPE_CRL,
               NOT_REGISTERED_YET: mpb.EVENT_TYPE_NOT_REGISTERED_YET, SUCCESSION: mpb.EVENT_TYPE_SUCCESSION,
               READDRESSED: mpb.EVENT_TYPE_READDRESSED}


class EventSink(Protocol):
    """What publishers are given (an EventBus in a node)."""

    def emit(self, type_: str, **fields) -> None: ...

    def wants(self, type_: str) -> bool:
        """Someone watches this type: worth a query for a field (an inbox entry's seq)."""


class NoEvents:
    """An EventSink for pieces run without a local API (unit tests, tools)."""

    def emit(self, type_: str, **fields) -> None:
        pass

    def wants(self, type_: str) -> bool:
        return False


class Subscription:
    def __init__(self, bus: "EventBus", types: set[str]) -> None:
        self.bus, self.types = bus, types
        self.queue: queue.Queue[mpb.Event] = queue.Queue(QUEUE_BOUND)

    def get(self, timeout: float) -> mpb.Event | None:
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self.bus._remove(self)


class EventBus:
    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()

    def subscribe(self, types: set[str]) -> Subscription:
        sub = Subscription(self, types)
        with self._lock:
            self._subs.append(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def wants(self, type_: str) -> bool:
        return any(type_ in s.types for s in self._subs)

    def emit(self, type_: str, **fields) -> None:
        """Publish an event built only if someone watches its type (the hot path has nobody)."""
        if self.wants(type_):
            self.publish(mpb.Event(type=type_, event_type=EVENT_TYPES.get(type_, 0), **fields))

    def publish(self, event: mpb.Event) -> None:
        event.time_us = time.time_ns() // 1000
        with self._lock:
            subs = list(self._subs)
        for s in subs:
            if event.type in s.types:
                try:
                    s.queue.put_nowait(event)
                except queue.Full:
                    pass
