"""Where an envelope goes next, derived from agency codes and the tree.

Static peers from the config are direct routes; everything else follows the tree
(up to the lowest common ancestor, then down). Address lookup for hops that are not
static peers belongs to the registry, which plugs in through `resolver`.
"""
from __future__ import annotations

from typing import Callable

from ..codes import CodeError, Hierarchy


class Router:
    def __init__(self, code: str, peers: dict[str, str], hierarchy: Hierarchy | None = None,
                 resolver: Callable[[str], str | None] | None = None) -> None:
        self.code = code
        self.peers = dict(peers)
        self.hierarchy = hierarchy or Hierarchy()
        self.resolver = resolver

    def next_hop(self, recipient: str) -> str | None:
        """None: it is for us. Raises LookupError when no route exists."""
        if recipient == self.code:
            return None
        if recipient in self.peers:
            return recipient
        try:
            return self.hierarchy.next_hop(self.code, recipient)
        except (CodeError, ValueError) as e:
            raise LookupError(f"no route to {recipient}: {e}") from None

    def serves(self, recipient: str, sender: str) -> bool:
        """Whether an envelope for `recipient` may be handed to this node at all."""
        if recipient == self.code or recipient in self.peers:
            return True
        try:
            h = self.hierarchy
            # down into our subtree, or up out of it on behalf of someone below us
            return h.is_under(recipient, self.code) or h.is_under(sender, self.code)
        except (CodeError, ValueError):
            return False

    def address(self, code: str) -> str | None:
        if code in self.peers:
            return self.peers[code]
        return self.resolver(code) if self.resolver else None
