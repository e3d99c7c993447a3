"""The error catalogue: one internal reason per failure, mapped to a gRPC status and a public message.

Peers and clients see the stable reason code (in the status details and the
`lienthong-reason` trailing metadata), never internal exception text.
"""
from __future__ import annotations

import contextlib
import enum
from typing import Iterator

import grpc


class Reason(enum.Enum):
    # (gRPC code, permanent?, public message)
    MALFORMED = (grpc.StatusCode.INVALID_ARGUMENT, True, "envelope bytes do not parse")
    MISSING_FIELD = (grpc.StatusCode.INVALID_ARGUMENT, True, "a required field is missing")
    TOO_LARGE = (grpc.StatusCode.RESOURCE_EXHAUSTED, True, "message exceeds the size limit")
    BAD_SIGNATURE = (grpc.StatusCode.PERMISSION_DENIED, True, "sender signature does not verify")
    DIGEST_MISMATCH = (grpc.StatusCode.INVALID_ARGUMENT, True, "payload does not match its digest")
    UNKNOWN_SENDER = (grpc.StatusCode.PERMISSION_DENIED, True, "sender is not known to this node")
    SENDER_MISMATCH = (grpc.StatusCode.PERMISSION_DENIED, True, "sender code is not the certificate's code")
    UNTRUSTED_CERT = (grpc.StatusCode.PERMISSION_DENIED, True, "certificate does not chain to a trust anchor")
    CERT_EXPIRED = (grpc.StatusCode.PERMISSION_DENIED, True, "certificate is outside its validity period")
    BAD_TRACE = (grpc.StatusCode.PERMISSION_DENIED, True, "trace entry does not verify")
    PEER_MISMATCH = (grpc.StatusCode.PERMISSION_DENIED, True, "last trace entry is not the connecting peer")
    NOT_FOR_THIS_NODE = (grpc.StatusCode.FAILED_PRECONDITION, True, "recipient is not served by this node")
    NOT_A_NEIGHBOUR = (grpc.StatusCode.PERMISSION_DENIED, True, "only a parent, child or configured peer may hand over")
    OFF_ROUTE = (grpc.StatusCode.PERMISSION_DENIED, True, "the envelope's route does not pass from that peer to this node")
    EXPIRED = (grpc.StatusCode.FAILED_PRECONDITION, True, "message is past its lifetime")
    BAD_TIME = (grpc.StatusCode.INVALID_ARGUMENT, True, "a time in the envelope is out of range")
    DUPLICATE_CONFLICT = (grpc.StatusCode.ALREADY_EXISTS, True, "message id already used for other content")
    UNKNOWN_RECIPIENT = (grpc.StatusCode.NOT_FOUND, True, "no agency with that code is registered")
    WRONG_PARENT = (grpc.StatusCode.PERMISSION_DENIED, True, "this node is not the parent of that code")
    BAD_STEP = (grpc.StatusCode.FAILED_PRECONDITION, True, "that status may not follow the current one")
    NOT_RECIPIENT = (grpc.StatusCode.PERMISSION_DENIED, True, "only the document's recipient may report its status")
    NOT_ORIGINAL_SENDER = (grpc.StatusCode.PERMISSION_DENIED, True, "only the document's sender may change it")
    UNAUTHENTICATED = (grpc.StatusCode.UNAUTHENTICATED, True, "missing or wrong API token")
    NOT_FOUND = (grpc.StatusCode.NOT_FOUND, True, "no such message")
    INVALID_REQUEST = (grpc.StatusCode.INVALID_ARGUMENT, True, "request is not valid")
    TOO_MANY_STREAMS = (grpc.StatusCode.RESOURCE_EXHAUSTED, False, "too many streams are open")
    UNREACHABLE = (grpc.StatusCode.UNAVAILABLE, False, "peer did not answer")
    BAD_RECEIPT = (grpc.StatusCode.DATA_LOSS, False, "receipt does not verify")
    INTERNAL = (grpc.StatusCode.INTERNAL, False, "internal error")

    @property
    def grpc_code(self) -> grpc.StatusCode:
        return self.value[0]

    @property
    def permanent(self) -> bool:
        return self.value[1]

    @property
    def public_message(self) -> str:
        return self.value[2]


REASON_METADATA_KEY = "lienthong-reason"


class Rejected(Exception):
    """A request or envelope refused for a stable reason; `detail` is safe to show the caller."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason.name}: {detail or reason.public_message}")

    @property
    def public_text(self) -> str:
        return f"{self.reason.name}: {self.public_detail}"

    @property
    def public_detail(self) -> str:
        return self.detail or self.reason.public_message


@contextlib.contextmanager
def naming(where: str) -> Iterator[None]:
    """Refusals inside get `where` in front of their detail (`documents[3]: ...`)."""
    try:
        yield
    except Rejected as r:
        raise Rejected(r.reason, f"{where}: {r.public_detail}") from None


def abort(context: grpc.ServicerContext, err: Rejected) -> None:
    """Translate a rejection into a gRPC status; the one place servicers turn errors into statuses."""
    context.set_trailing_metadata(((REASON_METADATA_KEY, err.reason.name),))
    context.abort(err.reason.grpc_code, err.public_text)


def detail_of(rpc_error: grpc.RpcError) -> str:
    """A peer's status text without the reason prefix abort() put there (so it is not repeated hop after hop)."""
    text = rpc_error.details() or ""
    reason = reason_of(rpc_error)
    if reason and text.startswith(reason + ": "):
        return text[len(reason) + 2:]
    return text


def reason_of(rpc_error: grpc.RpcError) -> str | None:
    """The stable reason a peer attached to a failed call, if any."""
    for key, value in (rpc_error.trailing_metadata() or ()):
        if key == REASON_METADATA_KEY:
            return value
    return None
