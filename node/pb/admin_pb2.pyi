from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class QueuesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HopQueue(_message.Message):
    __slots__ = ("hop", "depth", "oldest_ms", "failures", "next_attempt_ms", "last_error", "held", "last_success_ms", "parked", "kept_home")
    HOP_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    OLDEST_MS_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_MS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    LAST_SUCCESS_MS_FIELD_NUMBER: _ClassVar[int]
    PARKED_FIELD_NUMBER: _ClassVar[int]
    KEPT_HOME_FIELD_NUMBER: _ClassVar[int]
    hop: str
    depth: int
    oldest_ms: int
    failures: int
    next_attempt_ms: int
    last_error: str
    held: bool
    last_success_ms: int
    parked: int
    kept_home: int
    def __init__(self, hop: _Optional[str] = ..., depth: _Optional[int] = ..., oldest_ms: _Optional[int] = ..., failures: _Optional[int] = ..., next_attempt_ms: _Optional[int] = ..., last_error: _Optional[str] = ..., held: _Optional[bool] = ..., last_success_ms: _Optional[int] = ..., parked: _Optional[int] = ..., kept_home: _Optional[int] = ...) -> None: ...

class QueuesResponse(_message.Message):
    __slots__ = ("hops", "now_ms")
    HOPS_FIELD_NUMBER: _ClassVar[int]
    NOW_MS_FIELD_NUMBER: _ClassVar[int]
    hops: _containers.RepeatedCompositeFieldContainer[HopQueue]
    now_ms: int
    def __init__(self, hops: _Optional[_Iterable[_Union[HopQueue, _Mapping]]] = ..., now_ms: _Optional[int] = ...) -> None: ...

class RetryRequest(_message.Message):
    __slots__ = ("hop",)
    HOP_FIELD_NUMBER: _ClassVar[int]
    hop: str
    def __init__(self, hop: _Optional[str] = ...) -> None: ...

class RetryResponse(_message.Message):
    __slots__ = ("retried", "held")
    RETRIED_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    retried: _containers.RepeatedScalarFieldContainer[str]
    held: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, retried: _Optional[_Iterable[str]] = ..., held: _Optional[_Iterable[str]] = ...) -> None: ...

class HoldRequest(_message.Message):
    __slots__ = ("hop",)
    HOP_FIELD_NUMBER: _ClassVar[int]
    hop: str
    def __init__(self, hop: _Optional[str] = ...) -> None: ...

class HoldResponse(_message.Message):
    __slots__ = ("hop", "held", "depth")
    HOP_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    hop: str
    held: bool
    depth: int
    def __init__(self, hop: _Optional[str] = ..., held: _Optional[bool] = ..., depth: _Optional[int] = ...) -> None: ...

class PurgeRequest(_message.Message):
    __slots__ = ("message_id", "reason")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    reason: str
    def __init__(self, message_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PurgeResponse(_message.Message):
    __slots__ = ("message_id", "sender", "recipient", "next_hop")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    NEXT_HOP_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    sender: str
    recipient: str
    next_hop: str
    def __init__(self, message_id: _Optional[str] = ..., sender: _Optional[str] = ..., recipient: _Optional[str] = ..., next_hop: _Optional[str] = ...) -> None: ...
