from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class Reason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REASON_UNSPECIFIED: _ClassVar[Reason]
    MALFORMED: _ClassVar[Reason]
    MISSING_FIELD: _ClassVar[Reason]
    TOO_LARGE: _ClassVar[Reason]
    BAD_SIGNATURE: _ClassVar[Reason]
    DIGEST_MISMATCH: _ClassVar[Reason]
    UNKNOWN_SENDER: _ClassVar[Reason]
    SENDER_MISMATCH: _ClassVar[Reason]
    UNTRUSTED_CERT: _ClassVar[Reason]
    CERT_EXPIRED: _ClassVar[Reason]
    BAD_TRACE: _ClassVar[Reason]
    PEER_MISMATCH: _ClassVar[Reason]
    NOT_FOR_THIS_NODE: _ClassVar[Reason]
    EXPIRED: _ClassVar[Reason]
    DUPLICATE_CONFLICT: _ClassVar[Reason]
    UNKNOWN_RECIPIENT: _ClassVar[Reason]
    WRONG_PARENT: _ClassVar[Reason]
    BAD_STEP: _ClassVar[Reason]
    NOT_RECIPIENT: _ClassVar[Reason]
    NOT_ORIGINAL_SENDER: _ClassVar[Reason]
    UNAUTHENTICATED: _ClassVar[Reason]
    NOT_FOUND: _ClassVar[Reason]
    INVALID_REQUEST: _ClassVar[Reason]
    UNREACHABLE: _ClassVar[Reason]
    BAD_RECEIPT: _ClassVar[Reason]
    INTERNAL: _ClassVar[Reason]
    TOO_MANY_STREAMS: _ClassVar[Reason]
    BAD_TIME: _ClassVar[Reason]
    NOT_A_NEIGHBOUR: _ClassVar[Reason]
    OFF_ROUTE: _ClassVar[Reason]
    CERT_IN_USE: _ClassVar[Reason]
    OVER_LIMIT: _ClassVar[Reason]
    RATE_LIMITED: _ClassVar[Reason]
    FROM_NOT_ALLOWED: _ClassVar[Reason]
    AMBIGUOUS_DOCUMENT: _ClassVar[Reason]
REASON_UNSPECIFIED: Reason
MALFORMED: Reason
MISSING_FIELD: Reason
TOO_LARGE: Reason
BAD_SIGNATURE: Reason
DIGEST_MISMATCH: Reason
UNKNOWN_SENDER: Reason
SENDER_MISMATCH: Reason
UNTRUSTED_CERT: Reason
CERT_EXPIRED: Reason
BAD_TRACE: Reason
PEER_MISMATCH: Reason
NOT_FOR_THIS_NODE: Reason
EXPIRED: Reason
DUPLICATE_CONFLICT: Reason
UNKNOWN_RECIPIENT: Reason
WRONG_PARENT: Reason
BAD_STEP: Reason
NOT_RECIPIENT: Reason
NOT_ORIGINAL_SENDER: Reason
UNAUTHENTICATED: Reason
NOT_FOUND: Reason
INVALID_REQUEST: Reason
UNREACHABLE: Reason
BAD_RECEIPT: Reason
INTERNAL: Reason
TOO_MANY_STREAMS: Reason
BAD_TIME: Reason
NOT_A_NEIGHBOUR: Reason
OFF_ROUTE: Reason
CERT_IN_USE: Reason
OVER_LIMIT: Reason
RATE_LIMITED: Reason
FROM_NOT_ALLOWED: Reason
AMBIGUOUS_DOCUMENT: Reason
