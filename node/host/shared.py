"""What a host lends each agency it serves: the one place a Node receives the host's shared parts."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

from ..limits import InFlight, Places


REGISTERING = 4  # registrations at once from one host to one parent: under its default limits.registry_share (6)


@dataclass
class Shared:
    scheduler: object  # the host's one BackgroundScheduler: the agency's jobs run there under "CODE/name" ids
    transport_for: Callable  # (node) -> PeerTransport: co-hosted agencies in process, others over gRPC
    endpoint: Callable[[], str]  # the host's peer address, as registered with parents (registry.advertise wins)
    ports: Callable[[], dict]  # {"listen": peer port, "api": API port}
    runtime: Callable[[], dict]  # what runtime.json names ("listen", "api", "http", "metrics": host:port)
    detach: Callable  # (node) -> None: the host stops dispatching to it (stop, or removed by SIGHUP)
    # Watch streams of every agency together (each holds one of the host's API workers; node.limits.InFlight,
    # key ALL): as on a node, at most MAX_WATCHERS, so Send, Fetch and the rest of every agency find a worker
    watchers: InFlight | None = None
    send_pool: object = None  # the host's one SendPool (exchange/send_pool.py): every agency's hops are tasks on it
    rng: random.Random = field(default_factory=random.Random)
    watchers_per_agency: int = 2  # of `watchers`: one agency's programs cannot hold every Watch place
    watchers_total: int = 8  # of every agency together (MAX_WATCHERS: half the host's API workers)
    # peers' health Watch streams on the host's peer port, every agency's together (node/peer_gate.py)
    health_watches: InFlight | None = None
    # registrations in progress, by parent (node.limits.InFlight): a thousand agencies starting at once each
    # tried every second, so most found their parent busy (REGISTRY_BUSY: its limits.registry_share) and the
    # scheduler's workers behind (thousands of warnings). An agency finding no place tries on its next tick;
    # a parent that does not answer holds the places of its own children only
    registering: InFlight = field(default_factory=lambda: InFlight(REGISTERING))

    def watch_places(self, code: str) -> Places | None:
        """An agency's Watch places: its own few, each also one of the host's."""
        if self.watchers is None:
            return None
        return Places(self.watchers, code, self.watchers_per_agency, self.watchers_total)

    def first_run(self, interval_s: float) -> float:
        """Seconds to a periodic job's first run: anywhere in its interval, so agencies started together
        spread their wake-ups instead of all running each job in the same second."""
        return self.rng.uniform(0, interval_s)

