"""Successions on a province and its communes in one process (real gRPC over mutual TLS, real SQLite files,
real keys): the province issues "communes X, Y -> Z"; mail kept at a sender for Y is re-addressed to Z; a new
send to X reaches Z and tells the sender so; Lookup shows X retired with its successor; a restart keeps the
lists; a commune that missed the push catches up with its next heartbeat (docs/restructuring.md)."""
from __future__ import annotations

import grpc
import pytest

from node.config import load_config
from node.errors import Reason, Rejected
from node.events import ARRIVED, READDRESSED, SUCCESSION
from node.grpc_errors import reason_of
from node.harness import nodes
from node.harness.http_api import HttpApi
from node.harness.inproc import start_tree
from node.harness.waiting import EventWaiter
from node.pb import envelope_pb2 as pb
from node.pb import mailbox_pb2 as mpb
from node.runtime import Node

P = "000.00.00.H53"                                      # the province: the parent of its communes
X, Y, Z, S = "000.00.31.H53", "000.00.32.H53", "000.00.33.H53", "000.00.34.H53"  # communes; Y never registers
TIMEOUT = 30.0
REASON = "Nghị quyết sắp xếp đơn vị hành chính cấp xã"


def doc(subject: str) -> pb.Document:
    return pb.Document(subject=subject)


@pytest.fixture
def tree(tmp_path):
    t = start_tree(tmp_path, {P: None, X: P, Z: P, S: P},
                   per_node={S: {"api": {"http_listen": f"127.0.0.1:{nodes.free_port()}"}}})
    try:
        yield t
    finally:
        t.stop()


def arrived_at(waiter: EventWaiter, message_ids: set[str]) -> None:
    waiter.wait(lambda evs: {e.message_id for e in evs if e.type == ARRIVED} >= message_ids, TIMEOUT)


def test_mail_follows_a_succession_and_the_sender_is_told(tree):
    s, province = tree.client(S), tree.client(P)
    queued = s.send(doc("gửi xã chưa đăng ký"), [Y]).envelopes[0]  # sealed: kept at S until Y registers
    assert (queued.recipient, queued.waits_at) == (Y, S)

    with EventWaiter(s, inbox=False, registry=True) as told, EventWaiter(tree.client(Z), sent=False) as at_z:
        r = province.admin.issue_succession([X, Y], Z, 0, REASON)
        assert (r.succession.issuer, r.succession.number, list(r.succession.old_codes), r.succession.successor) == (
            P, 1, [X, Y], Z)
        events = told.wait(lambda evs: any(e.type == READDRESSED and e.message_id == queued.message_id
                                           for e in evs) and any(e.type == SUCCESSION for e in evs), TIMEOUT)
        [took] = [e for e in events if e.type == SUCCESSION]
        assert (took.event_type, took.recipient, took.succession_number, took.peer) == (
            mpb.EVENT_TYPE_SUCCESSION, P, 1, P)
        [moved] = [e for e in events if e.type == READDRESSED]
        assert (moved.event_type, moved.recipient, moved.successor_of) == (mpb.EVENT_TYPE_READDRESSED, Z, Y)

        fresh = s.send(doc("gửi xã đã sáp nhập"), [X])  # a new send to a retired code
        [env] = fresh.envelopes
        assert (env.recipient, env.successor_of) == (Z, X)
        arrived_at(at_z, {queued.message_id, env.message_id})  # the same message ids, at the successor

    [track] = s.track(fresh.doc_id).recipients
    assert (track.recipient, track.successor_of) == (Z, X)
    queued_doc = [e for e in s.sent_all() if e.message_id == queued.message_id]
    assert [e.recipient for e in queued_doc] == [Z]
    by_id = {e.message_id: e for e in tree.client(Z).inbox_all()}
    assert by_id[queued.message_id].sender == S and by_id[env.message_id].sender == S
    fetched = tree.client(Z).fetch(queued.message_id)  # made again for Z and sealed to its key: it opens it
    assert fetched.signature_verified and fetched.payload.document.subject == "gửi xã chưa đăng ký"
    assert pb.Envelope.FromString(fetched.envelope).header  # stored as it came
    assert pb.Header.FromString(pb.Envelope.FromString(fetched.envelope).header).seal == pb.SEALED_P256_AES256GCM

    a = s.lookup(X)
    assert (a.code, a.successor, a.retired_by, a.retired_reason) == (X, Z, P, REASON)
    http = HttpApi(nodes.runtime_info(tree[S][1])["http"], tree[S][1].token, TIMEOUT)
    try:  # the HTTP/JSON face answers the same
        shown = http.mailbox("Lookup", {"code": Y})
        assert (shown["code"], shown["successor"], shown["retiredBy"]) == (Y, Z, P)
    finally:
        http.close()
    assert s.lookup(Z).successor == ""
    listed = {a.code: a for a in province.directory(parent=P)}
    assert listed[X].successor == Z and listed[X].name  # still registered: its record, and who answers for it


def test_one_envelope_when_a_retired_code_and_its_successor_are_both_named(tree):
    tree.client(P).admin.issue_succession([X], Z, 0, REASON)
    s = tree.client(S)
    with EventWaiter(s, inbox=False, sent=False, registry=True) as ev:
        ev.wait(lambda evs: any(e.type == SUCCESSION for e in evs) or bool(s.admin.list_successions().successions),
                TIMEOUT)
    resp = s.send(doc("hai lần"), [X, Z])
    assert [(e.recipient, e.successor_of) for e in resp.envelopes] == [(Z, X)]


def test_a_restart_keeps_the_successions_and_an_older_list_stays_refused(tree):
    province = tree.client(P).admin
    province.issue_succession([X], Z, 0, REASON)
    node, handle = tree[P]
    first = node.successions.list_of(P)
    province.issue_succession([Y], Z, 0, REASON)
    node.stop(grace=1)
    again = Node(load_config(handle.config))
    again.start()
    tree[P] = (again, handle)  # the fixture stops it
    c = handle.client()
    try:
        views = c.admin.list_successions().successions
        assert [(v.issuer, v.number, list(v.old_codes), v.successor) for v in views] == [
            (P, 2, [X], Z), (P, 2, [Y], Z)]
        assert c.lookup(X).successor == Z and c.lookup(Y).successor == Z
        with pytest.raises(Rejected) as e:  # list 1 replayed after list 2, across the restart
            again.successions.offer(first, "replayed")
        assert e.value.reason is Reason.SUCCESSION_STALE and e.value.metadata == {"held": "2"}
        with pytest.raises(grpc.RpcError) as e:
            c.admin.issue_succession([X], Y, 0, REASON)
        assert reason_of(e.value) == "SUCCESSION_CYCLE"  # X is retired already
    finally:
        c.close()


def test_a_child_that_missed_the_push_catches_up_on_its_heartbeat(tree):
    province = tree.node(P)
    province.directory.push_successions = lambda lists: None  # the push reaches nobody (down, unreachable, ...)
    with EventWaiter(tree.client(S), inbox=False, sent=False, registry=True) as ev:
        tree.client(P).admin.issue_succession([X, Y], Z, 0, REASON)
        events = ev.wait(lambda evs: any(e.type == SUCCESSION for e in evs), TIMEOUT)
    [took] = [e for e in events if e.type == SUCCESSION]
    assert (took.recipient, took.succession_number, took.peer) == (P, 1, P)  # from its parent's heartbeat answer
    assert tree.node(S).successions.successor(Y) == Z


# two districts of one province: D1 retires its commune X1 into Z1; S2, in the other district, had a document for
# X1 on its way (held at its own district D2) when the succession was issued
T, D1, D2 = "000.00.00.H53", "000.00.35.H53", "000.00.38.H53"
X1, Z1, S2 = "000.21.35.H53", "000.22.35.H53", "000.21.38.H53"


@pytest.mark.parametrize("held_at", [D2, D1], ids=["on-its-way", "queued-at-the-issuer"])
def test_a_document_in_flight_for_a_retired_code_is_refused_by_the_relay_and_sent_again_to_the_successor(
        tmp_path, held_at):
    """Held at S2's own district (it reaches the issuer D1 after the succession: refused on intake), or queued at
    D1 for X1 when D1 issues it (refused from D1's queue): either way S2 is told and sends it to Z1."""
    t = start_tree(tmp_path, {T: None, D1: T, X1: D1, Z1: D1, D2: T, S2: D2})
    try:
        s2, holder = t.client(S2), t.client(held_at)
        hop = T if held_at == D2 else X1
        holder.admin.hold(hop)  # what S2 sends waits there
        last = S2 if held_at == D2 else T  # the node whose hand-over puts it where it is held
        with EventWaiter(t.client(last), inbox=False) as handed:
            first = s2.send(doc("gửi trước khi sáp nhập"), [X1]).envelopes[0]
            handed.wait(lambda evs: any(e.type == "delivered" and e.message_id == first.message_id for e in evs),
                        TIMEOUT)
        assert first.recipient == X1 and not first.successor_of
        assert first.message_id in {m.message_id for m in holder.admin.list_queue_all(hop)}
        with EventWaiter(s2) as told, EventWaiter(t.client(Z1), sent=False) as at_z:
            t.client(D1).admin.issue_succession([X1], Z1, 0, REASON)
            holder.admin.release(hop)
            events = told.wait(lambda evs: any(e.type == READDRESSED for e in evs), 60)
            [again] = [e for e in events if e.type == READDRESSED]
            assert (again.recipient, again.successor_of, again.ref_message_id) == (Z1, X1, first.message_id)
            arrived_at(at_z, {again.message_id})
        notices = [e for e in s2.inbox_all() if e.kind == pb.NOTICE and e.ref_message_id == first.message_id]
        assert [n.subject for n in notices] == ["not delivered: RECIPIENT_RETIRED"]
        assert first.message_id not in {e.message_id for e in t.client(X1).inbox_all()}  # reached nobody
        assert [e.message_id for e in t.client(Z1).inbox_all() if e.sender == S2] == [again.message_id]  # once
        tracked = {r.message_id: r for r in s2.track(first.message_id).recipients}  # one send: both envelopes
        assert (tracked[first.message_id].recipient, tracked[first.message_id].successor_of) == (X1, "")
        assert (tracked[again.message_id].recipient, tracked[again.message_id].successor_of) == (Z1, X1)
    finally:
        t.stop()


def test_the_root_merges_provinces_and_a_province_cannot(tmp_path):
    """Bình Phước into Đồng Nai, as the national root issues it (illustrative codes); a province issuing for
    its sibling is refused."""
    root, bp, dn, other = "VN", "000.00.00.H10", "000.00.00.H31", "000.00.00.H53"
    t = start_tree(tmp_path, {root: None, bp: root, dn: root, other: root})
    try:
        with pytest.raises(grpc.RpcError) as e:
            t.client(dn).admin.issue_succession([bp], dn, 0, "Nghị quyết 202/2025/QH15")
        assert reason_of(e.value) == "SUCCESSION_NOT_COMPETENT"
        with EventWaiter(t.client(dn), sent=False) as at_dn:
            t.client(root).admin.issue_succession([bp], dn, 0, "Nghị quyết 202/2025/QH15")
            sent = t.client(other).send(doc("gửi tỉnh cũ"), [bp])
            [env] = sent.envelopes
            assert (env.recipient, env.successor_of) == (dn, bp)
            arrived_at(at_dn, {env.message_id})
        a = t.client(other).lookup(bp)
        assert (a.successor, a.retired_by) == (dn, root)
        with pytest.raises(grpc.RpcError) as e:  # the successor writing to its own predecessor
            t.client(dn).send(doc("gửi chính mình"), [bp])
        assert reason_of(e.value) == "INVALID_REQUEST"
    finally:
        t.stop()


def test_a_commune_of_an_abolished_district_registers_under_its_province_and_mail_follows_the_registration(
        tmp_path):
    """Re-parenting: the province abolishes the district D (its mail to the province); a commune whose code still
    names D registers directly under the province, and mail both ways follows that registration."""
    commune = "000.21.35.H53"  # by the code rule under the district 000.00.35.H53
    t = start_tree(tmp_path, {P: None, "000.00.35.H53": P, S: P})
    node = None
    try:
        spec = nodes.NodeSpec(commune, "xã Trường Hòa", peers={P: P}, parent=P)
        handle = nodes.prepare_node(tmp_path, nodes.make_ca(tmp_path), spec,
                                    {P: t[P][1].listen, commune: f"127.0.0.1:{nodes.free_port()}"})
        province = t.client(P)
        province.admin.issue_succession(["000.00.35.H53"], P, 0, "Bãi bỏ cấp huyện")
        with EventWaiter(province, inbox=False, sent=False, registry=True) as ev:
            node = Node(load_config(handle.config))
            node.start()
            ev.wait(lambda evs: any(e.type == "registered" and e.peer == commune for e in evs), TIMEOUT)
        c = handle.client()
        try:
            with EventWaiter(c, sent=False) as at_c, EventWaiter(t.client(S), sent=False) as at_s:
                down = t.client(S).send(doc("xuống xã"), [commune]).envelopes[0]
                up = c.send(doc("lên xã bạn"), [S]).envelopes[0]
                arrived_at(at_c, {down.message_id})
                arrived_at(at_s, {up.message_id})
            assert (down.recipient, down.successor_of) == (commune, "")
            assert t.client(S).lookup(commune).parent == P
        finally:
            c.close()
    finally:
        if node is not None:
            node.stop(grace=1)
        t.stop()


def test_a_commune_of_a_merged_province_registers_under_the_successor_and_the_tree_learns_it(tmp_path):
    """Re-parenting across a province merger: the national root retires Bình Phước (H10) into Đồng Nai (H19); a
    commune whose code still names a district of H10 registers directly under H19 (refused WRONG_PARENT before the
    succession), H19 tells the root in its heartbeat, and mail from another province reaches it, and back; its mail
    to a commune still in H10's old tree passes H10 coming down from the root (not from its old district)."""
    old, new, other = "000.00.00.H10", "000.00.00.H19", "000.00.00.H53"
    commune = "000.01.31.H10"  # by the code rule under the district 000.00.31.H10 of H10
    district, stayed = "000.00.32.H10", "000.01.32.H10"  # a district of H10 still running, and its commune
    t = start_tree(tmp_path, {"VN": None, old: "VN", new: "VN", other: "VN", district: old, stayed: district})
    node = None
    try:
        spec = nodes.NodeSpec(commune, "phường Tân Phú", peers={new: new}, parent=new,
                              extra={"registry": {"heartbeat": "200ms", "stale_after": "1s"}})
        handle = nodes.prepare_node(tmp_path, nodes.make_ca(tmp_path), spec,
                                    {new: t[new][1].listen, commune: f"127.0.0.1:{nodes.free_port()}"})
        built = Node(load_config(handle.config))
        built.directory.endpoint = handle.listen  # set when it starts
        with pytest.raises(Rejected) as e:  # what its registration says, before the merger
            t.node(new).directory.register(built.directory.own_entry().record, commune)
        assert e.value.reason is Reason.WRONG_PARENT

        with EventWaiter(t.client(new), inbox=False, sent=False, registry=True) as at_new:
            t.client("VN").admin.issue_succession([old], new, 0, "Nghị quyết 202/2025/QH15")
            at_new.wait(lambda evs: any(e.type == SUCCESSION for e in evs), TIMEOUT)
            with EventWaiter(t.client("VN"), inbox=False, sent=False, registry=True) as at_root:
                node = built
                node.start()
                at_new.wait(lambda evs: any(e.type == "registered" and e.peer == commune for e in evs), TIMEOUT)
                at_root.wait(lambda evs: commune in t.node("VN").directory.hierarchy.registered, TIMEOUT)
        assert t.node("VN").directory.hierarchy.parent(commune) == new  # learned from H19's heartbeat
        c = handle.client()
        try:
            with EventWaiter(c, sent=False) as at_c, EventWaiter(t.client(other), sent=False) as at_o, \
                    EventWaiter(t.client(stayed), sent=False) as at_stayed:
                down = t.client(other).send(doc("xuống phường"), [commune]).envelopes[0]
                up = c.send(doc("lên tỉnh khác"), [other]).envelopes[0]
                back = c.send(doc("về huyện cũ"), [stayed]).envelopes[0]
                arrived_at(at_c, {down.message_id})
                arrived_at(at_o, {up.message_id})
                arrived_at(at_stayed, {back.message_id})
            assert (down.recipient, down.successor_of) == (commune, "")
            assert t.client(other).lookup(commune).parent == new
        finally:
            c.close()
    finally:
        if node is not None:
            node.stop(grace=1)
        t.stop()


def test_the_old_district_still_reaches_a_commune_that_registered_under_the_province(tmp_path):
    """Mail from the old tree to a moved commune: the province abolishes the district D; its commune C, first
    registered under D, registers under the province. D (still running until it is drained and revoked) keeps
    C's old registration and hands C what it sends it, directly: C takes it from its former parent, for itself
    only. It refused it NOT_A_NEIGHBOUR, for good, and D's mail was lost."""
    import yaml
    district, commune = "000.00.35.H53", "000.21.35.H53"
    t = start_tree(tmp_path, {P: None, district: P, commune: district})
    moved = None
    try:
        with EventWaiter(t.client(commune), inbox=False, sent=False, registry=True) as at_c:
            t.client(P).admin.issue_succession([district], P, 0, "Bãi bỏ cấp huyện")
            at_c.wait(lambda evs: any(e.type == SUCCESSION for e in evs), TIMEOUT)  # pushed down through D
        old, handle = t[commune]
        old.stop(grace=1)
        config = yaml.safe_load(handle.config.read_text())
        config["node"]["parent"] = P
        config["peers"] = [{"code": P, "address": t[P][1].listen}]
        handle.config.write_text(yaml.safe_dump(config, allow_unicode=True))
        with EventWaiter(t.client(P), inbox=False, sent=False, registry=True) as at_p:
            moved = Node(load_config(handle.config))
            moved.start()
            at_p.wait(lambda evs: any(e.type == "registered" and e.peer == commune for e in evs), TIMEOUT)
        assert t.node(district).directory.child_endpoint(commune)  # the old registration is still there
        c = handle.client()
        try:
            with EventWaiter(c, sent=False) as at_moved:
                sent = t.client(district).send(doc("từ huyện cũ"), [commune]).envelopes[0]
                arrived_at(at_moved, {sent.message_id})
            [entry] = [e for e in c.inbox_all() if e.message_id == sent.message_id]
            assert entry.sender == district
        finally:
            c.close()
    finally:
        if moved is not None:
            moved.stop(grace=1)
        del t[commune]
        t.stop()
