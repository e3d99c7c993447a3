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

It also keeps delivery served whatever the registry is doing. A Registry call may wait on other
nodes (a lookup passed down to a child that answers slowly held a worker for the whole call
deadline: 100 of them took honest delivery from 0.06 s to 26 s), so Registry calls get a share of
the peer workers (`limits.registry_share`, REGISTRY_BUSY past it) and each peer only a few of that
share (`limits.registry_calls_per_peer`, PEER_BUSY past it); a refusal is answered at once, holding
nothing. Exchange calls are not counted: the other workers are theirs.

grpcio's health Watch holds a worker for as long as the caller listens, and a caller may open as many
as it likes: a peer holding 16 would leave no worker for delivery. So health Watch streams have places
of their own, a few per peer (HEALTH_WATCHES_PER_PEER) within a few for all (HEALTH_WATCHES, over every
agency of a host: `watches` is the host's one counter), TOO_MANY_STREAMS past them, answered at once.
Nodes ask each other's health with Check, which is not counted.
"""
from __future__ import annotations

from typing import Callable

import grpc

from .config import LimitsSettings
from .errors import Reason, Rejected
from .exchange.service import PeerIdentity
from .interceptor import Behavior, refuse, with_behavior
from .limits import InFlight

EXCHANGE_PREFIX = "/lienthong.v1.Exchange/"
REGISTRY_PREFIX = "/lienthong.v1.Registry/"
HEALTH_WATCH = "/grpc.health.v1.Health/Watch"
HEALTH_WATCHES_PER_PEER = 2  # health Watch streams one peer may hold open
HEALTH_WATCHES = 4  # of every peer together (a quarter of the 16 peer workers; the registry's share is 6)


class PeerGate(grpc.ServerInterceptor):
    """Put it first in the peer server's interceptors: it answers its refusals itself."""

    def __init__(self, peers: PeerIdentity, stale: Callable[[], str | None] = lambda: None,
                 limits: LimitsSettings = LimitsSettings(), watches: InFlight | None = None) -> None:
        """`watches`: health Watch streams in progress, by peer and ALL (a host passes its one counter)."""
        self.peers, self.stale = peers, stale
        self.limits = limits
        self.registry = InFlight(limits.registry_share)  # Registry calls in progress, by peer and ALL
        self.watches = watches if watches is not None else InFlight(HEALTH_WATCHES)

    def use_limits(self, limits: LimitsSettings) -> None:
        """`limits.registry_share` and `registry_calls_per_peer` from a reload: the next call is held to them
        (calls in progress keep their places; a lowered bound refuses until they are under it)."""
        self.limits = limits

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        exchange, registry = method.startswith(EXCHANGE_PREFIX), method.startswith(REGISTRY_PREFIX)
        watch = method == HEALTH_WATCH
        if self.peers.insecure and not registry and not watch:
            return handler
        return with_behavior(handler, lambda behavior, streaming: self._gated(behavior, streaming, exchange,
                                                                              registry, watch))

    def _refusal(self, context: grpc.ServicerContext, exchange: bool) -> tuple[Rejected | None, str]:
        if self.peers.insecure:
            return None, "plain-text peer"
        try:
            peer = self.peers.of(context) or "plain-text peer"
        except Rejected as r:
            return r, ""
        if exchange and self.stale():
            return Rejected(Reason.CRL_STALE), peer  # the why stays in our log and health: peers get the reason
        return None, peer

    def _enter(self, peer: str) -> Rejected | None:
        """Take a place for a Registry call of `peer`'s (None), or the refusal; `_leave` gives it back."""
        own, total = self.limits.registry_calls_per_peer, self.limits.registry_share
        refused = self.registry.enter_within(peer, own, total)
        if refused == "own":
            return Rejected(Reason.PEER_BUSY, f"{peer} already has {own} registry calls in "
                            f"progress here (limits.registry_calls_per_peer)", metadata={"limit": str(own)})
        if refused == "total":
            return Rejected(Reason.REGISTRY_BUSY, f"{total} registry calls in progress here "
                            f"(limits.registry_share)", metadata={"limit": str(total)})
        return None

    def _leave(self, peer: str) -> None:
        self.registry.leave_within(peer)

    def _watch(self, peer: str) -> Rejected | None:
        """Take a place for a health Watch stream of `peer`'s (None), or the refusal; `_unwatch` gives it back."""
        refused = self.watches.enter_within(peer, HEALTH_WATCHES_PER_PEER, HEALTH_WATCHES)
        if refused == "own":
            return Rejected(Reason.TOO_MANY_STREAMS, f"{peer} already holds {HEALTH_WATCHES_PER_PEER} health Watch "
                            "streams here; close one (or ask with Check)",
                            metadata={"limit": str(HEALTH_WATCHES_PER_PEER)})
        if refused == "total":
            return Rejected(Reason.TOO_MANY_STREAMS, f"{HEALTH_WATCHES} health Watch streams are open here; "
                            "ask with Check", metadata={"limit": str(HEALTH_WATCHES)})
        return None

    def _unwatch(self, peer: str) -> None:
        self.watches.leave_within(peer)

    def _gated(self, behavior: Behavior, streaming: bool, exchange: bool, registry: bool,
               watch: bool = False) -> Behavior:
        def admitted(context) -> str:
            refused, peer = self._refusal(context, exchange)
            if refused is None and registry:
                refused = self._enter(peer)
            if refused is None and watch:
                refused = self._watch(peer)
            if refused is not None:
                refuse(context, refused)
            return peer

        if streaming:
            def gated_stream(request, context):
                peer = admitted(context)
                try:
                    yield from behavior(request, context)
                finally:
                    if registry:
                        self._leave(peer)
                    if watch:
                        self._unwatch(peer)
            return gated_stream

        def gated(request, context):
            peer = admitted(context)
            try:
                return behavior(request, context)
            finally:
                if registry:
                    self._leave(peer)
        return gated
