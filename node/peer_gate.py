"""The peer server's first check on every call: the caller's certificate is still trusted (not revoked).

Why here and not in the handshake: gRPC Python gives no hook into the TLS handshake that could
consult a CRL (the C core checks the chain to `tls.trust_anchors` only; its CRL options are not
exposed), so a revoked certificate still completes the handshake. This interceptor is first in the
peer server's list: before any servicer runs (Exchange, Registry, and grpcio's own health and
reflection too) it reads the client certificate from the call's auth context and asks the trust
store, which refuses a revoked one with CERT_REVOKED. The check is per call, not per connection,
so a CRL taken while a connection is up refuses that connection's very next call.

While this node's own CRL is stale it cannot tell whose certificate was revoked since, so it also
refuses Exchange calls (CRL_STALE, which a sender retries); Registry calls still pass, so that a
fresh CRL can reach it (pushed by its parent, or in the answer to its heartbeat).
"""
from __future__ import annotations

from typing import Callable

import grpc

from .errors import Reason, Rejected
from .exchange.service import PeerIdentity
from .interceptor import Behavior, refuse, with_behavior

EXCHANGE_PREFIX = "/lienthong.v1.Exchange/"


class PeerGate(grpc.ServerInterceptor):
    """Put it first in the peer server's interceptors: it answers its refusals itself."""

    def __init__(self, peers: PeerIdentity, stale: Callable[[], str | None] = lambda: None) -> None:
        self.peers, self.stale = peers, stale

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or self.peers.insecure:
            return handler
        exchange = handler_call_details.method.startswith(EXCHANGE_PREFIX)
        return with_behavior(handler, lambda behavior, streaming: self._gated(behavior, streaming, exchange))

    def _refusal(self, context: grpc.ServicerContext, exchange: bool) -> Rejected | None:
        try:
            self.peers.of(context)
        except Rejected as r:
            return r
        if exchange and self.stale():
            return Rejected(Reason.CRL_STALE)  # the why stays in our log and health: peers get the reason
        return None

    def _gated(self, behavior: Behavior, streaming: bool, exchange: bool) -> Behavior:
        if streaming:
            def gated_stream(request, context):
                if (refused := self._refusal(context, exchange)) is not None:
                    refuse(context, refused)
                yield from behavior(request, context)
            return gated_stream

        def gated(request, context):
            if (refused := self._refusal(context, exchange)) is not None:
                refuse(context, refused)
            return behavior(request, context)
        return gated
