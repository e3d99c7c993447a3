"""Where an envelope goes next, derived from agency codes and the tree.

Static peers from the config are direct routes. Everything else follows the tree: up
to the lowest common ancestor, then down through registered children. A code this
node cannot place (outside the QCVN form and unknown here) goes up, where an ancestor
that knows it can take it down.

An arriving envelope is judged three ways (may it come here at all, from this peer, and where does it
go next); a `Chains` made once per envelope gives all three one snapshot of the tree and looks each
code's chain up once, instead of each working the path out again.
"""
from __future__ import annotations

from typing import Callable

from ..codes import CodeError, Hierarchy, route_between


class Chains:
    """Ancestor chains from one snapshot of the tree, each code's looked up once (None: it cannot be placed)."""

    def __init__(self, hierarchy: Hierarchy) -> None:
        self.hierarchy = hierarchy
        self._known: dict[str, list[str] | Exception] = {}

    def error(self, code: str) -> Exception | None:
        if code not in self._known:
            try:
                self._known[code] = self.hierarchy.ancestors(code)
            except (CodeError, ValueError) as e:
                self._known[code] = e
        found = self._known[code]
        return found if isinstance(found, Exception) else None

    def __call__(self, code: str) -> list[str] | None:
        return None if self.error(code) else self._known[code]  # type: ignore[return-value]

    def is_under(self, code: str, ancestor: str) -> bool:
        """Hierarchy.is_under, False where either code cannot be placed."""
        if self(ancestor) is None:
            return False
        up = self(code)
        return up is not None and ancestor in up[1:]


class Router:
    def __init__(self, code: str, peers: dict[str, str], hierarchy: Hierarchy | None = None, *,
                 parent: str | None = None, child_endpoint: Callable[[str], str | None] | None = None,
                 hierarchy_of: Callable[[], Hierarchy] | None = None,
                 successor_of: Callable[[str], str | None] = lambda code: None,
                 moved_away: Callable[[str], bool] = lambda code: False) -> None:
        self.code = code
        # whether a unit enclosing the code by the code rule is retired into another node: the code may have
        # re-parented there (node.registry.directory), so its mail may come down from our parent
        self.moved_away = moved_away
        # who answers for a retired code now (node.registry.successions: the lists this node holds), else None
        self.successor_of = successor_of
        self.peers = dict(peers)
        self._hierarchy = hierarchy or Hierarchy()
        self._hierarchy_of = hierarchy_of
        self.parent = parent
        self.child_endpoint = child_endpoint or (lambda code: None)
        try:  # the units enclosing us by the code rule: a retired one was our parent before a restructuring
            self._enclosing = frozenset(Hierarchy().ancestors(code)[1:])
        except (CodeError, ValueError):
            self._enclosing = frozenset()

    def former_parent(self, peer: str) -> bool:
        """A retired unit enclosing us by the code rule (an abolished district, a merged province): we have
        registered elsewhere since, but its node keeps our old registration and may still hand us what its
        part of the old tree sends us (its notices and statuses, mail relayed through it) until it is
        drained and revoked. Only mail for us is taken from it (passes_from), never mail to relay."""
        return peer in self._enclosing and self.successor_of(peer) is not None

    @property
    def hierarchy(self) -> Hierarchy:
        return self._hierarchy_of() if self._hierarchy_of else self._hierarchy

    def chains(self) -> Chains:
        """One envelope's view of the tree, for serves, passes_from and route to share."""
        return Chains(self.hierarchy)

    def next_hop(self, recipient: str, chains: Chains | None = None) -> str | None:
        """None: it is for us. Raises LookupError when no route exists."""
        if recipient == self.code:
            return None
        if recipient in self.peers or self.child_endpoint(recipient):
            return recipient
        c = chains or self.chains()
        here, there = c(self.code), c(recipient)
        if here is None or there is None:
            if self.parent:
                return self.parent
            raise LookupError(f"no route to {recipient}: {c.error(self.code) or c.error(recipient)}") from None
        return route_between(here, there)[1]

    def serves(self, recipient: str, sender: str, chains: Chains | None = None) -> bool:
        """Whether an envelope for `recipient` may be handed to this node at all."""
        if recipient == self.code or recipient in self.peers or self.child_endpoint(recipient):
            return True
        c = chains or self.chains()
        # down into our subtree, or up out of it for someone below
        return c.is_under(recipient, self.code) or c.is_under(sender, self.code)

    def is_neighbour(self, peer: str) -> bool:
        """Our parent, a registered child or a configured peer: the only nodes that may hand us envelopes (and a
        former parent, with mail for us only: former_parent)."""
        return (peer in self.peers or peer == self.parent or self.child_endpoint(peer) is not None
                or self.former_parent(peer))

    def passes_from(self, peer: str, sender: str, recipient: str, chains: Chains | None = None) -> bool:
        """Whether the route by the tree goes from `peer` to us (a configured peer may also hand over
        its own mail, which it sends us directly). Deny by default: a valid certificate proves who a
        node is, not that it may use us as a way round the tree."""
        if sender == peer and peer in self.peers:
            return True
        if recipient == self.code and self.former_parent(peer):
            return True
        c = chains or self.chains()
        up, down = c(sender), c(recipient)
        if up is None or down is None:
            # mail for us from our parent comes down; a recipient we cannot place goes up: only
            # from a child, for a sender in its subtree
            if recipient == self.code and peer == self.parent:
                return True
            return self.child_endpoint(peer) is not None and (sender == peer or c.is_under(sender, peer))
        route = route_between(up, down)
        if self.code in route[1:] and route[route.index(self.code) - 1] == peer:
            return True
        # a sender re-parented under the successor of its retired district or province (docs/restructuring.md)
        # reaches the old subtree from above: its statuses to agencies still there, its mail to retired codes
        return peer == self.parent and self.code in route[1:] and self.moved_away(sender)

    def retired(self, recipient: str, sender: str) -> str | None:
        """The successor a document for `recipient` must go to instead, when a succession this node holds retires
        it and the document is not ours (ours are re-addressed before they leave: node.exchange.follow). A
        relay cannot re-address it (the sender signed the recipient, and sealed it to the retired agency's
        key): it refuses it for good, naming the successor, so the sender sends it again to the successor."""
        return None if sender == self.code else self.successor_of(recipient)

    def awaited_child(self, recipient: str) -> str | None:
        """The child of ours the code rule routes `recipient` through, when that child has no endpoint (yet);
        else None. A node cannot tell a child not set up (or not re-registered after a restore) from a code
        nobody will ever register: it is "not yet" (parked within a quota, node.exchange.intake), never
        "no such agency" at once."""
        try:
            hop = self.hierarchy.next_hop(self.code, recipient)
            return hop if self.hierarchy.parent(hop) == self.code and self.address(hop) is None else None
        except (CodeError, ValueError):
            return None

    def address(self, code: str) -> str | None:
        if code in self.peers:
            return self.peers[code]
        return self.child_endpoint(code)

    def route(self, recipient: str, chains: Chains | None = None) -> tuple[str, str] | None:
        """(next hop, its address), None for ourselves; LookupError if the hop is unknown here."""
        hop = self.next_hop(recipient, chains)
        if hop is None:
            return None
        address = self.address(hop)
        if address is None:
            raise LookupError(f"no route to {recipient}: next hop {hop} is neither registered here nor a configured peer")
        return hop, address
