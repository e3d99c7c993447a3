"""Exactly once at the API boundary: `client_key` on Send, SendBatch, SetStatus, Change and ImportEdxml,
over real gRPC (two in-process nodes), across a restart of a real node process, and the store's pruning."""
from __future__ import annotations

import threading

import grpc
import pytest

from node.grpc_errors import fields_of, metadata_of, reason_of
from node.harness import nodes
from node.harness.inproc import pair_clients
from node.harness.nodes import NodeSpec
from node.harness.waiting import EventWaiter
from node.events import ARRIVED
from node.pb import envelope_pb2 as pb
from node.store import client_keys
from node.store.database import Database

A, B = "000.00.01.H53", "000.00.02.H53"
TIMEOUT = 10.0


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    with pair_clients(tmp_path_factory.mktemp("keys"), NodeSpec(A, "Sở A"), NodeSpec(B, "Sở B"), TIMEOUT) as clients:
        yield clients


def doc(subject: str) -> pb.Document:
    return pb.Document(subject=subject, document_id=f"{A},2026/11/29,{abs(hash(subject)) % 10000}/UBND-VP", content="x")


def refused(call, *args, **kw) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, **kw)
    return info.value


def sent_ids(client) -> set[str]:
    return {e.message_id for e in client.sent_all()}


def received(ca, cb, subject: str) -> str:
    """Send from A to B and wait until B has it; its message id."""
    with EventWaiter(cb, sent=False) as events:
        mid = ca.send(doc(subject), [B]).envelopes[0].message_id
        events.wait(lambda evs: any(e.type == ARRIVED and e.message_id == mid for e in evs), TIMEOUT)
    return mid


def test_the_same_key_and_request_sends_once_and_answers_the_same(pair):
    ca, _ = pair
    before = sent_ids(ca)
    first = ca.send(doc("Giấy mời họp"), [B], client_key="send-1")
    again = ca.send(doc("Giấy mời họp"), [B], client_key="send-1")
    assert again == first
    assert sent_ids(ca) - before == {first.envelopes[0].message_id}


def test_another_request_under_a_used_key_is_refused_and_nothing_is_queued(pair):
    ca, _ = pair
    ca.send(doc("Công văn 1"), [B], client_key="send-2")
    before = sent_ids(ca)
    err = refused(ca.send, doc("Công văn 2"), [B], client_key="send-2")
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert reason_of(err) == "KEY_REUSED" and fields_of(err) == ["client_key"]
    assert metadata_of(err).get("method") == "Send"
    err = refused(ca.send, doc("Công văn 1"), [B], priority=2, client_key="send-2")  # any field counts
    assert reason_of(err) == "KEY_REUSED"
    err = refused(ca.send_batch, [(doc("Công văn 1"), [B])], client_key="send-2")  # another method
    assert reason_of(err) == "KEY_REUSED" and metadata_of(err).get("method") == "Send"
    assert sent_ids(ca) == before


@pytest.mark.parametrize("key", ["", "a b", "x" * 129, "khóa", "k/1"])
def test_a_key_outside_the_charset_or_length_is_refused(pair, key):
    ca, _ = pair
    if not key:
        return  # empty: no key at all, an ordinary call
    err = refused(ca.send, doc("Khóa sai"), [B], client_key=key)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason_of(err) == "INVALID_REQUEST" and fields_of(err) == ["client_key"]


def test_a_refused_call_stores_no_key(pair):
    ca, _ = pair
    err = refused(ca.send, doc("Tự gửi"), [A], client_key="send-refused")
    assert reason_of(err) == "INVALID_REQUEST"
    assert ca.send(doc("Tự gửi"), [B], client_key="send-refused").envelopes  # the key is still free


def test_send_batch_once(pair):
    ca, _ = pair
    before = sent_ids(ca)
    items = [(doc("Lô 1"), [B]), (doc("Lô 2"), [B])]
    first = ca.send_batch(items, client_key="batch-1")
    assert ca.send_batch(items, client_key="batch-1") == first
    assert len(sent_ids(ca) - before) == 2
    err = refused(ca.send_batch, items[:1], client_key="batch-1")
    assert reason_of(err) == "KEY_REUSED"


def test_a_document_in_a_batch_has_no_key_of_its_own(pair):
    from node.pb import mailbox_pb2 as mpb
    ca, _ = pair
    request = mpb.SendBatchRequest(documents=[mpb.SendRequest(document=doc("Lô 3"), recipients=[B], client_key="k")])
    err = refused(ca._call, ca.stub.SendBatch, request)
    assert reason_of(err) == "INVALID_REQUEST" and fields_of(err) == ["documents[0].client_key"]


def test_set_status_once(pair):
    ca, cb = pair
    mid = received(ca, cb, "Báo cáo tháng")
    before = sent_ids(cb)
    first = cb.set_status(mid, "03", "đã phân công", client_key="status-1")
    assert cb.set_status(mid, "03", "đã phân công", client_key="status-1") == first
    assert sent_ids(cb) - before == {first}  # a second 03 would have been refused (BAD_STEP) or sent twice
    err = refused(cb.set_status, mid, "04", client_key="status-1")
    assert reason_of(err) == "KEY_REUSED"


def test_change_once(pair):
    ca, cb = pair
    mid = received(ca, cb, "Văn bản thu hồi")
    before = sent_ids(ca)
    first = ca.change(mid, take_back=True, reason="gửi nhầm", client_key="change-1")
    assert ca.change(mid, take_back=True, reason="gửi nhầm", client_key="change-1") == first
    assert sent_ids(ca) - before == {first.envelopes[0].message_id}


def test_import_edxml_once(pair):
    ca, cb = pair
    mid = received(ca, cb, "Gói edXML")
    packet = cb.export_edxml(mid).packet  # a document From A: A may send it again
    before = sent_ids(ca)
    first = ca.import_edxml(packet, [B], client_key="import-1")
    assert first.kind == "document"
    assert ca.import_edxml(packet, [B], client_key="import-1") == first
    assert sent_ids(ca) - before == {first.sent.envelopes[0].message_id}


def test_calls_racing_with_one_key_send_once(pair):
    ca, _ = pair
    before = sent_ids(ca)
    start, answers, errors = threading.Barrier(4), [], []

    def call():
        start.wait()
        try:
            answers.append(ca.send(doc("Đua"), [B], client_key="race-1"))
        except grpc.RpcError as e:  # pragma: no cover - shown in the assertion
            errors.append(e)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(answers) == 4
    assert all(a == answers[0] for a in answers)
    assert sent_ids(ca) - before == {answers[0].envelopes[0].message_id}


def test_a_key_survives_a_node_killed_after_the_commit(tmp_path):
    """The answer was lost (the node died after its commit): the retry after the restart gets it, nothing twice."""
    ha, _ = nodes.pair(tmp_path, NodeSpec(A, "Sở A"), NodeSpec(B, "Sở B"))  # B stays down: A's envelope stays queued
    nodes.start(ha)
    try:
        nodes.wait_healthy([ha], timeout=60)
        c = ha.client(TIMEOUT)
        try:
            first = c.send(doc("Trước khi sập"), [B], client_key="restart-1")
        finally:
            c.close()
        nodes.kill9(ha)
        nodes.start(ha)
        nodes.wait_healthy([ha], timeout=60)
        c = ha.client(TIMEOUT)
        try:
            assert c.send(doc("Trước khi sập"), [B], client_key="restart-1") == first
            assert reason_of(refused(c.send, doc("Khác"), [B], client_key="restart-1")) == "KEY_REUSED"
            assert sent_ids(c) == {first.envelopes[0].message_id}
        finally:
            c.close()
    finally:
        nodes.terminate(ha)


def test_expired_keys_are_free_and_pruned(tmp_path):
    db = Database(tmp_path / "db.sqlite")
    with db.transaction() as tx:
        client_keys.put_in(tx, "default", "old", "Send", b"h", b"r", 0, 1000)
        client_keys.put_in(tx, "default", "new", "Send", b"h", b"r", 0, 5000)
    assert client_keys.get(db, "default", "old", 2000) is None  # expired: as if never used
    assert client_keys.get(db, "default", "new", 2000).response == b"r"
    assert client_keys.prune(db, 2000) == 1
    assert client_keys.get(db, "default", "new", 2000) is not None
    assert client_keys.prune(db, 2000) == 0
    db.close()


def test_a_prune_with_nothing_expired_does_not_wait_for_the_writer(tmp_path):
    """Every sweep prunes: with nothing expired it only reads, so an idle mailbox's sweep takes no write
    transaction (and one held open by a busy writer does not hold the sweep up)."""
    db = Database(tmp_path / "db.sqlite")
    with db.transaction() as tx:
        client_keys.put_in(tx, "default", "k", "Send", b"h", b"r", 0, 5000)
    inside, release = threading.Event(), threading.Event()

    def busy_writer() -> None:
        with db.transaction():
            inside.set()
            release.wait(20)
    writer = threading.Thread(target=busy_writer)
    writer.start()
    try:
        assert inside.wait(20)
        pruned: list[int] = []
        sweep = threading.Thread(target=lambda: pruned.append(client_keys.prune(db, 2000)))
        sweep.start()
        sweep.join(20)  # a bound for a broken build: the read answers at once
        assert pruned == [0] and writer.is_alive()  # done while the writer still held the transaction
    finally:
        release.set()
        writer.join(20)
        sweep.join(20)
    assert client_keys.prune(db, 6000) == 1  # once expired, the row goes as before
    db.close()
