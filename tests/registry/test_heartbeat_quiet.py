"""An idle child's heartbeat costs its parent little: nothing written when nothing changed, no counters
re-signed and re-checked when the child's mailbox did not change, no full read of the registry table per
registration; while staleness, claims and refusals work as before (a clock the test moves)."""
from __future__ import annotations

import pytest

from node.errors import Reason, Rejected
from node.pb import registry_pb2 as rpb
from node.pb import stats_pb2 as spb
from node.registry import directory as directory_module
from node.registry import records
from node.registry.directory import STATS_RESEND_MS, Directory
from node.store import registry as registry_store
from node.store import stats as stats_store
from node.store.database import Database
from node.transport.interface import HEARTBEAT, REGISTER, PeerTransport

D, C1, C2 = "000.00.35.H53", "000.23.35.H53", "000.24.35.H53"
P = "000.00.00.H53"


def district(db: Database, pki, clock, **kw) -> Directory:
    return Directory(db, pki.signer(D), pki.trust(clock), clock, name="district", configured_parents={},
                     parent=kw.get("parent"), parent_address=kw.get("parent_address"),
                     transport=kw.get("transport"), heartbeat_s=10, stale_after_s=30, cache_ttl_s=300)


@pytest.fixture
def db(tmp_path):
    d = Database(tmp_path / "d.sqlite3")
    yield d
    d.close()


def register(directory, pki, clock, code):
    directory.register(records.make(pki.signer(code), name=f"xã {code}", level=3, parent=D,
                                    endpoint="127.0.0.1:9", now_ms=clock.now_ms()), peer=code)


def reachable(directory, code) -> bool:
    return directory.lookup(code).reachable


def test_a_heartbeat_that_changes_nothing_writes_nothing(db, pki, clock):
    d = district(db, pki, clock)
    register(d, pki, clock, C1)
    d.heartbeat(C1, C1, {})  # the first since registration: its claims (none) are stored once
    commits = db.commits
    clock.advance(10)        # 10 s after the last write: under stale_after / 2 (15 s)
    d.heartbeat(C1, C1, {})
    assert db.commits == commits, "an idle heartbeat wrote to the mailbox"
    assert reachable(d, C1) and d.lookup(C1).last_seen_ms == clock.now_ms()  # heard, in memory
    clock.advance(10)        # 20 s since the last write: this one is written
    d.heartbeat(C1, C1, {})
    assert db.commits == commits + 1
    assert registry_store.get(db, C1).last_seen_ms == clock.now_ms()


def test_a_changed_claim_is_written_at_once(db, pki, clock):
    d = district(db, pki, clock)
    register(d, pki, clock, C1)
    d.heartbeat(C1, C1, {})
    clock.advance(1)
    d.heartbeat(C1, C1, {"vxp.saas.03": C1})
    assert registry_store.odd_codes(db) == {"vxp.saas.03": C1}
    assert d.hierarchy.parent("vxp.saas.03") == C1
    clock.advance(1)
    d.heartbeat(C1, C1, {})  # withdrawn: gone from the table and from routing at once
    assert registry_store.odd_codes(db) == {}
    with pytest.raises(Exception):
        d.hierarchy.parent("vxp.saas.03")


def test_staleness_is_still_seen_after_the_parent_restarts(tmp_path, pki, clock):
    """The table lags memory by at most stale_after / 2: after a restart a child that keeps beating is not
    taken for stale, and one that stopped is."""
    db = Database(tmp_path / "d.sqlite3")
    d = district(db, pki, clock)
    register(d, pki, clock, C1)
    register(d, pki, clock, C2)
    for _ in range(7):  # 70 s of heartbeats every 10 s
        clock.advance(10)
        d.heartbeat(C1, C1, {})
        d.heartbeat(C2, C2, {})
    db.close()
    clock.advance(5)
    db = Database(tmp_path / "d.sqlite3")  # the parent restarted: nothing in memory
    d = district(db, pki, clock)
    try:
        assert reachable(d, C1) and reachable(d, C2)
        for _ in range(4):  # C1 goes on beating, C2 has stopped
            clock.advance(10 if _ else 5)
            d.heartbeat(C1, C1, {})
        clock.advance(1)  # C2's last beat 41 s ago (> stale_after)
        assert reachable(d, C1) and not reachable(d, C2)
        status = {c.code: clock.now_ms() - d.last_seen(c) <= d.stale_after_ms for c in registry_store.children(db)}
        assert status == {C1: True, C2: False}
    finally:
        db.close()


def test_a_heartbeat_still_refuses_what_it_refused(db, pki, clock):
    d = district(db, pki, clock)
    with pytest.raises(Rejected) as e:
        d.heartbeat(C1, C1, {})
    assert e.value.reason is Reason.UNKNOWN_RECIPIENT
    register(d, pki, clock, C1)
    d.heartbeat(C1, C1, {})
    clock.advance(1)  # an idle beat is skipped only for the child itself, with the same claims
    with pytest.raises(Rejected) as e:
        d.heartbeat(C1, C2, {})
    assert e.value.reason is Reason.SENDER_MISMATCH
    with pytest.raises(Rejected) as e:
        d.heartbeat(C1, C1, {C2: C1})
    assert e.value.reason is Reason.WRONG_PARENT


def test_a_registration_reads_no_other_childs_record(db, pki, clock, monkeypatch):
    """Start-up of a host of a thousand was quadratic: each registration re-read every child's record."""
    d = district(db, pki, clock)
    register(d, pki, clock, C1)
    calls = []
    real = registry_store.children
    monkeypatch.setattr(directory_module.store, "children", lambda db_: calls.append(1) or real(db_))
    register(d, pki, clock, C2)
    assert calls == []
    assert d.is_child(C2) and d.child_endpoint(C2) == "127.0.0.1:9"
    d.pins.check(C2, pki.signer(C2).cert_der, "a hand-over")  # pinned to the certificate it registered
    with pytest.raises(Rejected) as e:
        d.pins.check(C2, pki.signer(C1).cert_der, "a hand-over")
    assert e.value.reason is Reason.CERT_NOT_REGISTERED


class Parent(PeerTransport):
    """A parent that takes everything and keeps each heartbeat's request."""

    def __init__(self) -> None:
        self.beats: list[rpb.HeartbeatRequest] = []

    def call(self, peer, method, request, timeout):
        if method is REGISTER:
            return rpb.RegisterResponse(heartbeat_ms=10_000)
        assert method is HEARTBEAT
        self.beats.append(request)
        return rpb.HeartbeatResponse()

    def call_each(self, peers, method, request, timeout):
        raise AssertionError("not called")


def beat(d, clock) -> list:
    clock.advance(10)
    d.keepalive()
    return list(d.transport.beats[-1].signed_stats)


def test_an_idle_childs_counters_go_up_only_when_they_may_have_changed(db, pki, clock):
    parent = Parent()
    d = district(db, pki, clock, parent=P, parent_address="127.0.0.1:9", transport=parent)
    d.endpoint = "127.0.0.1:8"
    d.keepalive()                      # registers
    assert d.registered
    first = beat(d, clock)
    assert [spb.AgencyStats.FromString(s.stats).code for s in first] == [D]
    assert beat(d, clock) == []        # nothing committed since: the parent keeps what it has
    assert beat(d, clock) == []
    register(d, pki, clock, C1)        # a commit: the counters (their list of children) may have changed
    again = beat(d, clock)
    assert list(spb.AgencyStats.FromString(again[0].stats).children) == [C1]
    assert beat(d, clock) == []
    clock.advance(STATS_RESEND_MS / 1000)  # and at least every STATS_RESEND_MS, for a parent that lost them
    assert beat(d, clock) != []
    d.registered = False               # registered again (the parent forgot us): sent with the next beat
    d.keepalive()
    assert beat(d, clock) != []


def test_a_parent_keeps_the_counters_a_child_sent_when_the_next_heartbeat_has_none(db, pki, clock):
    d = district(db, pki, clock)
    register(d, pki, clock, C1)
    from node import stats
    row = stats.sign(pki.signer(C1), spb.AgencyStats(code=C1, name="xã", as_of_ms=clock.now_ms(), docs_sent=3))
    d.heartbeat(C1, C1, {}, [row])
    clock.advance(10)
    d.heartbeat(C1, C1, {}, [])
    assert [(s.code, s.docs_sent) for s in stats_store.subtree(db)] == [(C1, 3)]


def test_the_first_heartbeat_may_come_early_never_late(db, pki, clock):
    parent = Parent()
    d = district(db, pki, clock, parent=P, parent_address="127.0.0.1:9", transport=parent)
    d.endpoint = "127.0.0.1:8"
    d.keepalive()
    d.beat_early(4_000)
    clock.advance(6)
    d.keepalive()
    assert len(parent.beats) == 1


def test_an_idle_childs_heartbeat_reads_nothing_from_its_mailbox(db, pki, clock, monkeypatch):
    """What it reports up (its odd codes below, its counters) is read once per commit, not once per beat."""
    parent = Parent()
    d = district(db, pki, clock, parent=P, parent_address="127.0.0.1:9", transport=parent)
    d.endpoint = "127.0.0.1:8"
    d.keepalive()
    beat(d, clock)
    reads = []
    real = Database.query
    monkeypatch.setattr(Database, "query", lambda self, *a, **k: reads.append(a[0]) or real(self, *a, **k))
    beat(d, clock)
    assert reads == [] and len(parent.beats) == 2
    register(d, pki, clock, C1)  # a commit: read again, once
    reads.clear()
    beat(d, clock)
    assert reads != []
