"""Reads shaped like the national SDK, over real gRPC (two in-process nodes): CountPending, the kind filter
and has_more on ListInbox, the latest status per recipient on ListSent, WhoAmI, the message and status
code on Watch events, and a pending take-back on an inbox entry."""
from __future__ import annotations

import grpc
import pytest

from node import codes
from node.events import ARRIVED
from node.grpc_errors import fields_of, reason_of
from node.harness.inproc import pair_clients
from node.harness.nodes import NodeSpec
from node.harness.waiting import EventWaiter
from node.pb import envelope_pb2 as pb
from node.pb import mailbox_pb2 as mpb

A, B = "000.00.01.H53", "000.00.02.H53"
TIMEOUT = 10.0
MAX_SIZE = 64 * 1024


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    extra = {"messages": {"max_size": MAX_SIZE}}
    with pair_clients(tmp_path_factory.mktemp("reads"), NodeSpec(A, "Sở A", extra=extra),
                      NodeSpec(B, "Sở B", extra=extra), TIMEOUT) as clients:
        yield clients


def doc(subject: str) -> pb.Document:
    return pb.Document(subject=subject, document_id=f"{A},2026/11/29,{abs(hash(subject)) % 10000}/UBND-VP")


def arrive(sender, receiver, send) -> tuple[object, list[mpb.Event]]:
    """Do `send` on `sender` and wait until `receiver` has what it sent; (its answer, the arrival events)."""
    with EventWaiter(receiver, sent=False) as events:
        answer = send()
        ids = {answer} if isinstance(answer, str) else {e.message_id for e in answer.envelopes}
        got = events.wait(lambda evs: ids <= {e.message_id for e in evs if e.type == ARRIVED}, TIMEOUT)
    return answer, [e for e in got if e.type == ARRIVED and e.message_id in ids]


def test_whoami_says_who_the_node_is_and_its_limits(pair):
    ca, _ = pair
    me = ca.whoami()
    assert (me.code, me.name, me.level, me.parent) == (A, "Sở A", codes.level(A), "")  # no parent in its peers
    assert me.limits.max_envelope_bytes == MAX_SIZE
    assert me.limits.max_api_message_bytes == 2 * MAX_SIZE + (1 << 20)
    assert me.limits.documents_per_batch == 1000 and me.limits.max_page == 1000
    assert me.limits.recipients_per_send > 0 and me.limits.message_lifetime_seconds > 0
    assert me.version and me.schema_version >= 9


def test_pending_counts_kinds_and_paging(pair):
    ca, cb = pair
    for e in cb.inbox_all(only_new=True):
        cb.ack(e.message_id)
    assert cb.count_pending() == mpb.CountPendingResponse()
    (sent, _) = arrive(ca, cb, lambda: ca.send(doc("Đếm 1"), [B]))
    arrive(ca, cb, lambda: ca.send(doc("Đếm 2"), [B]))
    status_mid, [event] = arrive(cb, ca, lambda: cb.set_status(sent.envelopes[0].message_id, "03"))
    assert (event.status_code, event.ref_message_id, event.kind) == ("03", sent.envelopes[0].message_id, pb.STATUS)

    counts = cb.count_pending()
    assert (counts.total, counts.documents, counts.statuses, counts.notices) == (2, 2, 0, 0)
    assert ca.count_pending().statuses >= 1

    docs = cb.inbox(only_new=True, kinds=[pb.DOCUMENT])
    assert [e.subject for e in docs] == ["Đếm 1", "Đếm 2"]
    assert cb.inbox(only_new=True, kinds=[pb.NOTICE]) == []
    assert status_mid in {e.message_id for e in ca.inbox(kinds=[pb.STATUS])}

    first = cb.inbox_page(only_new=True, limit=1)
    assert len(first.entries) == 1 and first.has_more
    last = cb.inbox_page(only_new=True, after_seq=first.entries[0].seq, limit=1)
    assert len(last.entries) == 1 and not last.has_more


def test_a_bad_kind_is_refused(pair):
    _, cb = pair
    with pytest.raises(grpc.RpcError) as info:
        cb.inbox(kinds=[pb.DOCUMENT, pb.KIND_UNSPECIFIED])
    assert reason_of(info.value) == "INVALID_REQUEST" and fields_of(info.value) == ["kinds[1]"]


def test_list_sent_shows_the_latest_status_and_has_more(pair):
    ca, cb = pair
    sent, _ = arrive(ca, cb, lambda: ca.send(doc("Trạng thái mới nhất"), [B]))
    mid = sent.envelopes[0].message_id
    arrive(cb, ca, lambda: cb.set_status(mid, "03"))
    arrive(cb, ca, lambda: cb.set_status(mid, "04"))
    [entry] = [e for e in ca.sent_all() if e.message_id == mid]
    assert entry.latest_status == "04" and entry.latest_status_ms > 0
    assert entry.latest_status == ca.track(mid).recipients[0].latest_status
    page = ca._call(ca.stub.ListSent, mpb.ListSentRequest(limit=1))
    assert len(page.entries) == 1 and page.has_more
    rest = ca._call(ca.stub.ListSent, mpb.ListSentRequest(after_seq=entry.seq))
    assert not rest.has_more


def test_an_inbox_entry_shows_a_pending_take_back(pair):
    ca, cb = pair
    sent, _ = arrive(ca, cb, lambda: ca.send(doc("Thu hồi"), [B]))
    mid = sent.envelopes[0].message_id
    [before] = [e for e in cb.inbox_all() if e.message_id == mid]
    assert before.pending_request == ""
    arrive(ca, cb, lambda: ca.change(mid, take_back=True, reason="gửi nhầm"))
    [after] = [e for e in cb.inbox_all() if e.message_id == mid]
    assert after.pending_request == "13"
    arrive(cb, ca, lambda: cb.set_status(mid, "15"))
    [settled] = [e for e in cb.inbox_all() if e.message_id == mid]
    assert settled.pending_request == "" and settled.state == "taken_back"
