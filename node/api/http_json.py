"""JSON in and out of the HTTP/JSON face: strict request parsing, responses, and errors.

Requests and responses are the protobuf JSON mapping (google.protobuf.json_format) of the
same messages the gRPC API takes. Parsing is stricter than json_format alone: before any
conversion the body is walked against the message descriptor, so an unknown field, a
field given twice, or a value of the wrong JSON type is refused as INVALID_REQUEST naming
the field by its proto path (`document.attachments[1].data`), the way gRPC's BadRequest
names it. A refusal is the same `Rejected` the servicers raise, answered by `error_body`
with the HTTP status of its gRPC code and the ErrorInfo/BadRequest the gRPC status carries.
No aiohttp here.
"""
from __future__ import annotations

import json
import re
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from ..errors import Reason, Rejected
from ..transport.grpc_peers import grpc_options
from ..grpc_errors import status_proto

_C = grpc.StatusCode
HTTP_STATUS: dict[grpc.StatusCode, int] = {  # the status line of a refusal, from its reason's gRPC code
    _C.INVALID_ARGUMENT: 400, _C.OUT_OF_RANGE: 400,
    _C.UNAUTHENTICATED: 401,
    _C.PERMISSION_DENIED: 403,
    _C.NOT_FOUND: 404,
    _C.ALREADY_EXISTS: 409, _C.FAILED_PRECONDITION: 409, _C.ABORTED: 409,
    _C.RESOURCE_EXHAUSTED: 429,
    _C.CANCELLED: 499,
    _C.UNIMPLEMENTED: 501,
    _C.UNAVAILABLE: 503,
    _C.DEADLINE_EXCEEDED: 504,
}
BY_REASON: dict[Reason, int] = {Reason.TOO_LARGE: 413,  # RESOURCE_EXHAUSTED, but a body too big is 413, not 429
                                 Reason.METHOD_NOT_ALLOWED: 405}  # UNIMPLEMENTED, as grpc-gateway answers a 405
BODY_MARGIN = 64 * 1024  # JSON punctuation and field names around the base64 of the largest message


def http_status(reason: Reason) -> int:
    return BY_REASON.get(reason, HTTP_STATUS.get(reason.grpc_code, 500))  # INTERNAL, DATA_LOSS, UNKNOWN: 500


def body_limit(max_message_bytes: int) -> int:
    """Largest request body: the gRPC API's message limit as base64 (4/3) plus a margin."""
    grpc_limit = dict(grpc_options(max_message_bytes))["grpc.max_receive_message_length"]
    return -(-grpc_limit * 4 // 3) + BODY_MARGIN


# ---- errors --------------------------------------------------------------------------

def error_body(err: Rejected, status_code: int | None = None) -> dict:
    """{"error": {...}}: Google's HTTP mapping of a google.rpc.Status (code = HTTP status, status = the
    gRPC code's name, details = the same ErrorInfo and BadRequest as gRPC), plus reason, field and
    metadata flat, so a client reads the reason without walking `details`."""
    status = status_proto(err)
    out: dict[str, Any] = {"code": status_code or http_status(err.reason), "status": err.reason.grpc_code.name,
                           "message": status.message, "reason": err.reason.wire}
    if err.field:
        out["field"] = err.field
    out["metadata"] = dict(err.metadata)
    out["details"] = json_format.MessageToDict(status).get("details", [])
    return {"error": out}


# ---- responses -----------------------------------------------------------------------

def to_json(message: Message) -> dict:
    """Every field, defaults included (a client sees `hasMore: false`, not a missing key); lowerCamelCase
    names, enums by name, 64-bit integers as strings, bytes as base64: the proto3 JSON mapping."""
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


# ---- requests ------------------------------------------------------------------------

def parse_request(body: bytes, cls: type) -> Message:
    """A request message from a JSON body (empty = all defaults); Rejected(INVALID_REQUEST, field=...) if not."""
    message = cls()
    if not body.strip():
        return message
    try:
        data = json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise Rejected(Reason.INVALID_REQUEST, "the body is not UTF-8") from None
    except _Duplicate as e:
        raise Rejected(Reason.INVALID_REQUEST, f"{e.key!r} given twice in one object", field=e.key) from None
    except (ValueError, RecursionError) as e:
        raise Rejected(Reason.INVALID_REQUEST, f"the body is not JSON: {str(e)[:120]}") from None
    _check_message(data, message.DESCRIPTOR, "")
    try:
        json_format.ParseDict(data, message, ignore_unknown_fields=False)
    except json_format.ParseError as e:  # what the walk does not check (e.g. a string of digits out of range)
        raise Rejected(Reason.INVALID_REQUEST, f"the body does not fit {message.DESCRIPTOR.name}: {e}") from None
    return message


class _Duplicate(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _bad(where: str, expected: str, value: Any) -> Rejected:
    return Rejected(Reason.INVALID_REQUEST, f"{where}: expected {expected}, got {_kind(value)}", field=where)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(value), "a number")


def _check_message(data: Any, desc: Descriptor, path: str) -> None:
    if not isinstance(data, dict):
        raise _bad(path or "(body)", f"a JSON object ({desc.name})", data)
    seen: set[str] = set()
    for key, value in data.items():
        field = desc.fields_by_name.get(key) or next((f for f in desc.fields if f.json_name == key), None)
        if field is None:
            where = _join(path, key)
            raise Rejected(Reason.INVALID_REQUEST, f"{where}: no such field in {desc.name}", field=where)
        where = _join(path, field.name)
        if field.name in seen:
            raise Rejected(Reason.INVALID_REQUEST, f"{where}: given twice (as {field.name} and {field.json_name})",
                           field=where)
        seen.add(field.name)
        if value is None:  # null: the field's default, as the JSON mapping says
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            if not isinstance(value, dict):
                raise _bad(where, "an object (a map)", value)
            value_field = field.message_type.fields_by_name["value"]
            for k, v in value.items():
                _check_value(v, value_field, f"{where}[{k!r}]")
        elif field.is_repeated:
            if not isinstance(value, list):
                raise _bad(where, "an array", value)
            for i, item in enumerate(value):
                _check_value(item, field, f"{where}[{i}]")
        else:
            _check_value(value, field, where)


_T = FieldDescriptor
_INT_RANGE = {
    _T.TYPE_INT32: (-(1 << 31), (1 << 31) - 1), _T.TYPE_SINT32: (-(1 << 31), (1 << 31) - 1),
    _T.TYPE_SFIXED32: (-(1 << 31), (1 << 31) - 1), _T.TYPE_UINT32: (0, (1 << 32) - 1),
    _T.TYPE_FIXED32: (0, (1 << 32) - 1), _T.TYPE_INT64: (-(1 << 63), (1 << 63) - 1),
    _T.TYPE_SINT64: (-(1 << 63), (1 << 63) - 1), _T.TYPE_SFIXED64: (-(1 << 63), (1 << 63) - 1),
    _T.TYPE_UINT64: (0, (1 << 64) - 1), _T.TYPE_FIXED64: (0, (1 << 64) - 1),
}
_BASE64 = re.compile(r"[A-Za-z0-9+/\-_]*={0,2}")


def _check_value(value: Any, field: FieldDescriptor, where: str) -> None:
    t = field.type
    if t == _T.TYPE_MESSAGE:
        _check_message(value, field.message_type, where)
    elif t == _T.TYPE_STRING:
        if not isinstance(value, str):
            raise _bad(where, "a string", value)
    elif t == _T.TYPE_BOOL:
        if not isinstance(value, bool):
            raise _bad(where, "true or false", value)
    elif t == _T.TYPE_BYTES:
        if not isinstance(value, str) or not _BASE64.fullmatch(value):
            raise _bad(where, "a base64 string", value) if not isinstance(value, str) else Rejected(
                Reason.INVALID_REQUEST, f"{where}: not base64", field=where)
    elif t == _T.TYPE_ENUM:
        if isinstance(value, str):
            if value not in field.enum_type.values_by_name:
                names = ", ".join(field.enum_type.values_by_name)
                raise Rejected(Reason.INVALID_REQUEST, f"{where}: one of {names}, got {value[:40]!r}", field=where)
        elif not isinstance(value, int) or isinstance(value, bool):
            raise _bad(where, f"a {field.enum_type.name} name", value)
    elif t in _INT_RANGE:
        _check_int(value, _INT_RANGE[t], where)
    elif t in (_T.TYPE_DOUBLE, _T.TYPE_FLOAT):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise _bad(where, "a number", value)


def _check_int(value: Any, bounds: tuple[int, int], where: str) -> None:
    """An integer, or a string of one (the JSON mapping writes 64-bit integers as strings), within its type."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _bad(where, "an integer", value)
    if isinstance(value, str):
        if not re.fullmatch(r"-?[0-9]{1,20}", value):
            raise _bad(where, "an integer", value)
        value = int(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise Rejected(Reason.INVALID_REQUEST, f"{where}: expected an integer, got {value}", field=where)
        value = int(value)
    lo, hi = bounds
    if not lo <= value <= hi:
        raise Rejected(Reason.INVALID_REQUEST, f"{where}: {value} is out of range ({lo}..{hi})", field=where)
