"""How the client library retries a call its node refused as busy: bounded, with backoff and jitter.

A busy refusal (AGENCY_BUSY on a shared host, the registry's PEER_BUSY / REGISTRY_BUSY / CHILD_BUSY
and RATE_LIMITED coming back through Lookup) is answered before anything is done, so the same call
may simply be made again, whatever it is (a Send without a client_key included). Every program that
retried at once would come back together and be refused together: each wait is drawn at random up
to a doubling bound (full jitter), and the retries are few, so a node that stays busy is reported
to the caller within seconds instead of being hammered. `sleep` and `rng` are injected, so tests
run the whole schedule without sleeping.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

import grpc

from .grpc_errors import reason_of

BUSY = frozenset({"AGENCY_BUSY", "PEER_BUSY", "REGISTRY_BUSY", "CHILD_BUSY", "RATE_LIMITED"})
T = TypeVar("T")


@dataclass
class BusyRetry:
    retries: int = 4            # at most this many calls after the first
    first_delay: float = 0.1    # seconds: the first wait is drawn from [0, first_delay)
    max_delay: float = 2.0      # each later bound doubles up to this
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def delays(self):
        """The waits before each retry (drawn afresh on every call)."""
        bound = self.first_delay
        for _ in range(self.retries):
            yield self.rng.uniform(0, bound)
            bound = min(bound * 2, self.max_delay)

    def call(self, attempt: Callable[[], T]) -> T:
        """`attempt()`, made again after a busy refusal while retries are left; any other outcome as it is."""
        waits = self.delays()
        while True:
            try:
                return attempt()
            except grpc.RpcError as e:
                if reason_of(e) not in BUSY:
                    raise
                wait = next(waits, None)
                if wait is None:
                    raise
            self.sleep(wait)


NO_RETRY = BusyRetry(retries=0)
