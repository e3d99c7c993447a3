"""Token check for the local API: a bearer token in the `authorization` metadata."""
from __future__ import annotations

import hmac

import grpc

from ..errors import Reason, Rejected
from ..interceptor import SERVICE_PREFIX, ErrorInterceptor, with_behavior
from .strict import StrictRequestInterceptor


class TokenInterceptor(grpc.ServerInterceptor):
    """Guards every lienthong service; health and reflection stay open for generic tools.

    A call without the token runs a stand-in that raises Rejected(UNAUTHENTICATED), so the
    ErrorInterceptor ahead of this one answers it like any other refusal."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    def intercept_service(self, continuation, handler_call_details):
        if not handler_call_details.method.startswith(SERVICE_PREFIX):
            return continuation(handler_call_details)
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization" and hmac.compare_digest(value.encode(), self._expected):
                return continuation(handler_call_details)
        handler = continuation(handler_call_details)  # for its kind: a stream is refused as a stream
        if handler is None:
            return grpc.unary_unary_rpc_method_handler(_deny)
        return with_behavior(handler, lambda behavior, streaming: _deny)


def _deny(request, context):
    raise Rejected(Reason.UNAUTHENTICATED)


def api_interceptors(token: str) -> list[grpc.ServerInterceptor]:
    """The local API's interceptors, in the order that matters (errors first, then the token, then
    the request's shape: an unauthenticated caller learns nothing about what the node knows)."""
    return [ErrorInterceptor(), TokenInterceptor(token), StrictRequestInterceptor()]


def call_metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)
