"""Routing an arriving envelope: the three questions (may it come here, from this peer, where next) read one
snapshot of the tree, each code's chain once, and answer as the tree itself does (codes.Hierarchy)."""
from __future__ import annotations

import itertools

import pytest

from node import envelope
from node.codes import CodeError, Hierarchy
from node.exchange.intake import Intake
from node.exchange.routing import Router
from node.pb import envelope_pb2 as pb
from node.store import outbox
from node.store.database import Database

P, D, C1, C2 = "000.00.00.H53", "000.00.35.H53", "000.21.35.H53", "000.22.35.H53"  # province, district, communes
OTHER, ODD, LOST = "000.00.12.G22", "vxp.saas.03", "no.such.thing"  # another province; registered odd code; unplaceable
CODES = (P, D, C1, C2, OTHER, ODD, LOST, "VN")
TREE = Hierarchy({ODD: D})


class Wakes:
    def wake(self, hop: str) -> None:
        pass


class Counted:
    """hierarchy_of that counts its calls: how often the router read the tree."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> Hierarchy:
        self.calls += 1
        return TREE


def router(hierarchy_of=lambda: TREE, peers=None) -> Router:
    return Router(D, {P: "127.0.0.1:9"} if peers is None else peers, parent=P,
                  child_endpoint={C1: "127.0.0.1:1", C2: "127.0.0.1:2"}.get, hierarchy_of=hierarchy_of)


def tree_says(r: Router, peer: str, sender: str, recipient: str):
    """The answers worked out straight from the tree, each question on its own (the router before Chains)."""
    h = TREE
    direct = recipient == D or recipient in r.peers or r.child_endpoint(recipient)

    def under(code, ancestor):
        try:
            return h.is_under(code, ancestor)
        except (CodeError, ValueError):
            return False
    serves = bool(direct or under(recipient, D) or under(sender, D))
    if sender == peer and peer in r.peers:
        passes = True
    else:
        try:
            route = h.route(sender, recipient)
            passes = D in route[1:] and route[route.index(D) - 1] == peer
        except (CodeError, ValueError):
            passes = (recipient == D and peer == r.parent) or (
                r.child_endpoint(peer) is not None and (sender == peer or under(sender, peer)))
    if recipient == D:
        hop = None
    elif recipient in r.peers or r.child_endpoint(recipient):
        hop = recipient
    else:
        try:
            hop = h.next_hop(D, recipient)
        except (CodeError, ValueError):
            hop = r.parent
    return serves, passes, hop


@pytest.mark.parametrize("peers", [None, {P: "127.0.0.1:9", OTHER: "127.0.0.1:8"}])
def test_the_router_answers_as_the_tree_does(peers):
    r = router(peers=peers)
    for peer, sender, recipient in itertools.product((P, C1, C2, OTHER), CODES, CODES):
        tree = r.chains()
        got = (r.serves(recipient, sender, tree), r.passes_from(peer, sender, recipient, tree),
               r.next_hop(recipient, tree))
        assert got == tree_says(r, peer, sender, recipient), (peer, sender, recipient)
        assert got == (r.serves(recipient, sender), r.passes_from(peer, sender, recipient), r.next_hop(recipient))


def test_no_route_names_the_code_that_cannot_be_placed():
    r = Router(D, {}, hierarchy_of=lambda: TREE)
    with pytest.raises(LookupError, match=LOST):
        r.next_hop(LOST)


def test_an_envelope_relayed_up_reads_the_tree_once(tmp_path, pki, clock):
    """C1's mail for another province, through D up to P: one read of the tree (it was three)."""
    counted = Counted()
    db = Database(tmp_path / "d.sqlite3")
    try:
        intake = Intake(db, pki.signer(D), pki.trust(clock), router(counted), clock, 1 << 20, queues=Wakes())
        raws = [envelope.seal(pki.signer(C1), OTHER, pb.Payload(document=pb.Document(subject="thư")), clock=clock,
                              lifetime_s=3600)[1] for _ in range(3)]
        assert all(isinstance(o, pb.Receipt) for o in intake.receive(raws, C1))
        assert counted.calls == 3  # one per envelope
        assert len(outbox.next_batch(db, P, 10, 1 << 20)) == 3
    finally:
        db.close()


def test_own_mail_asks_the_tree_whether_its_hop_is_awaited_only_when_the_hop_has_no_address(pki, clock):
    """An envelope of ours (every automatic 01) to a hop we can reach (a peer, our parent, a registered child)
    is not parked, and the tree is not read to say so; mail for a child not registered yet still is parked."""
    from node.exchange.outgoing import EnvelopeMaker
    counted = Counted()
    maker = EnvelopeMaker(pki.signer(D), router(counted), clock, lifetime_s=3600, max_size=1 << 20)
    status = pb.Payload(status=pb.Status(status_code="01"))
    for recipient, hop in ((C1, C1), (OTHER, P), (P, P)):
        assert not maker.seal(status, recipient, hop).awaited
    assert counted.calls == 0
    unregistered = "000.23.35.H53"  # a commune of D's that has not registered
    assert maker.router.next_hop(unregistered) == unregistered
    assert maker.seal(status, unregistered, unregistered).awaited


def test_a_former_parent_hands_over_mail_for_us_only():
    """A commune re-registered under its province after its district was abolished: the district's node (retired)
    may still hand it mail for itself, nothing to relay; an enclosing unit that is not retired, or a retired
    node that never enclosed it, is no neighbour."""
    commune, district, province, other = "000.21.35.H53", "000.00.35.H53", "000.00.00.H53", "000.00.36.H53"
    retired = {district: province, other: province}
    r = Router(commune, {province: "127.0.0.1:9"}, parent=province, successor_of=retired.get)
    assert r.is_neighbour(district) and r.passes_from(district, district, commune)
    assert r.passes_from(district, "000.22.35.H53", commune)  # relayed by it from the old subtree, for us
    assert not r.passes_from(district, district, "000.22.35.H53")  # never through us
    assert not r.is_neighbour(other)  # retired, but never ours
    kept = Router(commune, {province: "127.0.0.1:9"}, parent=province, successor_of=lambda code: None)
    assert not kept.is_neighbour(district)  # not retired: a district we no longer belong to
