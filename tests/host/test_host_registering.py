"""A host's agencies register with one parent a few at a time (Shared.registering): a thousand starting at once
each tried every second, and most were refused REGISTRY_BUSY by the parent while the scheduler fell behind."""
from __future__ import annotations

from types import SimpleNamespace

from node.host.shared import REGISTERING, Shared
from node.runtime import Node

P = "000.00.01.H53"


class Keepalive:
    def __init__(self, registered: bool = False) -> None:
        self.parent, self.registered, self.calls = P, registered, 0

    def keepalive(self) -> None:
        self.calls += 1


def agency(shared: Shared, registered: bool = False) -> SimpleNamespace:
    a = SimpleNamespace(shared=shared, directory=Keepalive(registered), _parent_broken=False)
    a._parent_problem = lambda: None
    return a


def shared() -> Shared:
    return Shared(scheduler=None, transport_for=None, endpoint=None, ports=None, runtime=None, detach=None)


def test_an_agency_finding_every_place_taken_tries_on_its_next_tick():
    s = shared()
    for _ in range(REGISTERING):  # as many registrations with P in progress as a host makes at once
        assert s.registering.enter(P)
    a = agency(s)
    Node._keepalive(a)
    assert a.directory.calls == 0
    s.registering.leave(P)  # one ends: the next tick registers, and gives its place back
    Node._keepalive(a)
    assert a.directory.calls == 1 and s.registering.count(P) == REGISTERING - 1


def test_places_are_per_parent_and_heartbeats_take_none():
    s = shared()
    for _ in range(REGISTERING):
        assert s.registering.enter("000.00.02.H53")  # another parent, not answering: its children wait
    a = agency(s)
    Node._keepalive(a)
    assert a.directory.calls == 1  # not held up by another parent's children
    for _ in range(REGISTERING):
        assert s.registering.enter(P)
    beating = agency(s, registered=True)
    Node._keepalive(beating)
    assert beating.directory.calls == 1  # a registered agency's heartbeat needs no place
