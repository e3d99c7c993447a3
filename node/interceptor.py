"""The one error path of every lienthong servicer (Mailbox, Stats, Exchange, Registry).

Servicers raise `Rejected` and never call `context.abort`; this server interceptor answers
the status (built by `node.grpc_errors`) for unary and streaming methods alike. Anything
else is a bug: logged here with a fresh correlation id and answered INTERNAL with only that
id, so no internal text reaches a caller and an operator can still find the traceback.
"""
from __future__ import annotations

import logging
from typing import Callable, NoReturn

import grpc

from .errors import Rejected
from .grpc_errors import internal, status_for
from .incidents import log_incident

log = logging.getLogger(__name__)

SERVICE_PREFIX = "/lienthong.v1."  # health and reflection are grpcio's own and keep their own statuses

Behavior = Callable  # (request or request iterator, context) -> response or response iterator


class ErrorInterceptor(grpc.ServerInterceptor):
    """Put it first in the server's list, so it also answers for the interceptors after it (on the peer
    server only node.peer_gate.PeerGate comes before it: it answers its own refusals)."""

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith(SERVICE_PREFIX):
            return handler
        return with_behavior(handler, lambda behavior, streaming: _guard(behavior, streaming, method))


def with_behavior(handler: grpc.RpcMethodHandler,
                  wrap: Callable[[Behavior, bool], Behavior]) -> grpc.RpcMethodHandler:
    """`handler` with its behavior replaced by `wrap(behavior, response_streaming)`, of the same kind."""
    for kind, make in (("unary_unary", grpc.unary_unary_rpc_method_handler),
                       ("unary_stream", grpc.unary_stream_rpc_method_handler),
                       ("stream_unary", grpc.stream_unary_rpc_method_handler),
                       ("stream_stream", grpc.stream_stream_rpc_method_handler)):
        behavior = getattr(handler, kind)
        if behavior is not None:
            return make(wrap(behavior, handler.response_streaming),
                        request_deserializer=handler.request_deserializer,
                        response_serializer=handler.response_serializer)
    return handler


def _guard(behavior: Behavior, streaming: bool, method: str) -> Behavior:
    if streaming:
        def guarded_stream(request, context):
            try:
                yield from behavior(request, context)
            except Exception as e:
                _abort(context, method, e)
        return guarded_stream

    def guarded(request, context):
        try:
            return behavior(request, context)
        except Exception as e:
            _abort(context, method, e)
    return guarded


def _abort(context: grpc.ServicerContext, method: str, e: Exception) -> None:
    if isinstance(e, Rejected):
        log.debug("%s refused: %s", method, e.public_text)
        err = e
    else:
        err = internal(log_incident(method, e))
    refuse(context, err)


def refuse(context: grpc.ServicerContext, err: Rejected) -> NoReturn:
    """Answer `err` as the call's status: the one place a refusal becomes a gRPC status (node.peer_gate also
    comes here, for the calls this interceptor does not wrap: grpcio's health and reflection)."""
    context.abort_with_status(status_for(err))
    raise AssertionError("abort_with_status returns only by raising")  # pragma: no cover
