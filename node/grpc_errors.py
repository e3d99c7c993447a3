"""How a `Rejected` travels as a gRPC status, and how a client reads it back.

The status carries the public detail as its message (once: gRPC prints the code itself),
a `google.rpc.Status` in `grpc-status-details-bin` with an `ErrorInfo` (reason wire
string, domain, metadata) and, when a field is named, a `BadRequest` field violation;
plus the `lienthong-reason` trailing metadata for older clients. This is grpcio-status's
standard encoding, so clients in any language read it without parsing text.
"""
from __future__ import annotations

import collections

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from .errors import REASON_METADATA_KEY, Reason, Rejected

DOMAIN = "lienthong.v1"  # ErrorInfo.domain: the catalogue the reason belongs to (the proto package of errors.Reason)
CORRELATION_KEY = "correlation_id"  # ErrorInfo metadata of an INTERNAL status; the same id is in the server log


class _Status(collections.namedtuple("_Status", ("code", "details", "trailing_metadata")), grpc.Status):
    """A grpc.Status that can carry more trailers than grpcio-status puts in (its own class is private)."""


# ---- server side ---------------------------------------------------------------------

def internal(correlation_id: str) -> Rejected:
    """What the caller learns of an unexpected failure: nothing but an id to quote to the operator."""
    return Rejected(Reason.INTERNAL, f"internal error; correlation id {correlation_id}",
                    metadata={CORRELATION_KEY: correlation_id})


def status_proto(err: Rejected) -> status_pb2.Status:
    """`err` as a google.rpc.Status with its ErrorInfo (and BadRequest when a field is named): what the
    gRPC status carries, and what the HTTP/JSON face answers in its JSON mapping (node/api/http_json.py)."""
    meta = dict(err.metadata)
    if err.field:
        meta["field"] = err.field
    details = [_pack(error_details_pb2.ErrorInfo(reason=err.reason.wire, domain=DOMAIN, metadata=meta))]
    if err.field:
        details.append(_pack(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=err.field, description=err.public_detail)])))
    return status_pb2.Status(code=err.reason.grpc_code.value[0], message=err.public_detail, details=details)


def status_for(err: Rejected) -> grpc.Status:
    """The status a servicer answers for `err` (for `context.abort_with_status`)."""
    rich = rpc_status.to_status(status_proto(err))
    return _Status(rich.code, rich.details, (*rich.trailing_metadata, (REASON_METADATA_KEY, err.reason.wire)))


def _pack(message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


# ---- client side ---------------------------------------------------------------------

def rich_status(rpc_error: grpc.RpcError) -> status_pb2.Status | None:
    """The google.rpc.Status a server attached to a failed call, if any (and if consistent)."""
    if not callable(getattr(rpc_error, "trailing_metadata", None)):
        return None
    try:
        return rpc_status.from_call(rpc_error)
    except (ValueError, DecodeError):  # a code or message that disagrees with the details, or garbage
        return None


def _unpacked(rpc_error: grpc.RpcError, kind):
    status = rich_status(rpc_error)
    for packed in status.details if status else ():
        if packed.Is(kind.DESCRIPTOR):
            message = kind()
            packed.Unpack(message)
            yield message


def error_info(rpc_error: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo of a lienthong node's status (another domain's is not ours to read)."""
    return next((i for i in _unpacked(rpc_error, error_details_pb2.ErrorInfo) if i.domain == DOMAIN), None)


def reason_of(rpc_error: grpc.RpcError) -> str | None:
    """The reason's wire string: from ErrorInfo, else from the `lienthong-reason` trailing metadata."""
    info = error_info(rpc_error)
    if info is not None:
        return info.reason
    trailing = getattr(rpc_error, "trailing_metadata", None)
    for key, value in (trailing() if callable(trailing) else None) or ():
        if key == REASON_METADATA_KEY:
            return value
    return None


def detail_of(rpc_error: grpc.RpcError) -> str:
    """The public detail (the status message; it no longer repeats the reason)."""
    details = getattr(rpc_error, "details", None)
    return (details() if callable(details) else None) or ""


def metadata_of(rpc_error: grpc.RpcError) -> dict[str, str]:
    """ErrorInfo metadata (`field`, `current_status`, `allowed`, `correlation_id`, ...); empty if none."""
    info = error_info(rpc_error)
    return dict(info.metadata) if info is not None else {}


def fields_of(rpc_error: grpc.RpcError) -> list[str]:
    """The request fields a BadRequest names, in order."""
    return [v.field for bad in _unpacked(rpc_error, error_details_pb2.BadRequest) for v in bad.field_violations]


def rejected_of(rpc_error: grpc.RpcError) -> Rejected | None:
    """A peer's refusal as our own Rejected, when its reason is one we know."""
    reason = Reason.from_wire(reason_of(rpc_error))
    if reason is None:
        return None
    meta = metadata_of(rpc_error)
    field = meta.pop("field", None)
    return Rejected(reason, detail_of(rpc_error), field=field, metadata=meta)


def describe(rpc_error: grpc.RpcError) -> str:
    """One line for a person: `FAILED_PRECONDITION (BAD_STEP): status 06 cannot follow ...`."""
    code = rpc_error.code().name
    reason = reason_of(rpc_error)
    head = f"{code} ({reason})" if reason and reason != code else code
    return f"{head}: {detail_of(rpc_error)}"
