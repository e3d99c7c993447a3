"""Token check for the local API: a bearer token in the `authorization` metadata."""
from __future__ import annotations

import hmac

import grpc

from ..errors import REASON_METADATA_KEY, Reason

PROTECTED_PREFIX = "/lienthong.v1."


class TokenInterceptor(grpc.ServerInterceptor):
    """Guards every lienthong service; health and reflection stay open for generic tools."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

        def deny(request, context):
            context.set_trailing_metadata(((REASON_METADATA_KEY, Reason.UNAUTHENTICATED.name),))
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED: missing or wrong API token")

        self._deny = grpc.unary_unary_rpc_method_handler(deny)

    def intercept_service(self, continuation, handler_call_details):
        if not handler_call_details.method.startswith(PROTECTED_PREFIX):
            return continuation(handler_call_details)
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization" and hmac.compare_digest(value.encode(), self._expected):
                return continuation(handler_call_details)
        return self._deny


def call_metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)
