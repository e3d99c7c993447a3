"""Who may answer for a retired agency: its successor, on statuses and changes about its documents.

A document we sent to X, X since retired into Z, is answered by Z (its node holds X's history,
docs/restructuring.md); a document X sent us is revoked, updated, replaced or taken back by Z. The
envelope's word proves nothing: Z answers for X only on a succession this node holds or looks up
(signed by the competent authority and checked as every list is, node.registry.successions), with Z
on X's chain of successors (the direct one, or one further on: X -> Y -> Z). The refusals, each its
own reason: X is retired and Z is not on its chain (NOT_A_SUCCESSOR); the list the tree answered
with is bad (its own succession reason: SUCCESSION_NOT_COMPETENT, _BAD_SIGNATURE, _NOT_COVERING,
...); the tree cannot tell now (SUCCESSION_UNCERTAIN, transient: the peer keeps the envelope and
retries). X not retired at all: the caller's refusal (NOT_RECIPIENT, NOT_ORIGINAL_SENDER) stands.

Asked only when a status or change comes from another agency than the document's counterpart, from
intake before the custody transaction (never under the writer): a held list first, then a cached
lookup, then one past the cache (the directory answers those at most once a second per code). While the
tree cannot tell about a code, that answer is kept UNCERTAIN_FOR_MS: a batch of statuses about documents of one
counterpart, the tree unreachable, waits for one lookup, not one each.
"""
from __future__ import annotations

import threading
from typing import Callable

from ..errors import Reason, Rejected

# a lookup refused for one of these: the list the tree answered with is bad, and says so for good
UNCERTAIN_FOR_MS = 5_000   # "cannot be told now" answered again without asking, per code
UNCERTAIN_CODES = 1_000    # codes remembered so at most (the oldest forgotten first)

BAD_LIST = (Reason.SUCCESSION_NOT_COMPETENT, Reason.SUCCESSION_BAD_SIGNATURE, Reason.SUCCESSION_CYCLE,
            Reason.SUCCESSION_TOO_LARGE, Reason.SUCCESSION_NOT_COVERING)


class Successors:
    def __init__(self, held: Callable[[str], list[str]],
                 looked_up: Callable[[str, bool], list[str]] | None = None,
                 now_ms: Callable[[], int] = lambda: 0) -> None:
        self.held = held            # X's successors in order, by the lists this node holds (in effect now)
        self.looked_up = looked_up  # the same through the tree (lookups; `fresh`: past the cache)
        self.now_ms = now_ms        # the node's clock
        self._lock = threading.Lock()
        self._uncertain: dict[str, tuple[int, Rejected]] = {}  # code -> (until, the answer), oldest first

    def chain(self, code: str, fresh_too: bool = False) -> list[str]:
        """`code`'s successors in order (empty: not retired): the held lists, else the tree (one cached lookup;
        `fresh_too`: then one past the cache, as a cached record may be from before the succession). Rejected
        as `_ask` says (a bad list for good; SUCCESSION_UNCERTAIN, kept UNCERTAIN_FOR_MS, while it cannot tell)."""
        chain = self.held(code)
        if not chain and self.looked_up is not None:
            for fresh in ((False, True) if fresh_too else (False,)):
                chain = self._ask(code, fresh)
                if chain:
                    break
        return chain

    def answers_for(self, sender: str, counterpart: str) -> bool:
        """True if `sender` succeeds `counterpart` (on its chain); False if `counterpart` is not retired;
        Rejected otherwise (see the module's docstring)."""
        chain = self.chain(counterpart, fresh_too=True)
        if not chain:
            return False
        if sender not in chain:
            raise Rejected(Reason.NOT_A_SUCCESSOR, f"{counterpart} is retired: {chain[-1]} answers for it, "
                           f"{sender} does not", metadata={"successor": chain[-1]})
        return True

    def _ask(self, code: str, fresh: bool) -> list[str]:
        now = self.now_ms()
        with self._lock:
            kept = self._uncertain.get(code)
        if kept is not None and kept[0] > now:
            raise kept[1]
        try:
            return self.looked_up(code, fresh)  # type: ignore[misc]
        except Rejected as r:
            if r.reason in BAD_LIST:
                raise Rejected(r.reason, f"the succession the tree gave for {code}: {r.public_detail}") from None
            if r.reason is Reason.UNKNOWN_RECIPIENT:
                return []  # nobody by that code, and no succession retiring it
            uncertain = Rejected(Reason.SUCCESSION_UNCERTAIN, f"whether {code} is retired cannot be told now: "
                                 f"{r.public_text}")
            with self._lock:
                self._uncertain.pop(code, None)
                self._uncertain[code] = (now + UNCERTAIN_FOR_MS, uncertain)
                while len(self._uncertain) > UNCERTAIN_CODES:
                    del self._uncertain[next(iter(self._uncertain))]
            raise uncertain from None
