from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AgencyStats(_message.Message):
    __slots__ = ("code", "name", "docs_sent", "envelopes_sent", "docs_received", "statuses_sent", "statuses_received", "docs_answered_3", "docs_answered_5", "distinct_codes_returned", "as_of_ms", "children")
    CODE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DOCS_SENT_FIELD_NUMBER: _ClassVar[int]
    ENVELOPES_SENT_FIELD_NUMBER: _ClassVar[int]
    DOCS_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    STATUSES_SENT_FIELD_NUMBER: _ClassVar[int]
    STATUSES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    DOCS_ANSWERED_3_FIELD_NUMBER: _ClassVar[int]
    DOCS_ANSWERED_5_FIELD_NUMBER: _ClassVar[int]
    DISTINCT_CODES_RETURNED_FIELD_NUMBER: _ClassVar[int]
    AS_OF_MS_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    code: str
    name: str
    docs_sent: int
    envelopes_sent: int
    docs_received: int
    statuses_sent: int
    statuses_received: int
    docs_answered_3: int
    docs_answered_5: int
    distinct_codes_returned: int
    as_of_ms: int
    children: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, code: _Optional[str] = ..., name: _Optional[str] = ..., docs_sent: _Optional[int] = ..., envelopes_sent: _Optional[int] = ..., docs_received: _Optional[int] = ..., statuses_sent: _Optional[int] = ..., statuses_received: _Optional[int] = ..., docs_answered_3: _Optional[int] = ..., docs_answered_5: _Optional[int] = ..., distinct_codes_returned: _Optional[int] = ..., as_of_ms: _Optional[int] = ..., children: _Optional[_Iterable[str]] = ...) -> None: ...

class SignedStats(_message.Message):
    __slots__ = ("stats", "signature", "cert_der")
    STATS_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    CERT_DER_FIELD_NUMBER: _ClassVar[int]
    stats: bytes
    signature: bytes
    cert_der: bytes
    def __init__(self, stats: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., cert_der: _Optional[bytes] = ...) -> None: ...

class StatsSummary(_message.Message):
    __slots__ = ("agencies", "meeting_3", "meeting_5", "docs_received", "share_answered_3", "share_answered_5", "docs_sent", "statuses_sent")
    AGENCIES_FIELD_NUMBER: _ClassVar[int]
    MEETING_3_FIELD_NUMBER: _ClassVar[int]
    MEETING_5_FIELD_NUMBER: _ClassVar[int]
    DOCS_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    SHARE_ANSWERED_3_FIELD_NUMBER: _ClassVar[int]
    SHARE_ANSWERED_5_FIELD_NUMBER: _ClassVar[int]
    DOCS_SENT_FIELD_NUMBER: _ClassVar[int]
    STATUSES_SENT_FIELD_NUMBER: _ClassVar[int]
    agencies: int
    meeting_3: int
    meeting_5: int
    docs_received: int
    share_answered_3: float
    share_answered_5: float
    docs_sent: int
    statuses_sent: int
    def __init__(self, agencies: _Optional[int] = ..., meeting_3: _Optional[int] = ..., meeting_5: _Optional[int] = ..., docs_received: _Optional[int] = ..., share_answered_3: _Optional[float] = ..., share_answered_5: _Optional[float] = ..., docs_sent: _Optional[int] = ..., statuses_sent: _Optional[int] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ("subtree",)
    SUBTREE_FIELD_NUMBER: _ClassVar[int]
    subtree: bool
    def __init__(self, subtree: _Optional[bool] = ...) -> None: ...

class StatsResponse(_message.Message):
    __slots__ = ("agencies", "summary", "not_reported")
    AGENCIES_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    NOT_REPORTED_FIELD_NUMBER: _ClassVar[int]
    agencies: _containers.RepeatedCompositeFieldContainer[AgencyStats]
    summary: StatsSummary
    not_reported: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, agencies: _Optional[_Iterable[_Union[AgencyStats, _Mapping]]] = ..., summary: _Optional[_Union[StatsSummary, _Mapping]] = ..., not_reported: _Optional[_Iterable[str]] = ...) -> None: ...
