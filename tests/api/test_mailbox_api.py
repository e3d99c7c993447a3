"""The local API of two in-process nodes A and B over real gRPC: token, health,
reflection, and the send → deliver → inbox → fetch → ack round trip."""
from __future__ import annotations

import time

import grpc
import pytest
from google.protobuf import message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from node import envelope, receipts
from node.client import MailboxClient
from node.config import load_config
from node.errors import Reason
from node.grpc_errors import fields_of, reason_of
from node.events import DELIVERED
from node.harness import nodes
from node.harness.nodes import NodeSpec
from node.harness.waiting import EventWaiter
from node.identity.trust import TrustStore
from node.pb import envelope_pb2 as pb
from node.pb import admin_pb2 as apb
from node.pb import mailbox_pb2 as mpb
from node.runtime import MAX_WATCHERS, Node

A, B = "000.00.01.H53", "000.00.02.H53"
TIMEOUT = 10.0
MAILBOX = mpb.DESCRIPTOR.services_by_name["Mailbox"]
ADMIN = apb.DESCRIPTOR.services_by_name["Admin"]
ATTACHMENT = bytes(range(256)) * 40 + "tệp đính kèm".encode()
MAX_SIZE = 64 * 1024


class Pair:
    a: Node
    b: Node
    ha: nodes.NodeHandle
    hb: nodes.NodeHandle
    ca: MailboxClient
    cb: MailboxClient
    trust: TrustStore


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("mailbox")
    limits = {"messages": {"max_size": MAX_SIZE}}
    ha, hb = nodes.pair(root, NodeSpec(A, "Sở A", extra=limits), NodeSpec(B, "Sở B", extra=limits))
    p = Pair()
    p.ha, p.hb = ha, hb
    started: list[Node] = []
    clients: list[MailboxClient] = []
    try:
        for h in (hb, ha):  # B first, so A's first delivery finds it up
            node = Node(load_config(h.config))
            node.start()
            started.append(node)
        p.b, p.a = started
        nodes.wait_healthy([ha, hb], timeout=TIMEOUT)
        p.ca, p.cb = ha.client(TIMEOUT), hb.client(TIMEOUT)
        clients += [p.ca, p.cb]
        p.trust = TrustStore.from_files([root / "ca" / "ca.pem"])
        yield p
    finally:
        for c in clients:
            c.close()
        for node in reversed(started):
            node.stop(grace=1.0)


def document(subject: str = "Về việc tổ chức hội nghị") -> pb.Document:
    doc = pb.Document(subject=subject, document_id=f"{A},2026/11/21,12/UBND-VP", content="Kính gửi Sở B")
    doc.attachments.add(name="giay-moi.pdf", content_type="application/pdf", data=ATTACHMENT)
    return doc


def send_and_wait_delivered(p: Pair, doc: pb.Document) -> str:
    with EventWaiter(p.ca, inbox=False) as events:
        resp = p.ca.send(doc, [B])
        [sent] = resp.envelopes
        assert sent.recipient == B
        events.wait(lambda evs: any(e.type == DELIVERED and e.message_id == sent.message_id for e in evs), TIMEOUT)
    return sent.message_id


def rpc_error(call, *args, **kw) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, **kw)
    return info.value


# ---- token ------------------------------------------------------------------------

def _call_raw(channel: grpc.Channel, method, metadata) -> None:
    """Call any Mailbox method with an empty request, whatever its streaming shape."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    request = message_factory.GetMessageClass(method.input_type)()
    output = message_factory.GetMessageClass(method.output_type)
    kw = dict(request_serializer=type(request).SerializeToString, response_deserializer=output.FromString)
    if method.server_streaming:
        for _ in channel.unary_stream(path, **kw)(request, metadata=metadata, timeout=TIMEOUT):
            pass
    else:
        channel.unary_unary(path, **kw)(request, metadata=metadata, timeout=TIMEOUT)


TOKENS = {
    "missing": lambda token: (),
    "wrong": lambda token: (("authorization", "Bearer " + token[::-1]),),
    "not-bearer": lambda token: (("authorization", token),),
    "empty-bearer": lambda token: (("authorization", "Bearer "),),
}


@pytest.mark.parametrize("method", [m.name for m in MAILBOX.methods])
@pytest.mark.parametrize("token", list(TOKENS))
def test_every_mailbox_method_needs_the_token(pair, method, token):
    metadata = TOKENS[token](pair.ha.token)
    with grpc.insecure_channel(pair.ha.api) as channel:
        err = rpc_error(_call_raw, channel, MAILBOX.methods_by_name[method], metadata)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED, err.details()
    assert reason_of(err) == "UNAUTHENTICATED"


@pytest.mark.parametrize("method", [m.name for m in ADMIN.methods])
def test_every_admin_method_needs_the_token(pair, method):
    """Admin.Running shows the node's config and peers; Purge removes mail: none of it without the token."""
    for token in TOKENS:
        with grpc.insecure_channel(pair.ha.api) as channel:
            err = rpc_error(_call_raw, channel, ADMIN.methods_by_name[method], TOKENS[token](pair.ha.token))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED, (token, err.details())


def test_a_token_opens_the_mailbox(pair):
    assert isinstance(pair.ca.sent(), list)  # same call as above, with the right token: no error


def test_health_needs_no_token_and_says_serving(pair):
    with grpc.insecure_channel(pair.ha.api) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", MAILBOX.full_name):
            resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT)
            assert resp.status == health_pb2.HealthCheckResponse.SERVING, service


def test_reflection_lists_mailbox_and_health(pair):
    with grpc.insecure_channel(pair.ha.api) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                                   timeout=TIMEOUT))
    names = {s.name for s in responses[0].list_services_response.service}
    assert {"lienthong.v1.Mailbox", "grpc.health.v1.Health"} <= names
    assert "lienthong.v1.Exchange" not in names  # the peer surface is on the other port


# ---- round trip -------------------------------------------------------------------

def test_send_deliver_fetch_ack_round_trip(pair):
    doc = document()
    mid = send_and_wait_delivered(pair, doc)

    # A: delivered, with B's receipt for exactly the bytes A holds
    [sent] = [e for e in pair.ca.sent_all() if e.message_id == mid]
    assert (sent.recipient, sent.next_hop, sent.state, sent.kind) == (B, B, "delivered", pb.DOCUMENT)
    assert sent.subject == doc.subject and sent.delivered_ms > 0 and sent.attempts >= 1

    # B: new in the inbox
    new = [e for e in pair.cb.inbox(only_new=True) if e.message_id == mid]
    assert len(new) == 1
    assert (new[0].sender, new[0].subject, new[0].kind, new[0].acked) == (A, doc.subject, pb.DOCUMENT, False)

    got = pair.cb.fetch(mid)
    assert got.signature_verified
    expected = pb.Document()
    expected.CopyFrom(doc)
    expected.from_organ.CopyFrom(pb.Organization(organ_id=A, organ_name="Sở A"))  # left empty: A's node filled it
    assert got.payload.document == expected
    assert got.payload.document.attachments[0].data == ATTACHMENT
    assert [h.code for h in got.path] == [A, B] and all(h.verified for h in got.path)
    assert A in got.signer_subject
    assert got.receipt.SerializeToString() == sent.receipt.SerializeToString()
    receipts.verify(sent.receipt, pair.trust, expect_receiver=B, message_id=mid,
                            envelope_digest=envelope.sha256(got.envelope))

    assert pair.cb.ack(mid).was_new is True
    assert pair.cb.ack(mid).was_new is False
    assert mid not in [e.message_id for e in pair.cb.inbox(only_new=True)]
    [entry] = [e for e in pair.cb.inbox() if e.message_id == mid]
    assert entry.acked


def test_only_new_is_empty_once_everything_is_acked(pair):
    send_and_wait_delivered(pair, document("Thông báo"))
    for e in pair.cb.inbox_all(only_new=True):
        assert pair.cb.ack(e.message_id).was_new
    assert pair.cb.inbox(only_new=True) == []
    assert pair.cb.inbox() != []


def test_the_sender_keeps_no_copy_in_its_own_inbox(pair):
    mid = send_and_wait_delivered(pair, document("Giấy mời"))
    assert mid not in [e.message_id for e in pair.ca.inbox_all()]


def test_watch_events_carry_the_seq_to_resume_listing_after(pair):
    """arrived: the entry's seq in ListInbox; delivered: its seq in ListSent (a client resumes with after_seq)."""
    with EventWaiter(pair.cb, inbox=True, sent=False) as arrivals:
        mid = send_and_wait_delivered(pair, document("Số thứ tự"))
        [arrived] = [e for e in arrivals.wait(lambda evs: any(e.message_id == mid for e in evs), TIMEOUT)
                     if e.message_id == mid]
    [entry] = [e for e in pair.cb.inbox_all() if e.message_id == mid]
    assert arrived.seq == entry.seq > 0
    assert [e.message_id for e in pair.cb.inbox(after_seq=arrived.seq - 1)][:1] == [mid]
    with EventWaiter(pair.ca, inbox=False) as outcomes:
        resp = pair.ca.send(document("Số thứ tự 2"), [B])
        [sent] = resp.envelopes
        [delivered] = [e for e in outcomes.wait(lambda evs: any(e.type == DELIVERED and e.message_id == sent.message_id
                                                                for e in evs), TIMEOUT)
                       if e.type == DELIVERED and e.message_id == sent.message_id]
    [row] = [e for e in pair.ca.sent_all() if e.message_id == sent.message_id]
    assert delivered.seq == row.seq > 0


# ---- refusals -----------------------------------------------------------------------

@pytest.mark.parametrize("call", ["fetch", "ack"])
def test_unknown_message_is_not_found(pair, call):
    err = rpc_error(getattr(pair.cb, call), "0" * 32)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert reason_of(err) == "NOT_FOUND"
    assert "0" * 32 in err.details()


SEND_ERRORS = {
    "no recipients": (lambda doc: ([], 0), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST"),
    "priority 7": (lambda doc: ([B], 7), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST"),
    "to itself": (lambda doc: ([A], 0), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST"),
    "listed twice": (lambda doc: ([B, B], 0), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST"),
    "malformed code": (lambda doc: (["not-a-code"], 0), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST"),
    "one bad of two": (lambda doc: ([B, "not-a-code"], 0), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST"),
}


def queued_ids(client) -> list[str]:
    """What was ever queued, by id: an earlier test's envelope delivered meanwhile changes its row, not this."""
    return [e.message_id for e in client.sent_all()]


@pytest.mark.parametrize("case", list(SEND_ERRORS))
def test_invalid_send_is_refused_and_queues_nothing(pair, case):
    make, code, reason = SEND_ERRORS[case]
    recipients, priority = make(None)
    before = queued_ids(pair.ca)

    err = rpc_error(pair.ca.send, document(), recipients, priority=priority)

    assert (err.code(), reason_of(err)) == (code, reason), err.details()
    assert queued_ids(pair.ca) == before


def test_send_priority_from_the_document_is_checked_too(pair):
    doc = document()
    doc.other_info.priority = 7
    err = rpc_error(pair.ca.send, doc, [B])
    assert (err.code(), reason_of(err)) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")


def test_send_without_subject_or_document_id_is_refused(pair):
    err = rpc_error(pair.ca.send, pb.Document(content="no subject"), [B])
    assert (err.code(), reason_of(err)) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")


def test_list_sent_with_unknown_state_is_refused(pair):
    err = rpc_error(pair.ca.sent, state="lost")
    assert (err.code(), reason_of(err)) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")


def test_send_over_the_size_limit_is_refused(pair):
    doc = document()
    doc.attachments.add(name="big.bin", data=b"\0" * MAX_SIZE)
    before = queued_ids(pair.ca)

    err = rpc_error(pair.ca.send, doc, [B])

    assert (err.code(), reason_of(err)) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_LARGE")
    assert queued_ids(pair.ca) == before


def test_watch_of_nothing_is_refused(pair):
    err = rpc_error(lambda: list(pair.ca.watch(inbox=False, sent=False, timeout=TIMEOUT)))
    assert (err.code(), reason_of(err)) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")


@pytest.fixture
def solo(tmp_path):
    """Node A alone (its peer B is never started), for requests whose side effects must not leak."""
    [handle, _] = nodes.pair(tmp_path, NodeSpec(A, "Sở A"), NodeSpec(B, "Sở B"))
    node = Node(load_config(handle.config))
    node.start()
    client = handle.client(TIMEOUT)
    try:
        nodes.wait_healthy([handle], timeout=TIMEOUT)
        yield client
    finally:
        client.close()
        node.stop(grace=1.0)


def test_send_with_negative_lifetime_is_invalid(solo):
    err = rpc_error(solo.send, document(), [B], lifetime_seconds=-100)
    assert (err.code(), reason_of(err)) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")
    assert solo.sent_all() == []


def test_send_with_overflowing_lifetime_is_invalid(solo):
    err = rpc_error(solo.send, document(), [B], lifetime_seconds=2**62)
    assert (err.code(), reason_of(err)) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")
    assert "Exception calling application" not in err.details()


# ---- SendBatch ---------------------------------------------------------------------

def test_send_batch_queues_every_document_and_each_arrives(pair):
    docs = [(document(f"Công văn lô {i}"), [B]) for i in range(5)]
    with EventWaiter(pair.cb, sent=False) as arrivals:
        results = pair.ca.send_batch(docs)
        ids = [r.envelopes[0].message_id for r in results]
        arrivals.wait(lambda evs: {e.message_id for e in evs if e.type == "arrived"} >= set(ids), TIMEOUT)
    assert [r.envelopes[0].recipient for r in results] == [B] * 5
    assert len({r.doc_id for r in results}) == 5
    subjects = {e.message_id: e.subject for e in pair.cb.inbox_all()}
    assert [subjects[m] for m in ids] == [f"Công văn lô {i}" for i in range(5)]


BATCH_ERRORS = {
    "bad recipient": (lambda docs: docs.__setitem__(2, (document(), ["not-a-code"])),
                      grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST", "documents[2]"),
    "no subject": (lambda docs: docs.__setitem__(1, (pb.Document(content="x"), [B])),
                   grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST", "documents[1]"),
    "too large": (lambda docs: docs[3][0].attachments.add(name="big.bin", data=b"\0" * MAX_SIZE),
                  grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_LARGE", "documents[3]"),
    "empty": (lambda docs: docs.clear(), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST", "at least one"),
    "too many": (lambda docs: docs.extend([(pb.Document(subject="s"), [B])] * 1000),
                 grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST", "at most 1000"),
}


@pytest.mark.parametrize("case", list(BATCH_ERRORS))
def test_a_bad_batch_is_refused_whole_naming_the_document(pair, case):
    spoil, code, reason, named = BATCH_ERRORS[case]
    docs = [(document(f"lô hỏng {i}"), [B]) for i in range(4)]
    spoil(docs)
    before = queued_ids(pair.ca)

    err = rpc_error(pair.ca.send_batch, docs)

    assert (err.code(), reason_of(err)) == (code, reason), err.details()
    assert named in err.details()
    assert queued_ids(pair.ca) == before


# ---- Watch streams are capped ---------------------------------------------------------------

def test_watchers_over_the_cap_are_refused_and_a_closed_stream_frees_its_place(tmp_path):
    """Each Watch holds an API worker for its life: past MAX_WATCHERS the next is refused, so
    watchers can never take every worker from Send, Fetch and the rest."""
    handle = nodes.prepare_node(tmp_path, nodes.make_ca(tmp_path), NodeSpec(A, "Sở A"),
                                {A: f"127.0.0.1:{nodes.free_port()}"})
    node = Node(load_config(handle.config))
    node.start()
    client = handle.client(TIMEOUT)
    streams = []
    try:
        for _ in range(MAX_WATCHERS):
            stream = client.watch(timeout=60)
            assert next(stream).type == "watching"  # the stream holds its place
            streams.append(stream)
        over = client.watch(timeout=TIMEOUT)
        err = rpc_error(next, over)
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert reason_of(err) == Reason.TOO_MANY_STREAMS.name
        assert client.inbox() == []  # the other calls are still served
        streams.pop().cancel()
        # the server hears of the cancel asynchronously: ask again until the place is back (bounded)
        until = time.monotonic() + TIMEOUT
        while True:
            again = client.watch(timeout=TIMEOUT)
            try:
                assert next(again).type == "watching"
                streams.append(again)
                break
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and time.monotonic() < until
    finally:
        for s in streams:
            s.cancel()
        client.close()
        node.stop(grace=1.0)


def test_reflection_v1_lists_the_services_and_describes_the_mailbox(pair):
    from google.protobuf import descriptor_pb2
    from node.pb import reflection_v1_pb2 as v1
    from node.pb import reflection_v1_pb2_grpc as v1_grpc

    with grpc.insecure_channel(pair.ha.api) as channel:
        stub = v1_grpc.ServerReflectionStub(channel)
        listed, described = stub.ServerReflectionInfo(iter([
            v1.ServerReflectionRequest(list_services=""),
            v1.ServerReflectionRequest(file_containing_symbol=MAILBOX.full_name),
        ]), timeout=TIMEOUT)
    names = {s.name for s in listed.list_services_response.service}
    assert {"lienthong.v1.Mailbox", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection"} <= names
    assert "lienthong.v1.Exchange" not in names
    files = [descriptor_pb2.FileDescriptorProto.FromString(b)
             for b in described.file_descriptor_response.file_descriptor_proto]
    assert any(s.name == "Mailbox" for f in files for s in f.service)


def _with_unknown(request: bytes, number: int) -> bytes:
    """`request` plus a varint field `number` that no lienthong proto has (a newer or mistyped client)."""
    key, out = (number << 3) | 0, bytearray()
    while True:
        byte, key = key & 0x7F, key >> 7
        out.append(byte | (0x80 if key else 0))
        if not key:
            return request + bytes(out) + b"\x01"


@pytest.mark.parametrize("where", ["top", "nested", "repeated"])
def test_an_unknown_field_is_refused_over_grpc_naming_it_and_nothing_is_queued(pair, where):
    """As the HTTP face refuses an unknown JSON name: protobuf would keep the field silently and the
    client would believe it took effect."""
    before = len(pair.ca.sent_all())
    if where == "top":
        raw, field = _with_unknown(mpb.SendRequest(document=pb.Document(subject="x"), recipients=[B])
                                   .SerializeToString(), 1007), "#1007"
    else:
        doc = pb.Document(subject="x")
        if where == "nested":
            doc_bytes, field = _with_unknown(doc.SerializeToString(), 999), "document.#999"
        else:
            att = _with_unknown(pb.Attachment(name="a.txt", data=b"a").SerializeToString(), 998)
            doc.attachments.add().ParseFromString(att)
            doc_bytes, field = doc.SerializeToString(), "document.attachments[0].#998"
        raw = mpb.SendRequest(recipients=[B]).SerializeToString() + b"\x0a" + bytes([len(doc_bytes)]) + doc_bytes
    with grpc.insecure_channel(pair.ha.api) as channel:
        call = channel.unary_unary(f"/{MAILBOX.full_name}/Send", request_serializer=None,
                                   response_deserializer=None)
        with pytest.raises(grpc.RpcError) as info:
            call(raw, metadata=(("authorization", f"Bearer {pair.ha.token}"),), timeout=TIMEOUT)
    err = info.value
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and reason_of(err) == "INVALID_REQUEST"
    assert fields_of(err) == [field], err.details()
    assert len(pair.ca.sent_all()) == before
