"""The Exchange gRPC servicer: identifies the connecting peer from its TLS certificate.

Refusals are raised as Rejected; node.interceptor turns them into statuses."""
from __future__ import annotations

import threading

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..errors import Reason, Rejected
from ..identity.trust import TrustStore
from ..pb import envelope_pb2 as pb
from ..pb import exchange_pb2 as xpb
from ..pb import exchange_pb2_grpc as xgrpc
from .intake import Intake


class PeerIdentity:
    """The agency code proven by a caller's TLS client certificate (None in plain-text mode).

    The certificate is checked against the trust store on every call (its chain once, from the
    store's cache; revocation and validity each time), so a CRL taken while a connection is up
    refuses that connection's next call."""

    CACHE_LIMIT = 10_000

    def __init__(self, trust: TrustStore, insecure: bool) -> None:
        self.trust = trust
        self.insecure = insecure
        self._der: dict[bytes, bytes] = {}  # PEM as the handshake gave it -> DER
        self._lock = threading.Lock()

    def of(self, context: grpc.ServicerContext) -> str | None:
        return self.with_cert(context)[0]

    def with_cert(self, context: grpc.ServicerContext) -> tuple[str | None, bytes | None]:
        """The caller's code and its certificate (DER), (None, None) in plain-text mode."""
        if self.insecure:
            return None, None
        pems = context.auth_context().get("x509_pem_cert")
        if not pems:
            raise Rejected(Reason.UNTRUSTED_CERT, "no client certificate")
        with self._lock:
            der = self._der.get(pems[0])
        if der is None:
            try:
                der = x509.load_pem_x509_certificate(pems[0]).public_bytes(serialization.Encoding.DER)
            except Exception:  # noqa: BLE001 - the TLS layer took it, but we cannot read it: trust nothing
                raise Rejected(Reason.UNTRUSTED_CERT, "client certificate does not parse") from None
            with self._lock:
                if len(self._der) >= self.CACHE_LIMIT:
                    self._der.clear()
                self._der[pems[0]] = der
        return self.trust.identify(der).code, der


class ExchangeService(xgrpc.ExchangeServicer):
    def __init__(self, intake: Intake, peers: PeerIdentity) -> None:
        self.intake = intake
        self.peers = peers

    def Deliver(self, request: xpb.DeliverRequest, context: grpc.ServicerContext) -> pb.Receipt:
        result = self.intake.receive([request.envelope], *self.peers.with_cert(context))[0]
        if isinstance(result, Rejected):
            raise result
        return result

    def DeliverBatch(self, request: xpb.DeliverBatchRequest, context: grpc.ServicerContext) -> xpb.DeliverBatchResponse:
        results = self.intake.receive(list(request.envelopes), *self.peers.with_cert(context))
        return xpb.DeliverBatchResponse(outcomes=to_outcomes(results))


def to_outcomes(results: list[pb.Receipt | Rejected]) -> list[xpb.Outcome]:
    """Per-envelope results as they travel back in a batch answer: data, not a status, but the same catalogue."""
    return [
        xpb.Outcome(rejection=xpb.Rejection(reason=r.reason.wire, message=r.public_detail))
        if isinstance(r, Rejected) else xpb.Outcome(receipt=r)
        for r in results
    ]
