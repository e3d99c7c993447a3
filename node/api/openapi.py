"""The OpenAPI 3 document of the HTTP/JSON face, generated from the proto descriptors.

Paths come from node/api/http_routes.py (one POST per RPC), schemas from the request and
response messages in the protobuf JSON mapping the face speaks (lowerCamelCase names,
enums by name, 64-bit integers as strings, bytes as base64). The node serves this at
`GET /v1/openapi.json`; `scripts/gen-openapi` writes it to docs/openapi.json, and
tests/api/test_http_openapi.py fails when the two differ, so proto, server and document
cannot drift apart. `python -m node.api.openapi [FILE]` prints or writes it.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from .http_json import HTTP_STATUS
from .http_routes import HEALTH_PATH, OPENAPI_PATH, PREFIX, routes
from .proto_comments import COMMENTS

_T = FieldDescriptor
_SCALARS = {
    _T.TYPE_STRING: {"type": "string"},
    _T.TYPE_BOOL: {"type": "boolean"},
    _T.TYPE_BYTES: {"type": "string", "format": "byte"},
    _T.TYPE_DOUBLE: {"type": "number", "format": "double"},
    _T.TYPE_FLOAT: {"type": "number", "format": "float"},
    _T.TYPE_INT32: {"type": "integer", "format": "int32"},
    _T.TYPE_SINT32: {"type": "integer", "format": "int32"},
    _T.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    _T.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295},
    _T.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295},
    # the JSON mapping writes 64-bit integers as decimal strings (it also reads plain numbers)
    # (a plain JSON number is read too, as the mapping allows: the schema gives the form clients should send)
    _T.TYPE_INT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    _T.TYPE_SINT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    _T.TYPE_SFIXED64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    _T.TYPE_UINT64: {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"},
    _T.TYPE_FIXED64: {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"},
}
ERROR = "Error"
_REF = "#/components/schemas/"


def document() -> dict:
    """The whole document, in a stable order (descriptor order for paths and fields, names for schemas)."""
    schemas: dict[str, dict] = {}
    paths: dict[str, dict] = {}
    for route in routes():
        method, service = route.method, route.service
        _message(method.input_type, schemas)
        _message(method.output_type, schemas)
        ok = ({"text/event-stream": {"schema": {
                  "type": "string", "description": f"`data: <{method.output_type.name} as JSON>` and a blank line "
                                                   "per message; `event: error` with an Error if the stream fails",
                  "x-event-data": {"$ref": _REF + method.output_type.full_name}}}}
              if route.streaming else {"application/json": {"schema": {"$ref": _REF + method.output_type.full_name}}})
        paths[route.path] = {"post": {
            "operationId": f"{service.name}_{method.name}",
            "tags": [service.name],
            "summary": f"{service.full_name}.{method.name}" + (" (server-sent events)" if route.streaming else ""),
            **_described(method.full_name),
            "requestBody": {"required": False, "content": {
                "application/json": {"schema": {"$ref": _REF + method.input_type.full_name}}}},
            "responses": {
                "200": {"description": method.output_type.name + (" messages as server-sent events" if route.streaming
                                                                  else ""), "content": ok},
                "default": {"$ref": "#/components/responses/Error"},
            },
        }}
    paths[OPENAPI_PATH] = {"get": {"operationId": "openapi", "summary": "this document", "security": [],
                                   "responses": {"200": {"description": "OpenAPI 3 document",
                                                         "content": {"application/json": {"schema": {"type": "object"}}}}}}}
    paths[HEALTH_PATH] = {"get": {"operationId": "health", "summary": "the node's health (as gRPC health)",
                                  "security": [], "responses": {
                                      "200": {"description": "serving", "content": _status_content()},
                                      "503": {"description": "not serving", "content": _status_content()}}}}
    schemas[ERROR] = _error_schema()
    return {
        "openapi": "3.0.3",
        "info": {"title": "lienthong local API (HTTP/JSON face)", "version": PREFIX.strip("/"),
                 "description": "The Mailbox and Stats calls of the gRPC local API over HTTP, in the protobuf JSON "
                                "mapping; see docs/api.md. Generated from the proto descriptors by scripts/gen-openapi."},
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "the node's api.token: Authorization: Bearer <token>"}},
            "responses": {"Error": {"description": "a refusal: HTTP status from its gRPC code ("
                                    + ", ".join(f"{c.name} {s}" for c, s in HTTP_STATUS.items())
                                    + ", TOO_LARGE 413, METHOD_NOT_ALLOWED 405, anything else 500)",
                                    "content": {"application/json": {"schema": {"$ref": _REF + ERROR}}}}},
            "schemas": dict(sorted(schemas.items())),
        },
    }


def _status_content() -> dict:
    return {"application/json": {"schema": {"type": "object", "properties": {
        "status": {"type": "string", "enum": ["SERVING", "NOT_SERVING"]}}}}}


def _message(desc: Descriptor, schemas: dict) -> None:
    if desc.full_name in schemas:
        return
    schema: dict = {"type": "object", **_described(desc.full_name), "additionalProperties": False, "properties": {}}
    schemas[desc.full_name] = schema  # before the fields: a message that contains itself ends here
    for field in desc.fields:
        prop = _field(field, schemas)
        if "$ref" not in prop:  # OpenAPI 3.0 ignores what stands beside a $ref: the type says it there
            prop.update(_described(field.full_name))
            prop["nullable"] = True  # the JSON mapping reads null as the field's default (docs/api.md)
        schema["properties"][field.json_name] = prop


def _described(full_name: str) -> dict:
    """The proto's comment on `full_name` (node/api/proto_comments.py), as an OpenAPI description."""
    text = COMMENTS.get(full_name)
    return {"description": text} if text else {}


def _field(field: FieldDescriptor, schemas: dict) -> dict:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        return {"type": "object", "additionalProperties": _single(field.message_type.fields_by_name["value"], schemas)}
    if field.is_repeated:
        return {"type": "array", "items": _single(field, schemas)}
    return _single(field, schemas)


def _single(field: FieldDescriptor, schemas: dict) -> dict:
    if field.type == _T.TYPE_MESSAGE:
        _message(field.message_type, schemas)
        return {"$ref": _REF + field.message_type.full_name}
    if field.type == _T.TYPE_ENUM:
        _enum(field.enum_type, schemas)
        return {"$ref": _REF + field.enum_type.full_name}
    return dict(_SCALARS[field.type])


def _enum(desc: EnumDescriptor, schemas: dict) -> None:
    values = "; ".join(f"{v.name}: {COMMENTS[f'{desc.full_name}.{v.name}']}" for v in desc.values
                       if f"{desc.full_name}.{v.name}" in COMMENTS)
    text = " ".join(t for t in (COMMENTS.get(desc.full_name, ""), values) if t)
    schemas.setdefault(desc.full_name, {"type": "string", **({"description": text} if text else {}),
                                        "enum": [v.name for v in desc.values]})


def _error_schema() -> dict:
    return {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "status", "message", "reason"],
        "properties": {
            "code": {"type": "integer", "description": "the HTTP status"},
            "status": {"type": "string", "description": "the gRPC status code's name"},
            "message": {"type": "string", "description": "the public detail"},
            "reason": {"type": "string", "description": "the reason code (docs/reasons.md), as ErrorInfo.reason"},
            "field": {"type": "string", "description": "the request field at fault, as BadRequest names it"},
            "metadata": {"type": "object", "additionalProperties": {"type": "string"},
                         "description": "ErrorInfo metadata: current_status, allowed, limit, correlation_id, ..."},
            "details": {"type": "array", "items": {"type": "object"},
                        "description": "google.rpc.ErrorInfo and google.rpc.BadRequest in the JSON mapping, "
                                       "as the gRPC status carries them"},
        }}}}


def render() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if argv:
        Path(argv[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
