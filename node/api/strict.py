"""Refuse a local-API request that carries fields this node's proto does not know.

Protobuf keeps unknown fields silently, so a client built from a newer or mistyped proto would
see its field ignored and believe it took effect. The HTTP/JSON face refuses unknown JSON names
(node/api/http_json.py); this makes gRPC refuse unknown field numbers the same way, with
INVALID_REQUEST naming where the field was (`document.attachments[1].#1007`)."""
from __future__ import annotations

import grpc
from google.protobuf import descriptor, message, unknown_fields

from ..errors import Reason, Rejected
from ..interceptor import SERVICE_PREFIX, with_behavior

_MESSAGE = descriptor.FieldDescriptor.TYPE_MESSAGE
MAX_DEPTH = 32  # deeper than any request of ours; a hostile nesting stops here instead of recursing


def unknown_field(msg: message.Message, path: str = "", depth: int = 0) -> str | None:
    """The path of the first unknown field in `msg` or its sub-messages, or None."""
    found = unknown_fields.UnknownFieldSet(msg)
    if len(found):
        return f"{path}{'.' if path else ''}#{found[0].field_number}"
    if depth >= MAX_DEPTH:
        return None
    for field, value in msg.ListFields():
        if field.type != _MESSAGE:
            continue
        name = f"{path}{'.' if path else ''}{field.name}"
        if field.message_type.GetOptions().map_entry:
            items = ((f"{name}[{k!r}]", v) for k, v in value.items()
                     if isinstance(v, message.Message))
        elif field.is_repeated:
            items = ((f"{name}[{i}]", v) for i, v in enumerate(value))
        else:
            items = ((name, value),)
        for where, sub in items:
            hit = unknown_field(sub, where, depth + 1)
            if hit:
                return hit
    return None


def check(request: object) -> None:
    where = unknown_field(request) if isinstance(request, message.Message) else None
    if where:
        raise Rejected(Reason.INVALID_REQUEST, f"unknown field {where}", field=where)


class StrictRequestInterceptor(grpc.ServerInterceptor):
    """After the token check: a unary request with an unknown field is refused before its handler runs."""

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.request_streaming or not handler_call_details.method.startswith(SERVICE_PREFIX):
            return handler

        def wrap(behavior, streaming):
            if streaming:
                def strict_stream(request, context):
                    check(request)
                    yield from behavior(request, context)
                return strict_stream

            def strict(request, context):
                check(request)
                return behavior(request, context)
            return strict
        return with_behavior(handler, wrap)
