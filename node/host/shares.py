"""Fair shares of a host's worker threads: one busy or hostile agency cannot take them all.

A host has one pool of API workers and one of peer workers for every agency it serves. Without a
share, one agency's document system sending as fast as it can, or its peers holding streams open
(a health Watch holds a peer worker for as long as the caller listens), would leave every other
agency's calls queued behind its own. So on a host of several agencies each agency may have at most
half of a pool's workers busy with its calls (the API: calls by its tokens, or the host admin's on
it; the peer port: calls to it); a call past that is refused at once with AGENCY_BUSY, holding
nothing, and the other half stays free for the others. A host of one agency has nobody to share with:
its calls may take every worker, as on a standalone node.
"""
from __future__ import annotations

from typing import Callable

from ..errors import Reason, Rejected
from ..limits import InFlight


class AgencyShares:
    """The calls in progress per agency (node.limits.InFlight, as the peer gate counts them per peer)."""

    def __init__(self, workers: int, what: str, serving: Callable[[], int] = lambda: 1) -> None:
        """`serving`: how many agencies the host serves now (the host's own count, read at each call)."""
        self.workers, self.what, self.serving = workers, what, serving  # what: "API workers", "peer workers"
        self.share = max(1, workers // 2)
        self._calls = InFlight(self.share)

    def enter(self, code: str, serving: int | None = None) -> Rejected | None:
        """Take a worker of the pool for one call of `code`'s (None), or the refusal; `leave` gives it back.
        `serving`: how many agencies the host serves (default: asked of the host; one: no limit)."""
        limit = self.workers if (self.serving() if serving is None else serving) <= 1 else self.share
        if self._calls.enter(code, limit):
            return None
        return Rejected(Reason.AGENCY_BUSY, f"this agency already holds {self._calls.count(code)} of the host's "
                        f"{self.workers} {self.what}, its share; retry when one of its calls has answered",
                        metadata={"limit": str(limit)})

    def leave(self, code: str) -> None:
        self._calls.leave(code)

    def busy(self, code: str) -> int:
        return self._calls.count(code)
