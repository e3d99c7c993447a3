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
    send_pool: object = None  # the host's bounded pool of hop senders (branch hoppool): None, each hop its own
    rng: random.Random = field(default_factory=random.Random)

    def first_run(self, interval_s: float) -> float:
        """Seconds to a periodic job's first run: anywhere in its interval, so agencies started together
        spread their wake-ups instead of all running each job in the same second."""
        return self.rng.uniform(0, interval_s)
