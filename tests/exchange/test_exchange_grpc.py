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

from node import envelope
from node.client import MailboxClient
from node.config import load_config
from node.envelope import Signer
from node.errors import reason_of
from node.harness import nodes
from node.harness.nodes import NodeSpec
from node.identity import certs
from node.identity.trust import TrustStore
from node.pb import envelope_pb2 as pb
from node.pb import exchange_pb2 as xpb
from node.pb import exchange_pb2_grpc as xgrpc
from node.runtime import Node
from node.store import custody

A, B, C = "000.00.01.H53", "000.00.02.H53", "000.00.03.H53"
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
    w.node, w.handle = start_node(w.root, pki.ca, NodeSpec(B, "agency B", extra={"messages": {"max_size": MAX_SIZE}}))
    w.api = MailboxClient(f"127.0.0.1:{w.node.api_port}", w.handle.token, TIMEOUT)
    a_dir = pki.node_dir(A)
    w.a_key, w.a_cert = (a_dir / "node.key").read_bytes(), (a_dir / "node.pem").read_bytes()
    w.ca_pem = (pki.ca / "ca.pem").read_bytes()
    w.channel = tls_channel(w.node.peer_port, w.a_key, w.a_cert, w.ca_pem)
    w.stub = xgrpc.ExchangeStub(w.channel)
    w.trust = TrustStore.from_files([pki.ca / "ca.pem"])  # real clock, as B's own certificate is issued now
    try:
        wait_serving(w.channel)
        yield w
    finally:
        w.channel.close()
        w.api.close()
        w.node.stop(grace=1.0)


def seal(signer: Signer, recipient: str = B, subject: str = "Công văn", attachment: bytes = b"") -> tuple[pb.Header, bytes]:
    doc = pb.Document(subject=subject, document_id="000.00.01.H53,2026/01/02,7/UBND")
    if attachment:
        doc.attachments.add(name="scan.pdf", content_type="application/pdf", data=attachment)
    return envelope.seal(signer, recipient, pb.Payload(document=doc), lifetime_s=3600)


def check_receipt(w: World, receipt: pb.Receipt, header: pb.Header, raw: bytes) -> pb.ReceiptBody:
    return envelope.verify_receipt(receipt, w.trust, expect_receiver=B, message_id=header.message_id,
                                   envelope_digest=envelope.sha256(raw))


def identity_from(ca_dir: Path, where: Path, code: str, **kw) -> Signer:
    files = certs.init_node(where, code, f"agency {code}", ca_dir, **kw)
    return Signer.from_files(files.key, files.cert)


# ---- bad inputs, each as (raw bytes, gRPC code, reason) ------------------------------

def _resigned(signer: Signer, raw: bytes, edit) -> bytes:
    """Change the header, sign it again with the sender's real key, and redo the trace."""
    env = pb.Envelope.FromString(raw)
    header = pb.Header.FromString(env.header)
    edit(header)
    env.header = header.SerializeToString()
    env.signature = signer.sign(env.header)
    del env.trace[:]
    return envelope.add_trace(env, signer).SerializeToString()


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
    return _resigned(signer, seal(signer)[1], lambda h: h.ClearField("message_id"))


def bad_peer_mismatch(pki, tmp):
    return seal(pki.signer(C))[1]  # A connects, but the last trace entry is C's


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
}


def message_id_of(raw: bytes) -> str:
    try:
        return pb.Header.FromString(pb.Envelope.FromString(raw).header).message_id
    except Exception:
        return ""


# ---- Deliver ------------------------------------------------------------------------

def test_good_envelope_gets_a_verifiable_receipt_and_lands_in_the_mailbox(world):
    header, raw = seal(envelope_signer := None or world_signer(world))
    receipt = world.deliver(raw)
    body = check_receipt(world, receipt, header, raw)
    assert (body.receiver, body.message_id) == (B, header.message_id)

    assert world.inbox_ids().count(header.message_id) == 1
    fetched = world.api.fetch(header.message_id)
    assert fetched.envelope == raw
    assert fetched.entry.sender == A
    assert fetched.payload.document.subject == "Công văn"
    assert [h.code for h in fetched.path] == [A]
    assert fetched.receipt == receipt
    del envelope_signer


def world_signer(world) -> Signer:
    a_dir = Path(world.handle.dir).parent  # unused; kept for symmetry
    del a_dir
    return _A_SIGNER[0]


_A_SIGNER: list[Signer] = []


@pytest.fixture(scope="module", autouse=True)
def _a_signer(pki):
    _A_SIGNER[:] = [pki.signer(A)]
    yield
    _A_SIGNER.clear()
