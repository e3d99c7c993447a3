"""String "enums" as proto enums at the API edge (issue 11): each enum field beside the deprecated string
it replaces, both filled from what the node stores; every stored value has its enum value and back.

Two in-process nodes over real gRPC: a document sent, delivered, taken back (13 pending, then 15), with
the enums read on ListSent, Track, ListInbox and Watch; the ListSent filter by send_state."""
from __future__ import annotations

import grpc
import pytest

from node import events
from node.api import enums
from node.documents.lifecycle import CHANGE_STATE
from node.grpc_errors import fields_of, reason_of
from node.harness.inproc import pair_clients
from node.harness.nodes import NodeSpec
from node.harness.waiting import EventWaiter
from node.pb import envelope_pb2 as pb
from node.pb import mailbox_pb2 as mpb
from node.store import outbox

A, B = "000.00.01.H53", "000.00.02.H53"
TIMEOUT = 10.0


def values(enum) -> set[int]:
    return {v.number for v in enum.DESCRIPTOR.values if v.number}


def test_every_stored_string_has_its_enum_value_and_every_value_its_string():
    assert set(enums.DOC_STATE) == {"active", "taken_back", *CHANGE_STATE.values()}
    assert set(enums.DOC_STATE.values()) == values(mpb.DocState)
    assert set(enums.SEND_STATE) == {outbox.PENDING, outbox.DELIVERED, outbox.REJECTED, outbox.EXPIRED,
                                     outbox.NOT_REGISTERED_YET}  # the last derived at read time
    assert set(enums.SEND_STATE.values()) == values(mpb.SendState)
    assert set(enums.EVENT_TYPE) == {events.WATCHING, events.ARRIVED, events.DELIVERED, events.REJECTED,
                                     events.EXPIRED, events.REGISTERED, events.HEARTBEAT, events.CHECKPOINT,
                                     events.CHECKPOINT_KEPT, events.CRL, events.NOT_REGISTERED_YET,
                                     events.SUCCESSION, events.READDRESSED}
    assert set(enums.EVENT_TYPE.values()) == values(mpb.EventType)
    assert set(enums.PENDING.values()) - {mpb.PENDING_REQUEST_NONE} == values(mpb.PendingRequest)
    # a value a newer store might hold maps to UNSPECIFIED, never a failed reply
    assert enums.doc_state("archived") == mpb.DOC_STATE_UNSPECIFIED
    assert enums.send_state("") == mpb.SEND_STATE_UNSPECIFIED


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    with pair_clients(tmp_path_factory.mktemp("enums"), NodeSpec(A, "Sở A"), NodeSpec(B, "Sở B"), TIMEOUT) as clients:
        yield clients


def test_states_and_event_types_arrive_as_enums_beside_their_strings(pair):
    ca, cb = pair
    with EventWaiter(cb, sent=False) as arrivals, EventWaiter(ca, inbox=False) as outcomes:
        assert arrivals.events == [] and outcomes.events == []
        sent = ca.send(pb.Document(subject="Enum", document_id=f"{A},2026/11/29,7/UBND-VP"), [B])
        mid = sent.envelopes[0].message_id
        got = arrivals.wait(lambda evs: any(e.message_id == mid for e in evs), TIMEOUT)
        done = outcomes.wait(lambda evs: any(e.message_id == mid for e in evs), TIMEOUT)
    [arrived] = [e for e in got if e.message_id == mid]
    assert (arrived.type, arrived.event_type) == ("arrived", mpb.EVENT_TYPE_ARRIVED)
    [delivered] = [e for e in done if e.message_id == mid]
    assert (delivered.type, delivered.event_type) == ("delivered", mpb.EVENT_TYPE_DELIVERED)

    [entry] = [e for e in cb.inbox_all() if e.message_id == mid]
    assert (entry.state, entry.doc_state) == ("active", mpb.DOC_STATE_ACTIVE)
    assert (entry.pending_request, entry.pending) == ("", mpb.PENDING_REQUEST_NONE)
    [row] = [e for e in ca.sent_all() if e.message_id == mid]
    assert (row.state, row.send_state) == ("delivered", mpb.SEND_STATE_DELIVERED)
    [track] = ca.track(sent.doc_id).recipients
    assert (track.state, track.send_state) == ("delivered", mpb.SEND_STATE_DELIVERED)

    with EventWaiter(cb, sent=False) as arrivals:
        asked = ca.change(sent.doc_id, take_back=True, reason="gửi nhầm")
        ask_id = asked.envelopes[0].message_id
        arrivals.wait(lambda evs: any(e.message_id == ask_id for e in evs), TIMEOUT)
    [entry] = [e for e in cb.inbox_all() if e.message_id == mid]
    assert (entry.pending_request, entry.pending) == ("13", mpb.PENDING_REQUEST_TAKE_BACK)
    cb.set_status(mid, "15")
    [entry] = [e for e in cb.inbox_all() if e.message_id == mid]
    assert (entry.state, entry.doc_state, entry.pending) == ("taken_back", mpb.DOC_STATE_TAKEN_BACK,
                                                             mpb.PENDING_REQUEST_NONE)


def test_list_sent_filters_by_send_state_and_refuses_a_disagreeing_string(pair):
    ca, _ = pair
    with EventWaiter(ca, inbox=False) as outcomes:
        mid = ca.send(pb.Document(subject="Lọc", document_id=f"{A},2026/11/29,8/UBND-VP"), [B]).envelopes[0].message_id
        outcomes.wait(lambda evs: any(e.message_id == mid for e in evs), TIMEOUT)
    by_enum = ca._call(ca.stub.ListSent, mpb.ListSentRequest(send_state=mpb.SEND_STATE_DELIVERED, limit=1000))
    by_text = ca._call(ca.stub.ListSent, mpb.ListSentRequest(state="delivered", limit=1000))
    for listing in (by_enum, by_text):  # the same filter either way (other envelopes may still be on their way)
        assert mid in {e.message_id for e in listing.entries}
        assert all((e.state, e.send_state) == ("delivered", mpb.SEND_STATE_DELIVERED) for e in listing.entries)
    for request in (mpb.ListSentRequest(send_state=mpb.SEND_STATE_DELIVERED, state="pending"),
                    mpb.ListSentRequest(send_state=99)):
        with pytest.raises(grpc.RpcError) as e:
            ca._call(ca.stub.ListSent, request)
        assert reason_of(e.value) == "INVALID_REQUEST" and fields_of(e.value) == ["send_state"]
