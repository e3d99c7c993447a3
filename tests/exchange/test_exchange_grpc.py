"""The node-to-node surface over real gRPC: a running node B behind mutual TLS, and a
client that is node A (A's real key and certificate). Every refusal must carry its
gRPC status and stable reason, and must leave B's mailbox exactly as it was.
"""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from node.clock import SYSTEM, FakeClock
from node import envelope, receipts
from node.client import MailboxClient
from node.config import load_config
from node.envelope import Signer
from node.grpc_errors import error_info, reason_of
from node.harness import nodes
from node.harness.nodes import NodeSpec
from node.identity import certs
from node.identity.trust import TrustStore
from node.pb import envelope_pb2 as pb
from node.pb import exchange_pb2 as xpb
from node.pb import exchange_pb2_grpc as xgrpc
from node.runtime import Node
from node.store import custody
from tests.hostile.world import forged

A, B, C = "000.00.01.H53", "000.00.02.H53", "000.00.03.H53"
X, Y = "000.01.02.H53", "001.01.02.H53"  # B's child, and X's child: Y's mail to B comes through X
NOT_SERVED = "000.00.09.H53"  # a sibling of B: neither B nor an agency below it
MAX_SIZE = 20_000
TIMEOUT = 10.0


# ---- fixtures ---------------------------------------------------------------------

def start_node(root: Path, ca_dir: Path, spec: NodeSpec, **kw) -> tuple[Node, nodes.NodeHandle]:
    handle = nodes.prepare_node(root, ca_dir, spec, {spec.code: "127.0.0.1:0"}, **kw)
    node = Node(load_config(handle.config))
    node.start()
    return node, handle


def wait_serving(channel: grpc.Channel) -> None:
    """Readiness by gRPC health (waits for the connection, never sleeps)."""
    resp = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""),
                                                     timeout=TIMEOUT, wait_for_ready=True)
    assert resp.status == health_pb2.HealthCheckResponse.SERVING


def tls_channel(port: int, key_pem: bytes, cert_pem: bytes | None, roots: bytes, expect: str = B) -> grpc.Channel:
    creds = grpc.ssl_channel_credentials(root_certificates=roots, private_key=key_pem if cert_pem else None,
                                         certificate_chain=cert_pem)
    return grpc.secure_channel(f"127.0.0.1:{port}", creds,
                               options=[("grpc.ssl_target_name_override", certs.tls_name(expect))])


class World:
    node: Node
    handle: nodes.NodeHandle
    api: MailboxClient
    channel: grpc.Channel
    stub: xgrpc.ExchangeStub
    trust: TrustStore
    ca_pem: bytes
    a_key: bytes
    a_cert: bytes
    root: Path

    def inbox_ids(self) -> list[str]:
        return [e.message_id for e in self.api.inbox_all()]

    def deliver(self, raw: bytes) -> pb.Receipt:
        return self.stub.Deliver(xpb.DeliverRequest(envelope=raw), timeout=TIMEOUT)


@pytest.fixture(scope="module")
def world(pki, tmp_path_factory):
    """Node B (mTLS, max_size 20 kB) and an Exchange client holding A's real identity."""
    w = World()
    w.root = tmp_path_factory.mktemp("exchange")
    w.node, w.handle = start_node(w.root, pki.ca, NodeSpec(B, "agency B", peers={A: "127.0.0.1:1", X: "127.0.0.1:1"},
                                                          extra={"messages": {"max_size": MAX_SIZE}}))
    w.api = MailboxClient(f"127.0.0.1:{w.node.api_port}", w.handle.token, TIMEOUT)
    a_dir = pki.node_dir(A)
    w.a_key, w.a_cert = (a_dir / "node.key").read_bytes(), (a_dir / "node.pem").read_bytes()
    w.ca_pem = (pki.ca / "ca.pem").read_bytes()
    w.channel = tls_channel(w.node.peer_port, w.a_key, w.a_cert, w.ca_pem)
    w.stub = xgrpc.ExchangeStub(w.channel)
    w.extra_channels = []
    w.trust = TrustStore.from_files([pki.ca / "ca.pem"])  # real clock, as B's own certificate is issued now
    try:
        wait_serving(w.channel)
        yield w
    finally:
        for c in [w.channel, *w.extra_channels]:
            c.close()
        w.api.close()
        w.node.stop(grace=1.0)


def rpc_error(call, *args, **kw) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, **kw)
    return info.value


def as_peer(w: World, pki, code: str) -> xgrpc.ExchangeStub:
    """An Exchange client holding `code`'s real identity (its channel closes with the module)."""
    d = pki.node_dir(code)
    channel = tls_channel(w.node.peer_port, (d / "node.key").read_bytes(), (d / "node.pem").read_bytes(), w.ca_pem)
    w.extra_channels.append(channel)
    return xgrpc.ExchangeStub(channel)


def seal(signer: Signer, recipient: str = B, subject: str = "Công văn", attachment: bytes = b"") -> tuple[pb.Header, bytes]:
    doc = pb.Document(subject=subject, document_id="000.00.01.H53,2026/01/02,7/UBND")
    if attachment:
        doc.attachments.add(name="scan.pdf", content_type="application/pdf", data=attachment)
    return envelope.seal(signer, recipient, pb.Payload(document=doc), lifetime_s=3600)


def check_receipt(w: World, receipt: pb.Receipt, header: pb.Header, raw: bytes) -> pb.ReceiptBody:
    return receipts.verify(receipt, w.trust, expect_receiver=B, message_id=header.message_id,
                                   envelope_digest=envelope.sha256(raw))


def identity_from(ca_dir: Path, where: Path, code: str, **kw) -> Signer:
    files = certs.init_node(where, code, f"agency {code}", ca_dir, **kw)
    return Signer.from_files(files.key, files.cert)


# ---- bad inputs, each as (raw bytes, gRPC code, reason) ------------------------------

def _edited(raw: bytes, edit) -> bytes:
    env = pb.Envelope.FromString(raw)
    edit(env)
    return env.SerializeToString()


def bad_malformed(pki, tmp):
    return b"\xff\xff\xff\xff not an envelope"


def bad_signature(pki, tmp):
    signer = pki.signer(A)
    return _edited(seal(signer)[1], lambda env: setattr(env, "signature", signer.sign(b"something else")))


def bad_digest(pki, tmp):
    other = pb.Payload(document=pb.Document(subject="tampered")).SerializeToString()
    return _edited(seal(pki.signer(A))[1], lambda env: setattr(env, "payload", other))


def bad_no_sender_cert(pki, tmp):
    return _edited(seal(pki.signer(A))[1], lambda env: env.ClearField("sender_cert"))


def bad_foreign_ca(pki, tmp):
    other_ca = nodes.make_ca(tmp / "other")
    return seal(identity_from(other_ca, tmp / "foreign", A))[1]


def bad_expired_cert(pki, tmp):
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=30)
    return seal(identity_from(pki.ca, tmp / "expired", A, not_before=old, days=1))[1]


def bad_not_for_b(pki, tmp):
    return seal(pki.signer(A), recipient=NOT_SERVED)[1]


def bad_too_large(pki, tmp):
    return seal(pki.signer(A), attachment=bytes(range(256)) * 120)[1]  # 30 720 bytes of attachment


def bad_missing_message_id(pki, tmp):
    signer = pki.signer(A)
    return forged(seal(signer)[1], signer, lambda h: h.ClearField("message_id"))


def bad_peer_mismatch(pki, tmp):
    return seal(pki.signer(C))[1]  # A connects, but the last trace entry is C's


def bad_expired_envelope(pki, tmp):
    an_hour_ago = FakeClock(SYSTEM.now_ms() - 3600_000)
    return envelope.seal(pki.signer(A), B, pb.Payload(document=pb.Document(subject="late")), clock=an_hour_ago,
                         lifetime_s=60)[1]


def bad_created_beyond_year_9999(pki, tmp):
    signer = pki.signer(A)
    return forged(seal(signer)[1], signer, lambda h: setattr(h, "created_ms", 10**15))


def bad_lifetime_backwards(pki, tmp):
    return envelope.seal(pki.signer(A), B, pb.Payload(document=pb.Document(subject="late")), lifetime_s=-60)[1]


def bad_sender_mismatch(pki, tmp):
    signer = pki.signer(A)
    return forged(seal(signer)[1], signer, lambda h: setattr(h, "sender", C))


def bad_relay_mark_stripped(pki, tmp):
    """C's envelope handed over by A, but without A's relay mark: the path hides a hop."""
    relayed = envelope.add_trace(pb.Envelope.FromString(seal(pki.signer(C))[1]), pki.signer(A))
    return _edited(relayed.SerializeToString(), lambda env: env.ClearField("trace"))


def bad_relay_mark_not_chained(pki, tmp):
    raw = envelope.add_trace(pb.Envelope.FromString(seal(pki.signer(C))[1]), pki.signer(A)).SerializeToString()

    def unchain(env):
        body = pb.TraceBody.FromString(env.trace[0].body)
        body.prev_sha256 = b"\x00" * 32
        env.trace[0].body = body.SerializeToString()
        env.trace[0].signature = pki.signer(A).sign(env.trace[0].body)
    return _edited(raw, unchain)


def bad_trace_from_other_envelope(pki, tmp):
    a, c = pki.signer(A), pki.signer(C)
    other = envelope.add_trace(pb.Envelope.FromString(seal(c)[1]), a)
    raw = envelope.add_trace(pb.Envelope.FromString(seal(c)[1]), a).SerializeToString()
    return _edited(raw, lambda env: env.trace[0].CopyFrom(other.trace[0]))


def bad_priority(pki, tmp):
    signer = pki.signer(A)
    return forged(seal(signer)[1], signer, lambda h: setattr(h, "priority", 7))


def bad_kind_mismatch(pki, tmp):
    signer = pki.signer(A)
    return forged(seal(signer)[1], signer, lambda h: setattr(h, "kind", pb.STATUS))


def bad_payload_bytes(pki, tmp):
    signer = pki.signer(A)
    return forged(seal(signer)[1], signer, payload=b"\xff\xff\xff\xff")


BAD = {
    "malformed": (bad_malformed, grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED"),
    "bad-signature": (bad_signature, grpc.StatusCode.PERMISSION_DENIED, "BAD_SIGNATURE"),
    "digest-mismatch": (bad_digest, grpc.StatusCode.INVALID_ARGUMENT, "DIGEST_MISMATCH"),
    "no-sender-cert": (bad_no_sender_cert, grpc.StatusCode.PERMISSION_DENIED, "UNKNOWN_SENDER"),
    "foreign-ca": (bad_foreign_ca, grpc.StatusCode.PERMISSION_DENIED, "UNTRUSTED_CERT"),
    "expired-cert": (bad_expired_cert, grpc.StatusCode.PERMISSION_DENIED, "CERT_EXPIRED"),
    "not-for-this-node": (bad_not_for_b, grpc.StatusCode.FAILED_PRECONDITION, "NOT_FOR_THIS_NODE"),
    "too-large": (bad_too_large, grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_LARGE"),
    "missing-field": (bad_missing_message_id, grpc.StatusCode.INVALID_ARGUMENT, "MISSING_FIELD"),
    "peer-mismatch": (bad_peer_mismatch, grpc.StatusCode.PERMISSION_DENIED, "PEER_MISMATCH"),
    "expired-envelope": (bad_expired_envelope, grpc.StatusCode.FAILED_PRECONDITION, "EXPIRED"),
    "created-beyond-9999": (bad_created_beyond_year_9999, grpc.StatusCode.INVALID_ARGUMENT, "BAD_TIME"),
    "lifetime-backwards": (bad_lifetime_backwards, grpc.StatusCode.INVALID_ARGUMENT, "BAD_TIME"),
    "sender-mismatch": (bad_sender_mismatch, grpc.StatusCode.PERMISSION_DENIED, "SENDER_MISMATCH"),
    "relay-mark-stripped": (bad_relay_mark_stripped, grpc.StatusCode.PERMISSION_DENIED, "PEER_MISMATCH"),
    "relay-mark-not-chained": (bad_relay_mark_not_chained, grpc.StatusCode.PERMISSION_DENIED, "BAD_TRACE"),
    "trace-of-other-envelope": (bad_trace_from_other_envelope, grpc.StatusCode.PERMISSION_DENIED, "BAD_TRACE"),
    "priority-7": (bad_priority, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST"),
    "kind-mismatch": (bad_kind_mismatch, grpc.StatusCode.INVALID_ARGUMENT, "MISSING_FIELD"),
    "payload-does-not-parse": (bad_payload_bytes, grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED"),
}


def message_id_of(raw: bytes) -> str:
    try:
        return pb.Header.FromString(pb.Envelope.FromString(raw).header).message_id
    except Exception:
        return ""


# ---- Deliver ------------------------------------------------------------------------

def test_good_envelope_gets_a_verifiable_receipt_and_lands_in_the_mailbox(world, pki):
    header, raw = seal(pki.signer(A))
    receipt = world.deliver(raw)

    body = check_receipt(world, receipt, header, raw)
    assert (body.receiver, receipt.message_id) == (B, header.message_id)
    assert world.inbox_ids().count(header.message_id) == 1
    fetched = world.api.fetch(header.message_id)
    assert fetched.envelope == raw
    assert fetched.entry.sender == A
    assert fetched.payload.document.subject == "Công văn"
    assert fetched.signature_verified
    assert [h.code for h in fetched.path] == [A, B]
    assert fetched.receipt == receipt


def test_redelivery_returns_the_identical_receipt_and_stores_one_copy(world, pki):
    header, raw = seal(pki.signer(A))
    first = world.deliver(raw)
    before = world.inbox_ids()

    again = world.deliver(raw)

    assert again.SerializeToString() == first.SerializeToString()
    assert world.inbox_ids() == before
    assert before.count(header.message_id) == 1


@pytest.mark.parametrize("case", list(BAD))
def test_bad_envelope_is_refused_with_status_and_reason_and_changes_nothing(world, pki, tmp_path, case):
    make, code, reason = BAD[case]
    raw = make(pki, tmp_path)
    before = world.inbox_ids()

    with pytest.raises(grpc.RpcError) as info:
        world.deliver(raw)

    err = info.value
    assert (err.code(), reason_of(err)) == (code, reason), err.details()
    assert error_info(err).reason == reason and not err.details().startswith(reason)  # in the details, not the text
    assert world.inbox_ids() == before
    mid = message_id_of(raw)
    if mid:
        assert custody.stored_receipt(world.node.db, mid) is None  # not taken into custody either


def test_bad_envelope_does_not_poison_its_message_id(world, pki):
    """A refused envelope leaves no trace in the dedup table: the genuine one still goes in."""
    signer = pki.signer(A)
    header, good = seal(signer)
    forged = _edited(good, lambda env: setattr(env, "signature", signer.sign(b"forged")))
    with pytest.raises(grpc.RpcError) as info:
        world.deliver(forged)
    assert reason_of(info.value) == "BAD_SIGNATURE"

    receipt = world.deliver(good)
    check_receipt(world, receipt, header, good)
    assert header.message_id in world.inbox_ids()


def test_same_message_id_with_other_content_is_a_conflict(world, pki):
    signer = pki.signer(A)
    header, raw = seal(signer, subject="original")
    world.deliver(raw)
    _, other = envelope.seal(signer, B, pb.Payload(document=pb.Document(subject="substitute")), lifetime_s=3600,
                             message_id=header.message_id)

    with pytest.raises(grpc.RpcError) as info:
        world.deliver(other)

    assert (info.value.code(), reason_of(info.value)) == (grpc.StatusCode.ALREADY_EXISTS, "DUPLICATE_CONFLICT")
    assert world.api.fetch(header.message_id).envelope == raw
    assert world.inbox_ids().count(header.message_id) == 1


def test_envelope_relayed_by_the_connecting_peer_is_accepted(world, pki):
    """Y's envelope handed on by X (B's child, Y's parent): the last trace entry is the peer, the path shows both."""
    header, raw = seal(pki.signer(Y), subject="via X")
    relayed = envelope.add_trace(pb.Envelope.FromString(raw), pki.signer(X)).SerializeToString()

    receipt = as_peer(world, pki, X).Deliver(xpb.DeliverRequest(envelope=relayed), timeout=TIMEOUT)

    check_receipt(world, receipt, header, relayed)
    got = world.api.fetch(header.message_id)
    assert got.entry.sender == Y
    assert [h.code for h in got.path] == [Y, X, B]


def test_a_trusted_node_that_is_no_neighbour_may_hand_over_nothing(world, pki):
    """Deny by default: C holds a valid certificate but is not B's parent, child or configured peer."""
    _, raw = seal(pki.signer(C))
    before = world.inbox_ids()
    err = rpc_error(as_peer(world, pki, C).DeliverBatch, xpb.DeliverBatchRequest(envelopes=[raw]), timeout=TIMEOUT)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and reason_of(err) == "NOT_A_NEIGHBOUR"
    assert world.inbox_ids() == before


def test_a_neighbour_may_not_hand_over_what_the_tree_routes_elsewhere(world, pki):
    """A (a configured peer) relaying C's envelope: the tree routes C → B through their province, not A."""
    header, raw = seal(pki.signer(C), subject="off route")
    relayed = envelope.add_trace(pb.Envelope.FromString(raw), pki.signer(A)).SerializeToString()
    before = world.inbox_ids()
    err = rpc_error(world.deliver, relayed)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and reason_of(err) == "OFF_ROUTE"
    assert world.inbox_ids() == before


# ---- DeliverBatch -------------------------------------------------------------------

def test_mixed_batch_gets_one_outcome_per_envelope_in_order(world, pki, tmp_path):
    signer = pki.signer(A)
    good1, good2 = seal(signer, subject="one"), seal(signer, subject="two")
    batch = [
        (good1, None),
        (None, ("malformed", bad_malformed(pki, tmp_path))),
        (good2, None),
        (None, ("BAD_SIGNATURE", bad_signature(pki, tmp_path))),
        (None, ("NOT_FOR_THIS_NODE", bad_not_for_b(pki, tmp_path))),
        (good1, None),  # the same bytes again in the same batch: same custody, same receipt
    ]
    raws = [g[1] if g else b[1] for g, b in batch]
    before = world.inbox_ids()

    resp = world.stub.DeliverBatch(xpb.DeliverBatchRequest(envelopes=raws), timeout=TIMEOUT)

    assert len(resp.outcomes) == len(batch)
    kinds = [o.WhichOneof("result") for o in resp.outcomes]
    assert kinds == ["receipt", "rejection", "receipt", "rejection", "rejection", "receipt"]
    for (good, _), outcome in zip(batch, resp.outcomes):
        if good:
            check_receipt(world, outcome.receipt, good[0], good[1])
    assert [o.rejection.reason for o in resp.outcomes if o.HasField("rejection")] == \
        ["MALFORMED", "BAD_SIGNATURE", "NOT_FOR_THIS_NODE"]
    assert all(o.rejection.message and not o.rejection.message.startswith(o.rejection.reason)
               for o in resp.outcomes if o.HasField("rejection"))  # the reason is its own field, not repeated
    assert resp.outcomes[5].receipt == resp.outcomes[0].receipt
    added = [m for m in world.inbox_ids() if m not in before]
    assert sorted(added) == sorted([good1[0].message_id, good2[0].message_id])


def test_batch_answers_a_duplicate_with_the_stored_receipt(world, pki):
    header, raw = seal(pki.signer(A))
    first = world.deliver(raw)

    resp = world.stub.DeliverBatch(xpb.DeliverBatchRequest(envelopes=[raw]), timeout=TIMEOUT)

    assert [o.WhichOneof("result") for o in resp.outcomes] == ["receipt"]
    assert resp.outcomes[0].receipt.SerializeToString() == first.SerializeToString()
    assert world.inbox_ids().count(header.message_id) == 1


def test_empty_batch_gets_an_empty_answer(world):
    resp = world.stub.DeliverBatch(xpb.DeliverBatchRequest(envelopes=[]), timeout=TIMEOUT)
    assert list(resp.outcomes) == []


# ---- mutual TLS ---------------------------------------------------------------------

def _refused(world, channel: grpc.Channel, pki) -> grpc.RpcError:
    before = world.inbox_ids()
    _, raw = seal(pki.signer(A))
    try:
        with pytest.raises(grpc.RpcError) as info:
            xgrpc.ExchangeStub(channel).Deliver(xpb.DeliverRequest(envelope=raw), timeout=TIMEOUT)
    finally:
        channel.close()
    assert world.inbox_ids() == before
    assert message_id_of(raw) not in world.inbox_ids()
    return info.value


def test_client_certificate_from_a_foreign_ca_cannot_call(world, pki, tmp_path):
    other_ca = nodes.make_ca(tmp_path / "other")
    files = certs.init_node(tmp_path / "foreign", A, "impostor A", other_ca)
    channel = tls_channel(world.node.peer_port, files.key.read_bytes(), files.cert.read_bytes(), world.ca_pem)

    err = _refused(world, channel, pki)

    assert err.code() == grpc.StatusCode.UNAVAILABLE, err.details()
    assert reason_of(err) is None  # refused in the handshake, before any servicer ran


def test_client_without_certificate_cannot_call(world, pki):
    channel = tls_channel(world.node.peer_port, b"", None, world.ca_pem)

    err = _refused(world, channel, pki)

    assert err.code() == grpc.StatusCode.UNAVAILABLE, err.details()
    assert reason_of(err) is None


def test_client_expecting_another_agency_refuses_the_server(world, pki):
    """The client pins the code it means to reach; B's certificate is not C's."""
    channel = tls_channel(world.node.peer_port, world.a_key, world.a_cert, world.ca_pem, expect=C)

    err = _refused(world, channel, pki)

    assert err.code() == grpc.StatusCode.UNAVAILABLE, err.details()


def test_plain_text_client_cannot_call_a_tls_node(world, pki):
    err = _refused(world, grpc.insecure_channel(f"127.0.0.1:{world.node.peer_port}"), pki)

    assert err.code() == grpc.StatusCode.UNAVAILABLE, err.details()


# ---- plain-text mode ----------------------------------------------------------------

def test_plain_text_node_warns_at_start_and_accepts_an_insecure_channel(pki, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="lienthong"):
        node, handle = start_node(tmp_path, pki.ca, NodeSpec(B, "agency B"), insecure=True)
    channel = grpc.insecure_channel(f"127.0.0.1:{node.peer_port}")
    api = MailboxClient(f"127.0.0.1:{node.api_port}", handle.token, TIMEOUT)
    try:
        warnings = [r for r in caplog.records if r.name == "lienthong" and r.levelno == logging.WARNING]
        assert any("PLAIN-TEXT" in r.getMessage() and "insecure_plaintext" in r.getMessage() for r in warnings)
        wait_serving(channel)

        header, raw = seal(pki.signer(A))
        receipt = xgrpc.ExchangeStub(channel).Deliver(xpb.DeliverRequest(envelope=raw), timeout=TIMEOUT)

        body = receipts.verify(receipt, TrustStore.from_files([pki.ca / "ca.pem"]), expect_receiver=B,
                                       message_id=header.message_id, envelope_digest=envelope.sha256(raw))
        assert body.receiver == B
        assert [e.message_id for e in api.inbox_all()] == [header.message_id]
    finally:
        channel.close()
        api.close()
        node.stop(grace=1.0)


def test_tls_node_logs_no_plain_text_warning(pki, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="lienthong"):
        node, _ = start_node(tmp_path, pki.ca, NodeSpec(B, "agency B"))
    try:
        assert not any("PLAIN-TEXT" in r.getMessage() for r in caplog.records)
    finally:
        node.stop(grace=1.0)
