"""Every size a peer or a client controls, bounded; the values come from the config's `limits`.

A valid certificate or API token proves who is asking, not that the request is
reasonable: each bound here turns an exhausting request into a refusal that names the
limit (reason OVER_LIMIT; RATE_LIMITED for a rate; SIGNATURE_BUDGET for what a peer may make us
verify; PEER_BUSY and the like for calls in flight), before any work is done.
"""
from __future__ import annotations

import collections
import contextlib
import threading
import time
from typing import Callable, Iterator

from .config import LimitsSettings
from .errors import Reason, Rejected


Limits = LimitsSettings  # one definition, defaults and bounds: the config's `limits` section


def over(what: str, count: int, limit: int, field: str = "") -> Rejected:
    """OVER_LIMIT with the limit and the count as metadata (as `errors.too_large` gives a size), so a
    client splits its request by the numbers, not by reading the text."""
    return Rejected(Reason.OVER_LIMIT, f"{what}: {count}, limit {limit}", field=field or None,
                    metadata={"limit": str(limit), "count": str(count)})


def check_document(doc, limits: Limits, field: str = "document") -> None:
    """The parts of a document whose number or length a sender chooses."""
    if len(doc.attachments) > limits.attachments_per_document:
        raise over("attachments", len(doc.attachments), limits.attachments_per_document, f"{field}.attachments")
    for i, a in enumerate(doc.attachments):
        if len(a.name) > limits.attachment_name_length:
            raise over("attachment name length", len(a.name), limits.attachment_name_length,
                       f"{field}.attachments[{i}].name")


class RateLimiter:
    """A token bucket per key (a peer's code): `rate` per second, up to `burst` at once.

    At most `max_keys` buckets are kept: a new key past that evicts the one used least recently (the one
    most likely to have filled up again), never every bucket at once, so whoever fills the map with keys of
    their own cannot empty it and hand the callers it holds back full buckets."""

    def __init__(self, rate: float, burst: int, now=time.monotonic, max_keys: int = 10_000) -> None:
        self.rate, self.burst, self._now, self._max_keys = rate, burst, now, max_keys
        # key -> (tokens, when), the least recently used first
        self._buckets: collections.OrderedDict[str, tuple[float, float]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, n: int = 1) -> bool:
        """Take `n` tokens from `key`'s bucket, all or none."""
        now = self._now()
        with self._lock:
            held = self._buckets.pop(key, None)
            tokens, when = held if held is not None else (float(self.burst), now)
            tokens = min(float(self.burst), tokens + max(0.0, now - when) * self.rate)
            taken = tokens >= n
            while len(self._buckets) >= self._max_keys:
                self._buckets.popitem(last=False)
            self._buckets[key] = (tokens - n if taken else tokens, now)  # last: the most recently used
            return taken

    def use(self, rate: float, burst: int) -> None:
        """New bounds (a reload): each bucket keeps its tokens, capped at the new burst on its next take."""
        with self._lock:
            self.rate, self.burst = rate, burst

    def check(self, key: str, what: str) -> None:
        if not self.take(key):
            raise Rejected(Reason.RATE_LIMITED, f"{what}: more than {self.rate:g} per second from {key}",
                           metadata={"limit": f"{self.rate:g}/s"})


class SignatureBudget:
    """What one peer may make this node verify: a token bucket of signatures per peer (`limits.signatures_per_second`,
    `signature_burst`), charged with a call's whole count before any is checked, so that no peer buys seconds of
    our CPU with one call or a stream of them. `now` reads the node's clock (seconds)."""

    def __init__(self, limits: LimitsSettings, now=time.monotonic) -> None:
        self.bucket = RateLimiter(limits.signatures_per_second, limits.signature_burst, now)

    def use_limits(self, limits: LimitsSettings) -> None:
        """`limits.signatures_per_second` and `signature_burst` from a reload, from the next charge on."""
        self.bucket.use(limits.signatures_per_second, limits.signature_burst)

    def charge(self, peer: str | None, count: int, what: str) -> None:
        if peer is None or count <= 0:  # plain-text test mode has no peer to charge
            return
        if not self.bucket.take(peer, count):
            raise Rejected(Reason.SIGNATURE_BUDGET, f"{what}: {count} signatures to check, over what {peer} may "
                           f"have checked now (limits.signatures_per_second {self.bucket.rate:g}, "
                           f"signature_burst {self.bucket.burst})",
                           metadata={"limit": f"{self.bucket.rate:g}/s"})


ALL = "*"  # InFlight's key for every key's calls together


class Places:
    """One key's places for long-held streams in a shared InFlight: at most `own` of them, within `total` for
    every key together (a node's own: one key, own == total)."""

    def __init__(self, counter: "InFlight", key: str, own: int, total: int) -> None:
        self.counter, self.key, self.own, self.total = counter, key, own, total

    def take(self) -> str | None:
        """A place (None; `release` gives it back), or the bound that refused: "own" or "total"."""
        return self.counter.enter_within(self.key, self.own, self.total)

    def release(self) -> None:
        self.counter.leave_within(self.key)


class InFlight:
    """How many calls each key (a peer, a child, or "*" for all) has in progress, each bounded: a call over
    its key's bound is refused at once, so a slow or hostile party holds at most that many of our workers."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._count: dict[str, int] = {}
        self._lock = threading.Lock()

    def enter(self, key: str, limit: int | None = None) -> bool:
        """`limit`: this call's bound instead of the usual one (a host of one agency shares with nobody)."""
        with self._lock:
            n = self._count.get(key, 0)
            if n >= (self.limit if limit is None else limit):
                return False
            self._count[key] = n + 1
            return True

    def leave(self, key: str) -> None:
        with self._lock:
            n = self._count.get(key, 0) - 1
            if n > 0:
                self._count[key] = n
            else:
                self._count.pop(key, None)  # idle keys take no room: the map holds only calls in progress

    def count(self, key: str) -> int:
        with self._lock:
            return self._count.get(key, 0)

    def enter_within(self, key: str, own: int, total: int) -> str | None:
        """A place for `key` (at most `own` of its calls) that is also one of every key's (at most `total`,
        counted under ALL), both taken or neither; None, or the bound that refused ("own" or "total").
        `leave_within` gives both back."""
        with self._lock:
            if self._count.get(key, 0) >= own:
                return "own"
            if self._count.get(ALL, 0) >= total:
                return "total"
            self._count[key] = self._count.get(key, 0) + 1
            self._count[ALL] = self._count.get(ALL, 0) + 1
            return None

    def leave_within(self, key: str) -> None:
        self.leave(ALL)
        self.leave(key)

    @contextlib.contextmanager
    def holding(self, key: str, refusal: Callable[[], Rejected]) -> Iterator[None]:
        if not self.enter(key):
            raise refusal()
        try:
            yield
        finally:
            self.leave(key)
