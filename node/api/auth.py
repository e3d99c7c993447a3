"""Token check for the local API: a bearer token in the `authorization` metadata names the client
(node/api/clients.py), whose scopes must cover the call, and the call runs as that client."""
from __future__ import annotations

import grpc

from ..errors import Reason, Rejected
from ..interceptor import SERVICE_PREFIX, ErrorInterceptor, with_behavior
from .clients import Client, Clients, acting, authorize
from .strict import StrictRequestInterceptor


class TokenInterceptor(grpc.ServerInterceptor):
    """Guards every lienthong service; health and reflection stay open for generic tools.

    A call without a known token runs a stand-in that raises Rejected(UNAUTHENTICATED), one outside the
    client's scopes a stand-in that raises NOT_PERMITTED, so the ErrorInterceptor ahead of this one answers
    them like any other refusal. A call let through runs with `acting(client)`."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        if not method.startswith(SERVICE_PREFIX):
            return continuation(handler_call_details)
        client = None
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization":
                client = self.clients.identify(value)
                break
        return admitted(continuation(handler_call_details), client, method)


class CallerKnown(grpc.ServerInterceptor):
    """TokenInterceptor's part once the caller is known (a host found it, and its agency, by the token):
    the scopes, then the call runs as `client`; None, or `refusal`: the call is refused with it."""

    def __init__(self, client: Client | None, refusal: Rejected | None = None) -> None:
        self.client, self.refusal = client, refusal

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        if not method.startswith(SERVICE_PREFIX):
            return continuation(handler_call_details)
        return admitted(continuation(handler_call_details), self.client, method, self.refusal)


def admitted(handler, client: Client | None, method: str, refusal: Rejected | None = None):
    """`handler` (for its kind: a stream is refused as a stream) run as `client`, or refusing the call."""
    if refusal is None and client is None:
        refusal = Rejected(Reason.UNAUTHENTICATED)
    elif refusal is None:
        try:
            authorize(client, method)
        except Rejected as r:
            refusal = r
    if handler is None:
        return grpc.unary_unary_rpc_method_handler(_refuse(refusal or Rejected(Reason.UNAUTHENTICATED)))
    if refusal is not None:
        return with_behavior(handler, lambda behavior, streaming: _refuse(refusal))
    return with_behavior(handler, lambda behavior, streaming: _as(client, behavior, streaming))


def _refuse(refusal: Rejected):
    def deny(request, context):
        raise refusal
    return deny


def _as(client: Client, behavior, streaming: bool):
    if streaming:
        def stream(request, context):
            with acting(client):
                yield from behavior(request, context)
        return stream

    def unary(request, context):
        with acting(client):
            return behavior(request, context)
    return unary


def api_interceptors(clients: Clients | str) -> list[grpc.ServerInterceptor]:
    """The local API's interceptors, in the order that matters (errors first, then the token, then
    the request's shape: an unauthenticated caller learns nothing about what the node knows). A bare
    token: that one client, "default", with every scope."""
    if isinstance(clients, str):
        clients = Clients.single(clients)
    return [ErrorInterceptor(), TokenInterceptor(clients), StrictRequestInterceptor()]


def call_metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def call_metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)
