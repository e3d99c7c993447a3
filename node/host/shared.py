"""What a host lends each agency it serves: the one place a Node receives the host's shared parts."""
from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Shared:
    scheduler: object  # the host's one BackgroundScheduler: the agency's jobs run there under "CODE/name" ids
    transport_for: Callable  # (node) -> PeerTransport: co-hosted agencies in process, others over gRPC
    endpoint: Callable[[], str]  # the host's peer address, as registered with parents (registry.advertise wins)
    ports: Callable[[], dict]  # {"listen": peer port, "api": API port}
    runtime: Callable[[], dict]  # what runtime.json names ("listen", "api", "http", "metrics": host:port)
    detach: Callable  # (node) -> None: the host stops dispatching to it (stop, or removed by SIGHUP)
    # Watch streams of every agency together (each holds one of the host's API workers): as on a node,
    # at most half the workers, so Send, Fetch and the rest of every agency always find one free
    watchers: threading.BoundedSemaphore | None = None
    send_pool: object = None  # the host's one SendPool (exchange/send_pool.py): every agency's hops are tasks on it
    rng: random.Random = field(default_factory=random.Random)
    watchers_per_agency: int = 2  # of `watchers`: one agency's programs cannot hold every Watch place
    # peers' health Watch streams on the host's peer port, every agency's together (node/peer_gate.py)
    health_watches: object = None

    def watch_places(self) -> "WatchPlaces | None":
        """An agency's Watch places: its own few, each also one of the host's."""
        if self.watchers is None:
            return None
        return WatchPlaces(threading.BoundedSemaphore(self.watchers_per_agency), self.watchers)

    def first_run(self, interval_s: float) -> float:
        """Seconds to a periodic job's first run: anywhere in its interval, so agencies started together
        spread their wake-ups instead of all running each job in the same second."""
        return self.rng.uniform(0, interval_s)


class WatchPlaces:
    """Two semaphores taken as one (an agency's, then the host's), as MailboxService takes one: a Watch
    stream needs a place in both, and gives both back."""

    def __init__(self, own: threading.BoundedSemaphore, host: threading.BoundedSemaphore) -> None:
        self.own, self.host = own, host

    def acquire(self, blocking: bool = True) -> bool:
        if not self.own.acquire(blocking=False):
            return False
        if not self.host.acquire(blocking=False):
            self.own.release()
            return False
        return True

    def release(self) -> None:
        self.host.release()
        self.own.release()
