"""Every size a peer or a client controls, bounded; the values come from the config's `limits`.

A valid certificate or API token proves who is asking, not that the request is
reasonable: each bound here turns an exhausting request into a refusal that names the
limit (reason OVER_LIMIT, or RATE_LIMITED for lookups), before any work is done.
"""
from __future__ import annotations

import threading
import time
from .config import LimitsSettings
from .errors import Reason, Rejected


Limits = LimitsSettings  # one definition, defaults and bounds: the config's `limits` section


def over(what: str, count: int, limit: int, field: str = "") -> Rejected:
    return Rejected(Reason.OVER_LIMIT, f"{what}: {count}, limit {limit}", field=field or None,
                    metadata={"limit": str(limit)})


def check_document(doc, limits: Limits, field: str = "document") -> None:
    """The parts of a document whose number or length a sender chooses."""
    if len(doc.attachments) > limits.attachments_per_document:
        raise over("attachments", len(doc.attachments), limits.attachments_per_document, f"{field}.attachments")
    for i, a in enumerate(doc.attachments):
        if len(a.name) > limits.attachment_name_length:
            raise over("attachment name length", len(a.name), limits.attachment_name_length,
                       f"{field}.attachments[{i}].name")


class RateLimiter:
    """A token bucket per key (a peer's code): `rate` per second, up to `burst` at once."""

    def __init__(self, rate: float, burst: int, now=time.monotonic, max_keys: int = 10_000) -> None:
        self.rate, self.burst, self._now, self._max_keys = rate, burst, now, max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, key: str) -> bool:
        now = self._now()
        with self._lock:
            tokens, when = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - when) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return False
            if len(self._buckets) >= self._max_keys and key not in self._buckets:
                self._buckets.clear()
            self._buckets[key] = (tokens - 1, now)
            return True

    def check(self, key: str, what: str) -> None:
        if not self.take(key):
            raise Rejected(Reason.RATE_LIMITED, f"{what}: more than {self.rate:g} per second from {key}",
                           metadata={"limit": f"{self.rate:g}/s"})
