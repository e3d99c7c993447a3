"""A send to a code nobody registered is visible at once (issue 17, vendor 1, 2, 5), on the shared cluster.

000.29.35.H53 is placed by the code rule under the district 000.00.35.H53, which has no such commune: mail
for it waits parked there (limits.park_for, 3 days by default) in case it registers. The sender, a commune in
the other district, learns that from the lookup it does anyway; sealed (the default), the mail is kept at the
sender until the code registers (no seal key to seal to before): the Send answer, ListSent, Track and a Watch
event say "not registered yet", where it waits and until when; `require_registered` refuses it instead; a
code of no scheme that nobody holds is a bad request; Lookup of the code answers NOT_FOUND, not 503."""
from __future__ import annotations

import time

import grpc
import pytest

from node.events import NOT_REGISTERED_YET
from node.grpc_errors import fields_of, metadata_of, reason_of
from node.harness.waiting import EventWaiter
from node.pb import envelope_pb2 as pb
from node.pb import mailbox_pb2 as mpb

NOBODY, RELAY, SENDER, NEIGHBOUR = "000.29.35.H53", "000.00.35.H53", "000.23.38.H53", "000.24.38.H53"
PARK_FOR_MS = 3 * 86400 * 1000  # limits.park_for's default, which the cluster keeps
TIMEOUT = 60


def doc(subject: str) -> pb.Document:
    return pb.Document(subject=subject)


def test_a_send_to_a_code_nobody_registered_says_where_it_waits_and_until_when(cluster):
    """Sealed (the default), the document cannot leave before the recipient publishes its seal key: it is kept
    at the sender (never handed to the relay in clear), which says so at once: waits at itself, until its
    limits.park_for has passed (then a non-delivery notice)."""
    c = cluster.client(SENDER)
    with EventWaiter(c, inbox=False) as events:
        t0 = int(time.time() * 1000)
        resp = c.send(doc("Gửi xã chưa đăng ký"), [NOBODY])
        t1 = int(time.time() * 1000)
        [env] = resp.envelopes
        assert env.waits_at == SENDER and t0 + PARK_FOR_MS <= env.waits_until_ms <= t1 + PARK_FOR_MS
        seen = events.wait(lambda evs: any(e.type == NOT_REGISTERED_YET and e.message_id == env.message_id
                                           for e in evs), TIMEOUT)
    [told] = [e for e in seen if e.type == NOT_REGISTERED_YET and e.message_id == env.message_id]
    assert (told.event_type, told.peer, told.recipient, told.waits_until_ms) == (
        mpb.EVENT_TYPE_NOT_REGISTERED_YET, SENDER, NOBODY, env.waits_until_ms)
    [entry] = [e for e in c.sent_all() if e.message_id == env.message_id]
    assert (entry.send_state, entry.state, entry.waits_at, entry.waits_until_ms) == (
        mpb.SEND_STATE_NOT_REGISTERED_YET, "not_registered_yet", SENDER, env.waits_until_ms)
    assert told.seq == entry.seq
    [track] = c.track(resp.doc_id).recipients
    assert (track.send_state, track.waits_at, track.waits_until_ms) == (
        mpb.SEND_STATE_NOT_REGISTERED_YET, SENDER, env.waits_until_ms)
    waiting = c._call(c.stub.ListSent, mpb.ListSentRequest(send_state=mpb.SEND_STATE_NOT_REGISTERED_YET, limit=1000))
    assert env.message_id in {e.message_id for e in waiting.entries}
    assert all(e.send_state == mpb.SEND_STATE_NOT_REGISTERED_YET for e in waiting.entries)


def test_require_registered_refuses_at_once_and_queues_nothing(cluster):
    c = cluster.client(SENDER)
    before = len(c.sent_all())
    with pytest.raises(grpc.RpcError) as e:
        c.send(doc("Chỉ gửi nếu đã đăng ký"), [NEIGHBOUR, NOBODY], require_registered=True)
    assert (e.value.code(), reason_of(e.value), fields_of(e.value)) == (
        grpc.StatusCode.NOT_FOUND, "UNKNOWN_RECIPIENT", ["recipients[1]"])
    assert metadata_of(e.value)["waits_at"] == RELAY
    assert len(c.sent_all()) == before
    [env] = c.send(doc("Đã đăng ký"), [NEIGHBOUR], require_registered=True).envelopes
    assert not env.waits_at


def test_a_code_of_no_scheme_that_nobody_holds_is_a_bad_request(cluster):
    c = cluster.client(SENDER)
    before = len(c.sent_all())
    with pytest.raises(grpc.RpcError) as e:
        c.send(doc("Mã gõ nhầm"), [NEIGHBOUR, "abc"])
    assert (e.value.code(), reason_of(e.value), fields_of(e.value)) == (
        grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST", ["recipients[1]"])
    assert len(c.sent_all()) == before


def test_lookup_of_a_code_nobody_holds_is_not_found_not_unavailable(cluster):
    with pytest.raises(grpc.RpcError) as e:
        cluster.client(SENDER).lookup(NOBODY)
    assert (e.value.code(), reason_of(e.value), fields_of(e.value)) == (
        grpc.StatusCode.NOT_FOUND, "UNKNOWN_RECIPIENT", ["code"])
    assert metadata_of(e.value)["waits_at"] == RELAY
