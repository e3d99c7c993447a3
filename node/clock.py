"""Time as an injected object, so retry, backoff and expiry can be tested by moving a clock."""
from __future__ import annotations

import threading
import time


class Clock:
    """Wall-clock time in epoch milliseconds (the unit carried in envelopes)."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def now(self) -> float:
        return self.now_ms() / 1000.0


class FakeClock(Clock):
    """A clock that only moves when told to."""

    def __init__(self, start_ms: int = 1_767_225_600_000) -> None:  # 2026-01-01T00:00Z
        self._ms = start_ms
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        with self._lock:
            return self._ms

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._ms += int(seconds * 1000)


SYSTEM = Clock()
