"""Registry state on one node, with a clock the test moves: liveness and what children may claim."""
from __future__ import annotations

import datetime as dt

import pytest

from node.codes import CodeError
from node.envelope import Signer
from node.errors import Reason, Rejected
from node.identity import certs
from node.pb import registry_pb2 as rpb
from node.registry import records
from node.registry.directory import Directory
from node.store.database import Database

D, C1, C2 = "000.00.35.H53", "000.23.35.H53", "000.24.35.H53"


@pytest.fixture
def directory(tmp_path, pki, clock):
    db = Database(tmp_path / "d.sqlite3")
    d = Directory(db, pki.signer(D), pki.trust(clock), clock, name="district", configured_parents={},
                  parent=None, parent_address=None, transport=None,
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
    with pytest.raises(Rejected) as e:
        directory.heartbeat(C1, C1, {"vxp.saas.03": C1, "evil.code": C2})  # C2 is not under C1
    assert e.value.reason is Reason.WRONG_PARENT and "evil.code" in e.value.detail
    with pytest.raises(CodeError):  # nothing of a refused heartbeat is kept
        directory.hierarchy.parent("vxp.saas.03")
    directory.heartbeat(C1, C1, {"vxp.saas.03": C1})
    assert directory.hierarchy.parent("vxp.saas.03") == C1


@pytest.mark.parametrize("claim", [
    {"000.11.38.H53": C1},              # a QCVN commune of another province: the code rule places it
    {C2: C1},                           # a sibling
    {D: C1},                            # the parent itself
    {"000.00.38.H53": C1},              # a district elsewhere
])
def test_a_heartbeat_cannot_move_a_qcvn_code(directory, pki, clock, claim):
    """The routing hijack: a claimed QCVN code would have routed that agency's mail to the claimant."""
    register(directory, pki, clock, C1)
    [(code, _)] = claim.items()
    before = directory.hierarchy.ancestors(code)
    with pytest.raises(Rejected) as e:
        directory.heartbeat(C1, C1, claim)
    assert e.value.reason is Reason.WRONG_PARENT
    assert directory.hierarchy.ancestors(code) == before


def test_an_odd_code_held_by_one_child_cannot_be_taken_by_another(directory, pki, clock):
    register(directory, pki, clock, C1)
    register(directory, pki, clock, C2)
    directory.heartbeat(C1, C1, {"vxp.saas.03": C1})
    with pytest.raises(Rejected) as e:
        directory.heartbeat(C2, C2, {"vxp.saas.03": C2})
    assert e.value.reason is Reason.WRONG_PARENT and C1 in e.value.detail
    assert directory.hierarchy.parent("vxp.saas.03") == C1


def test_a_withdrawn_claim_stops_routing_at_once(directory, pki, clock):
    register(directory, pki, clock, C1)
    directory.heartbeat(C1, C1, {"vxp.saas.03": C1})
    assert directory.hierarchy.next_hop(D, "vxp.saas.03") == C1
    directory.heartbeat(C1, C1, {})
    with pytest.raises(CodeError):
        directory.hierarchy.next_hop(D, "vxp.saas.03")


def test_a_claim_against_this_nodes_configuration_is_refused(tmp_path, pki, clock):
    db = Database(tmp_path / "c.sqlite3")
    d = Directory(db, pki.signer(D), pki.trust(clock), clock, name="district",
                  configured_parents={"vxp.saas.03": C2}, parent=None, parent_address=None,
                  transport=None, heartbeat_s=10, stale_after_s=30, cache_ttl_s=300)
    try:
        register(d, pki, clock, C1)
        with pytest.raises(Rejected) as e:
            d.heartbeat(C1, C1, {"vxp.saas.03": C1})
        assert e.value.reason is Reason.WRONG_PARENT and "configured" in e.value.detail
        assert d.hierarchy.parent("vxp.saas.03") == C2
    finally:
        db.close()


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


def test_fresh_lookups_skip_the_cache_at_most_once_a_second_per_code(directory, pki, clock):
    """LookupRequest.fresh (a peer told the record changed) costs one question up the tree per code and
    second, however many callers ask fresh: otherwise any child could make its node ask its parent on every
    call, past the cache that absorbs them."""
    far = "000.11.38.H53"
    answer = rpb.LookupResponse(entry=rpb.DirectoryEntry(
        record=records.make(pki.signer(far), name="xã xa", level=3, parent="000.00.38.H53",
                            endpoint="127.0.0.1:9", now_ms=clock.now_ms()), reachable=True))
    asked = []
    directory._ask = lambda code, from_below, call: asked.append(code) or answer
    directory.lookup(far)
    for _ in range(20):
        directory.lookup(far, fresh=True)
    assert asked == [far]
    clock.advance(1.001)
    directory.lookup(far, fresh=True)  # older than a second: asked again
    assert asked == [far, far]


def test_a_forged_lookup_answer_is_not_believed(directory, pki, clock):
    far = "000.11.38.H53"
    forged = rpb.LookupResponse(entry=rpb.DirectoryEntry(
        record=records.make(pki.signer("000.12.38.H53"), name="giả", level=3, parent="000.00.38.H53",
                            endpoint="127.0.0.1:9", now_ms=clock.now_ms())))
    directory._ask = lambda code, from_below, call: forged
    with pytest.raises(Rejected):
        directory.lookup(far)


@pytest.fixture
def district(tmp_path, pki, clock):
    """D with a parent it can ask (the province); `asked` records every question sent out."""
    db = Database(tmp_path / "p.sqlite3")
    d = Directory(db, pki.signer(D), pki.trust(clock), clock, name="district", configured_parents={},
                  parent="000.00.00.H53", parent_address="127.0.0.1:9", transport=None,
                  heartbeat_s=10, stale_after_s=30, cache_ttl_s=300)
    d.asked = []
    yield d
    db.close()


def test_a_query_from_above_cannot_poison_the_answers_for_senders_below(district, pki, clock):
    """An outsider asks D (from above) for a code D may not pass up: D says NOT_FOUND, but a sender
    below D asking a second later is still answered by D's parent, not by that cached refusal."""
    far = "000.11.38.H53"
    answer = rpb.LookupResponse(entry=rpb.DirectoryEntry(
        record=records.make(pki.signer(far), name="xã xa", level=3, parent="000.00.38.H53",
                            endpoint="127.0.0.1:9", now_ms=clock.now_ms()), reachable=True))

    def ask(code, from_below, call):
        if not from_below:
            raise Rejected(Reason.UNKNOWN_RECIPIENT, f"no agency {code} is registered")
        district.asked.append(code)
        return answer

    district._ask = ask
    for _ in range(3):
        with pytest.raises(Rejected):
            district.lookup(far, from_below=False)
    assert rpb.AgencyRecord.FromString(district.lookup(far).record.record).code == far
    assert district.asked == [far]


def test_an_authoritative_not_found_is_cached_briefly(district, pki, clock):
    """Our parent said NOT_FOUND: asked again only after the short negative TTL."""
    far = "000.12.38.H53"

    def ask(code, from_below, call):
        district.asked.append(code)
        raise Rejected(Reason.UNKNOWN_RECIPIENT, f"no agency {code} is registered")

    district._ask = ask
    for _ in range(3):
        with pytest.raises(Rejected):
            district.lookup(far)
    assert district.asked == [far]
    clock.advance(6)
    with pytest.raises(Rejected):
        district.lookup(far)
    assert district.asked == [far, far]


def test_a_not_found_for_a_child_nobody_registered_yet_is_not_cached(directory, pki, clock):
    """Below us by the code rule but not registered (yet), and no child has registered here at all:
    "not yet" (transient, NOT_REGISTERED_YET), asked afresh next time."""
    asked = []
    real = directory._ask
    directory._ask = lambda code, from_below, call: asked.append(code) or real(code, from_below, call)
    for _ in range(2):
        with pytest.raises(Rejected) as e:
            directory.lookup(C1)
        assert e.value.reason is Reason.NOT_REGISTERED_YET and not e.value.reason.permanent
    assert asked == [C1, C1]


def test_a_second_certificate_for_a_registered_code_is_refused_unless_the_first_signs_the_renewal(
        directory, pki, clock, tmp_path):
    """One certificate per code at a time: the CA may issue a second certificate for C1 (or an
    attacker may obtain one); it takes C1's place only with the registered key's signature."""
    register(directory, pki, clock, C1)
    d = tmp_path / "second"
    certs.init_node(d, C1, "xã C1 (bis)", pki.ca,
                    not_before=dt.datetime.fromtimestamp(clock.now_ms() / 1000, dt.timezone.utc) - dt.timedelta(days=1))
    second = Signer.from_files(d / "node.key", d / "node.pem")
    hijack = records.make(second, name="giả", level=3, parent=D, endpoint="10.0.0.66:9", now_ms=clock.now_ms())
    with pytest.raises(Rejected) as e:
        directory.register(hijack, peer=C1)
    assert e.value.reason is Reason.CERT_IN_USE
    assert rpb.AgencyRecord.FromString(directory.lookup(C1).record.record).endpoint == "127.0.0.1:9"
    renewal = records.make(second, name="xã C1", level=3, parent=D, endpoint="127.0.0.1:10", now_ms=clock.now_ms(),
                           previous=pki.signer(C1))
    directory.register(renewal, peer=C1)
    record = rpb.AgencyRecord.FromString(directory.lookup(C1).record.record)
    assert (record.endpoint, record.cert_der) == ("127.0.0.1:10", second.cert_der)


def test_a_parent_that_stays_down_is_logged_once_per_change_not_once_per_tick(tmp_path, pki, clock, caplog):
    """Seen under systemd: a parent down for a minute gave 57 identical INFO lines (86,400 a day). One
    WARNING when it starts (a change of error warns again: tests/test_logs.py), the repeats at DEBUG."""
    from node.harness.nodes import free_port
    from node.transport.grpc_peers import GrpcTransport, TlsMaterial
    db = Database(tmp_path / "c.sqlite3")
    transport = GrpcTransport(TlsMaterial(b"", b"", b"", insecure=True), 1 << 20)
    d = Directory(db, pki.signer(C1), pki.trust(clock), clock, name="xã", configured_parents={}, parent=D,
                  parent_address=f"127.0.0.1:{free_port()}", transport=transport, heartbeat_s=10, stale_after_s=30,
                  cache_ttl_s=300)
    d.endpoint = "127.0.0.1:9"
    try:
        with caplog.at_level("DEBUG", logger="node.registry.directory"):
            for _ in range(5):
                d.keepalive()
        said = [r for r in caplog.records if r.getMessage().startswith("registry:")]
        assert len(said) == 5 and d.parent_error and not d.registered
        assert [r.levelname for r in said] == ["WARNING", "DEBUG", "DEBUG", "DEBUG", "DEBUG"]  # an outage warns
        assert (said[0].agency, said[0].reason) == (D, "UNREACHABLE")
    finally:
        transport.close()
        db.close()


def test_two_children_registering_at_once_are_both_routed_to(directory, pki, clock, monkeypatch):
    """The lost update behind NOT_A_NEIGHBOUR for a registered child (seen on a host of a province): a rebuild of
    what routing reads (here C1's heartbeat claiming an odd code; before hostload, C1's own registration) reads
    the children before C2's row is committed; C2 registers meanwhile; the rebuild must not then publish its
    older reading over C2's. Without the lock C2 finishes inside the rebuild's read, and the rebuild's reading,
    published last, leaves C2 out."""
    import threading
    from node.store import registry as registry_store

    register(directory, pki, clock, C1)
    real_children, first, other = registry_store.children, threading.Event(), []

    def children(db):
        got = real_children(db)
        if not first.is_set() and {c.code for c in got} == {C1}:  # the rebuild's read, before C2 registered
            first.set()
            t = threading.Thread(target=register, args=(directory, pki, clock, C2))
            t.start()
            t.join(2)  # a broken directory lets C2 finish here; with the lock C2 waits for us, and we go on
            other.append(t)
        return got

    monkeypatch.setattr(registry_store, "children", children)
    directory.heartbeat(C1, C1, {"vxp.saas.03": C1})  # a claim new to the tree: routing is rebuilt
    other[0].join()
    assert directory.is_child(C1) and directory.is_child(C2)
    assert directory.child_endpoint(C2) == "127.0.0.1:9"
