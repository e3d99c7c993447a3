"""Registry state on one node, with a clock the test moves: liveness and what children may claim."""
from __future__ import annotations

import pytest

from node.errors import Reason, Rejected
from node.pb import registry_pb2 as rpb
from node.registry import records
from node.registry.directory import Directory
from node.store.database import Database

D, C1, C2 = "000.00.35.H53", "000.23.35.H53", "000.24.35.H53"


@pytest.fixture
def directory(tmp_path, pki, clock):
    db = Database(tmp_path / "d.sqlite3")
    d = Directory(db, pki.signer(D), pki.trust(clock), clock, name="district", configured_parents={},
                  parent=None, parent_address=None, channel=lambda code, addr: None,
                  heartbeat_s=10, stale_after_s=30, cache_ttl_s=300)
    yield d
    db.close()


def register(directory, pki, clock, code):
    directory.register(records.make(pki.signer(code), name=f"xã {code}", level=3, parent=D,
                                    endpoint="127.0.0.1:9", now_ms=clock.now_ms()), peer=code)


def test_a_child_that_stops_beating_is_shown_unreachable_not_dropped(directory, pki, clock):
    register(directory, pki, clock, C1)
    register(directory, pki, clock, C2)
    clock.advance(25)
    directory.heartbeat(C2, C2, {})          # C2 keeps beating, C1 has gone quiet
    clock.advance(10)                        # C1 last seen 35 s ago (> stale_after 30 s); C2 10 s ago
    listed = {rpb.AgencyRecord.FromString(e.record.record).code: e for e in directory.children(D, recursive=False)}
    assert set(listed) == {C1, C2}
    assert (listed[C1].reachable, listed[C2].reachable) == (False, True)
    assert directory.lookup(C1).reachable is False
    directory.heartbeat(C1, C1, {})          # it comes back
    assert directory.lookup(C1).reachable is True


def test_heartbeat_from_an_unregistered_child_asks_it_to_register(directory, pki, clock):
    with pytest.raises(Rejected) as e:
        directory.heartbeat(C1, C1, {})
    assert e.value.reason is Reason.UNKNOWN_RECIPIENT


def test_heartbeat_for_someone_else_is_refused(directory, pki, clock):
    register(directory, pki, clock, C1)
    with pytest.raises(Rejected) as e:
        directory.heartbeat(C1, C2, {})
    assert e.value.reason is Reason.SENDER_MISMATCH


def test_a_child_may_only_place_odd_codes_in_its_own_subtree(directory, pki, clock):
    register(directory, pki, clock, C1)
    directory.heartbeat(C1, C1, {"vxp.saas.03": C1, "evil.code": C2})  # C2 is not under C1
    assert directory.hierarchy.parent("vxp.saas.03") == C1
    with pytest.raises(Exception):
        directory.hierarchy.parent("evil.code")


def test_lookup_answers_are_cached_for_the_ttl_then_asked_again(directory, pki, clock):
    far = "000.11.38.H53"  # elsewhere in the tree: resolved by asking a neighbour
    answer = rpb.LookupResponse(entry=rpb.DirectoryEntry(
        record=records.make(pki.signer(far), name="xã xa", level=3, parent="000.00.38.H53",
                            endpoint="127.0.0.1:9", now_ms=clock.now_ms()), reachable=True))
    asked = []
    directory._ask = lambda code, from_below, call: asked.append(code) or answer
    for _ in range(3):
        assert rpb.AgencyRecord.FromString(directory.lookup(far).record.record).code == far
    assert asked == [far]
    clock.advance(301)  # cache_ttl is 300 s
    directory.lookup(far)
    assert asked == [far, far]


def test_a_forged_lookup_answer_is_not_believed(directory, pki, clock):
    far = "000.11.38.H53"
    forged = rpb.LookupResponse(entry=rpb.DirectoryEntry(
        record=records.make(pki.signer("000.12.38.H53"), name="giả", level=3, parent="000.00.38.H53",
                            endpoint="127.0.0.1:9", now_ms=clock.now_ms())))
    directory._ask = lambda code, from_below, call: forged
    with pytest.raises(Rejected):
        directory.lookup(far)
