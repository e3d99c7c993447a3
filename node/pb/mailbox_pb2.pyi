from node.pb import envelope_pb2 as _envelope_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DocState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DOC_STATE_UNSPECIFIED: _ClassVar[DocState]
    DOC_STATE_ACTIVE: _ClassVar[DocState]
    DOC_STATE_REVOKED: _ClassVar[DocState]
    DOC_STATE_UPDATED: _ClassVar[DocState]
    DOC_STATE_REPLACED: _ClassVar[DocState]
    DOC_STATE_TAKEN_BACK: _ClassVar[DocState]

class PendingRequest(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PENDING_REQUEST_NONE: _ClassVar[PendingRequest]
    PENDING_REQUEST_TAKE_BACK: _ClassVar[PendingRequest]
    PENDING_REQUEST_REVOKE: _ClassVar[PendingRequest]
    PENDING_REQUEST_UPDATE: _ClassVar[PendingRequest]
    PENDING_REQUEST_REPLACE: _ClassVar[PendingRequest]

class SendState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEND_STATE_UNSPECIFIED: _ClassVar[SendState]
    SEND_STATE_PENDING: _ClassVar[SendState]
    SEND_STATE_DELIVERED: _ClassVar[SendState]
    SEND_STATE_REJECTED: _ClassVar[SendState]
    SEND_STATE_EXPIRED: _ClassVar[SendState]
    SEND_STATE_NOT_REGISTERED_YET: _ClassVar[SendState]

class EventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_TYPE_UNSPECIFIED: _ClassVar[EventType]
    EVENT_TYPE_WATCHING: _ClassVar[EventType]
    EVENT_TYPE_ARRIVED: _ClassVar[EventType]
    EVENT_TYPE_DELIVERED: _ClassVar[EventType]
    EVENT_TYPE_REJECTED: _ClassVar[EventType]
    EVENT_TYPE_EXPIRED: _ClassVar[EventType]
    EVENT_TYPE_REGISTERED: _ClassVar[EventType]
    EVENT_TYPE_HEARTBEAT: _ClassVar[EventType]
    EVENT_TYPE_CHECKPOINT: _ClassVar[EventType]
    EVENT_TYPE_CHECKPOINT_KEPT: _ClassVar[EventType]
    EVENT_TYPE_CRL: _ClassVar[EventType]
    EVENT_TYPE_NOT_REGISTERED_YET: _ClassVar[EventType]
    EVENT_TYPE_SUCCESSION: _ClassVar[EventType]
    EVENT_TYPE_READDRESSED: _ClassVar[EventType]
DOC_STATE_UNSPECIFIED: DocState
DOC_STATE_ACTIVE: DocState
DOC_STATE_REVOKED: DocState
DOC_STATE_UPDATED: DocState
DOC_STATE_REPLACED: DocState
DOC_STATE_TAKEN_BACK: DocState
PENDING_REQUEST_NONE: PendingRequest
PENDING_REQUEST_TAKE_BACK: PendingRequest
PENDING_REQUEST_REVOKE: PendingRequest
PENDING_REQUEST_UPDATE: PendingRequest
PENDING_REQUEST_REPLACE: PendingRequest
SEND_STATE_UNSPECIFIED: SendState
SEND_STATE_PENDING: SendState
SEND_STATE_DELIVERED: SendState
SEND_STATE_REJECTED: SendState
SEND_STATE_EXPIRED: SendState
SEND_STATE_NOT_REGISTERED_YET: SendState
EVENT_TYPE_UNSPECIFIED: EventType
EVENT_TYPE_WATCHING: EventType
EVENT_TYPE_ARRIVED: EventType
EVENT_TYPE_DELIVERED: EventType
EVENT_TYPE_REJECTED: EventType
EVENT_TYPE_EXPIRED: EventType
EVENT_TYPE_REGISTERED: EventType
EVENT_TYPE_HEARTBEAT: EventType
EVENT_TYPE_CHECKPOINT: EventType
EVENT_TYPE_CHECKPOINT_KEPT: EventType
EVENT_TYPE_CRL: EventType
EVENT_TYPE_NOT_REGISTERED_YET: EventType
EVENT_TYPE_SUCCESSION: EventType
EVENT_TYPE_READDRESSED: EventType

class SendRequest(_message.Message):
    __slots__ = ("document", "recipients", "priority", "lifetime_seconds", "client_key", "require_registered")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    RECIPIENTS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    LIFETIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_KEY_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_REGISTERED_FIELD_NUMBER: _ClassVar[int]
    document: _envelope_pb2.Document
    recipients: _containers.RepeatedScalarFieldContainer[str]
    priority: int
    lifetime_seconds: int
    client_key: str
    require_registered: bool
    def __init__(self, document: _Optional[_Union[_envelope_pb2.Document, _Mapping]] = ..., recipients: _Optional[_Iterable[str]] = ..., priority: _Optional[int] = ..., lifetime_seconds: _Optional[int] = ..., client_key: _Optional[str] = ..., require_registered: _Optional[bool] = ...) -> None: ...

class SentEnvelope(_message.Message):
    __slots__ = ("recipient", "message_id", "waits_at", "waits_until_ms", "successor_of")
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    WAITS_AT_FIELD_NUMBER: _ClassVar[int]
    WAITS_UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    SUCCESSOR_OF_FIELD_NUMBER: _ClassVar[int]
    recipient: str
    message_id: str
    waits_at: str
    waits_until_ms: int
    successor_of: str
    def __init__(self, recipient: _Optional[str] = ..., message_id: _Optional[str] = ..., waits_at: _Optional[str] = ..., waits_until_ms: _Optional[int] = ..., successor_of: _Optional[str] = ...) -> None: ...

class SendResponse(_message.Message):
    __slots__ = ("envelopes", "doc_id")
    ENVELOPES_FIELD_NUMBER: _ClassVar[int]
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    envelopes: _containers.RepeatedCompositeFieldContainer[SentEnvelope]
    doc_id: str
    def __init__(self, envelopes: _Optional[_Iterable[_Union[SentEnvelope, _Mapping]]] = ..., doc_id: _Optional[str] = ...) -> None: ...

class SendBatchRequest(_message.Message):
    __slots__ = ("documents", "client_key")
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_KEY_FIELD_NUMBER: _ClassVar[int]
    documents: _containers.RepeatedCompositeFieldContainer[SendRequest]
    client_key: str
    def __init__(self, documents: _Optional[_Iterable[_Union[SendRequest, _Mapping]]] = ..., client_key: _Optional[str] = ...) -> None: ...

class SendBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SendResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[SendResponse, _Mapping]]] = ...) -> None: ...

class ListInboxRequest(_message.Message):
    __slots__ = ("only_new", "limit", "after_seq", "kinds")
    ONLY_NEW_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    only_new: bool
    limit: int
    after_seq: int
    kinds: _containers.RepeatedScalarFieldContainer[_envelope_pb2.Kind]
    def __init__(self, only_new: _Optional[bool] = ..., limit: _Optional[int] = ..., after_seq: _Optional[int] = ..., kinds: _Optional[_Iterable[_Union[_envelope_pb2.Kind, str]]] = ...) -> None: ...

class InboxEntry(_message.Message):
    __slots__ = ("seq", "message_id", "sender", "kind", "subject", "received_ms", "acked", "priority", "state", "changed_by", "status", "ref_message_id", "business_doc_type", "pending_request", "doc_state", "pending", "held_for")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_MS_FIELD_NUMBER: _ClassVar[int]
    ACKED_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CHANGED_BY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REF_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    BUSINESS_DOC_TYPE_FIELD_NUMBER: _ClassVar[int]
    PENDING_REQUEST_FIELD_NUMBER: _ClassVar[int]
    DOC_STATE_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    HELD_FOR_FIELD_NUMBER: _ClassVar[int]
    seq: int
    message_id: str
    sender: str
    kind: _envelope_pb2.Kind
    subject: str
    received_ms: int
    acked: bool
    priority: int
    state: str
    changed_by: str
    status: str
    ref_message_id: str
    business_doc_type: int
    pending_request: str
    doc_state: DocState
    pending: PendingRequest
    held_for: str
    def __init__(self, seq: _Optional[int] = ..., message_id: _Optional[str] = ..., sender: _Optional[str] = ..., kind: _Optional[_Union[_envelope_pb2.Kind, str]] = ..., subject: _Optional[str] = ..., received_ms: _Optional[int] = ..., acked: _Optional[bool] = ..., priority: _Optional[int] = ..., state: _Optional[str] = ..., changed_by: _Optional[str] = ..., status: _Optional[str] = ..., ref_message_id: _Optional[str] = ..., business_doc_type: _Optional[int] = ..., pending_request: _Optional[str] = ..., doc_state: _Optional[_Union[DocState, str]] = ..., pending: _Optional[_Union[PendingRequest, str]] = ..., held_for: _Optional[str] = ...) -> None: ...

class ListInboxResponse(_message.Message):
    __slots__ = ("entries", "has_more")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[InboxEntry]
    has_more: bool
    def __init__(self, entries: _Optional[_Iterable[_Union[InboxEntry, _Mapping]]] = ..., has_more: _Optional[bool] = ...) -> None: ...

class FetchRequest(_message.Message):
    __slots__ = ("message_id", "keep_wrapped")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    KEEP_WRAPPED_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    keep_wrapped: bool
    def __init__(self, message_id: _Optional[str] = ..., keep_wrapped: _Optional[bool] = ...) -> None: ...

class HopView(_message.Message):
    __slots__ = ("code", "time_ms", "verified")
    CODE_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    code: str
    time_ms: int
    verified: bool
    def __init__(self, code: _Optional[str] = ..., time_ms: _Optional[int] = ..., verified: _Optional[bool] = ...) -> None: ...

class FetchResponse(_message.Message):
    __slots__ = ("entry", "payload", "signature_verified", "signer_subject", "path", "envelope", "receipt")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_VERIFIED_FIELD_NUMBER: _ClassVar[int]
    SIGNER_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    entry: InboxEntry
    payload: _envelope_pb2.Payload
    signature_verified: bool
    signer_subject: str
    path: _containers.RepeatedCompositeFieldContainer[HopView]
    envelope: bytes
    receipt: _envelope_pb2.Receipt
    def __init__(self, entry: _Optional[_Union[InboxEntry, _Mapping]] = ..., payload: _Optional[_Union[_envelope_pb2.Payload, _Mapping]] = ..., signature_verified: _Optional[bool] = ..., signer_subject: _Optional[str] = ..., path: _Optional[_Iterable[_Union[HopView, _Mapping]]] = ..., envelope: _Optional[bytes] = ..., receipt: _Optional[_Union[_envelope_pb2.Receipt, _Mapping]] = ...) -> None: ...

class AckRequest(_message.Message):
    __slots__ = ("message_id",)
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    def __init__(self, message_id: _Optional[str] = ...) -> None: ...

class AckResponse(_message.Message):
    __slots__ = ("was_new",)
    WAS_NEW_FIELD_NUMBER: _ClassVar[int]
    was_new: bool
    def __init__(self, was_new: _Optional[bool] = ...) -> None: ...

class ListSentRequest(_message.Message):
    __slots__ = ("limit", "after_seq", "state", "send_state")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SEND_STATE_FIELD_NUMBER: _ClassVar[int]
    limit: int
    after_seq: int
    state: str
    send_state: SendState
    def __init__(self, limit: _Optional[int] = ..., after_seq: _Optional[int] = ..., state: _Optional[str] = ..., send_state: _Optional[_Union[SendState, str]] = ...) -> None: ...

class SentEntry(_message.Message):
    __slots__ = ("seq", "message_id", "recipient", "next_hop", "kind", "state", "attempts", "created_ms", "delivered_ms", "reason", "receipt", "subject", "latest_status", "latest_status_ms", "send_state", "waits_at", "waits_until_ms", "held_for")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    NEXT_HOP_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_MS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    LATEST_STATUS_FIELD_NUMBER: _ClassVar[int]
    LATEST_STATUS_MS_FIELD_NUMBER: _ClassVar[int]
    SEND_STATE_FIELD_NUMBER: _ClassVar[int]
    WAITS_AT_FIELD_NUMBER: _ClassVar[int]
    WAITS_UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    HELD_FOR_FIELD_NUMBER: _ClassVar[int]
    seq: int
    message_id: str
    recipient: str
    next_hop: str
    kind: _envelope_pb2.Kind
    state: str
    attempts: int
    created_ms: int
    delivered_ms: int
    reason: str
    receipt: _envelope_pb2.Receipt
    subject: str
    latest_status: str
    latest_status_ms: int
    send_state: SendState
    waits_at: str
    waits_until_ms: int
    held_for: str
    def __init__(self, seq: _Optional[int] = ..., message_id: _Optional[str] = ..., recipient: _Optional[str] = ..., next_hop: _Optional[str] = ..., kind: _Optional[_Union[_envelope_pb2.Kind, str]] = ..., state: _Optional[str] = ..., attempts: _Optional[int] = ..., created_ms: _Optional[int] = ..., delivered_ms: _Optional[int] = ..., reason: _Optional[str] = ..., receipt: _Optional[_Union[_envelope_pb2.Receipt, _Mapping]] = ..., subject: _Optional[str] = ..., latest_status: _Optional[str] = ..., latest_status_ms: _Optional[int] = ..., send_state: _Optional[_Union[SendState, str]] = ..., waits_at: _Optional[str] = ..., waits_until_ms: _Optional[int] = ..., held_for: _Optional[str] = ...) -> None: ...

class ListSentResponse(_message.Message):
    __slots__ = ("entries", "has_more")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[SentEntry]
    has_more: bool
    def __init__(self, entries: _Optional[_Iterable[_Union[SentEntry, _Mapping]]] = ..., has_more: _Optional[bool] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("inbox", "sent", "registry")
    INBOX_FIELD_NUMBER: _ClassVar[int]
    SENT_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_FIELD_NUMBER: _ClassVar[int]
    inbox: bool
    sent: bool
    registry: bool
    def __init__(self, inbox: _Optional[bool] = ..., sent: _Optional[bool] = ..., registry: _Optional[bool] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("type", "message_id", "peer", "recipient", "kind", "time_ms", "reason", "time_us", "ref_message_id", "status_code", "seq", "crl_number", "event_type", "waits_until_ms", "succession_number", "successor_of")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TIME_US_FIELD_NUMBER: _ClassVar[int]
    REF_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    CRL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    WAITS_UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    SUCCESSION_NUMBER_FIELD_NUMBER: _ClassVar[int]
    SUCCESSOR_OF_FIELD_NUMBER: _ClassVar[int]
    type: str
    message_id: str
    peer: str
    recipient: str
    kind: _envelope_pb2.Kind
    time_ms: int
    reason: str
    time_us: int
    ref_message_id: str
    status_code: str
    seq: int
    crl_number: int
    event_type: EventType
    waits_until_ms: int
    succession_number: int
    successor_of: str
    def __init__(self, type: _Optional[str] = ..., message_id: _Optional[str] = ..., peer: _Optional[str] = ..., recipient: _Optional[str] = ..., kind: _Optional[_Union[_envelope_pb2.Kind, str]] = ..., time_ms: _Optional[int] = ..., reason: _Optional[str] = ..., time_us: _Optional[int] = ..., ref_message_id: _Optional[str] = ..., status_code: _Optional[str] = ..., seq: _Optional[int] = ..., crl_number: _Optional[int] = ..., event_type: _Optional[_Union[EventType, str]] = ..., waits_until_ms: _Optional[int] = ..., succession_number: _Optional[int] = ..., successor_of: _Optional[str] = ...) -> None: ...

class DirectoryRequest(_message.Message):
    __slots__ = ("parent", "recursive", "level", "name_contains", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    RECURSIVE_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    NAME_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    recursive: bool
    level: int
    name_contains: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., recursive: _Optional[bool] = ..., level: _Optional[int] = ..., name_contains: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class Agency(_message.Message):
    __slots__ = ("code", "name", "level", "parent", "endpoint", "reachable", "last_seen_ms", "successor", "retired_ms", "retired_by", "retired_reason")
    CODE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    REACHABLE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_MS_FIELD_NUMBER: _ClassVar[int]
    SUCCESSOR_FIELD_NUMBER: _ClassVar[int]
    RETIRED_MS_FIELD_NUMBER: _ClassVar[int]
    RETIRED_BY_FIELD_NUMBER: _ClassVar[int]
    RETIRED_REASON_FIELD_NUMBER: _ClassVar[int]
    code: str
    name: str
    level: int
    parent: str
    endpoint: str
    reachable: bool
    last_seen_ms: int
    successor: str
    retired_ms: int
    retired_by: str
    retired_reason: str
    def __init__(self, code: _Optional[str] = ..., name: _Optional[str] = ..., level: _Optional[int] = ..., parent: _Optional[str] = ..., endpoint: _Optional[str] = ..., reachable: _Optional[bool] = ..., last_seen_ms: _Optional[int] = ..., successor: _Optional[str] = ..., retired_ms: _Optional[int] = ..., retired_by: _Optional[str] = ..., retired_reason: _Optional[str] = ...) -> None: ...

class DirectoryResponse(_message.Message):
    __slots__ = ("agencies", "has_more", "next_page_token")
    AGENCIES_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    agencies: _containers.RepeatedCompositeFieldContainer[Agency]
    has_more: bool
    next_page_token: str
    def __init__(self, agencies: _Optional[_Iterable[_Union[Agency, _Mapping]]] = ..., has_more: _Optional[bool] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class AgencyLookupRequest(_message.Message):
    __slots__ = ("code",)
    CODE_FIELD_NUMBER: _ClassVar[int]
    code: str
    def __init__(self, code: _Optional[str] = ...) -> None: ...

class SetStatusRequest(_message.Message):
    __slots__ = ("message_id", "status_code", "staff_info", "description", "client_key")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    STAFF_INFO_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CLIENT_KEY_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    status_code: str
    staff_info: _envelope_pb2.StaffInfo
    description: str
    client_key: str
    def __init__(self, message_id: _Optional[str] = ..., status_code: _Optional[str] = ..., staff_info: _Optional[_Union[_envelope_pb2.StaffInfo, _Mapping]] = ..., description: _Optional[str] = ..., client_key: _Optional[str] = ...) -> None: ...

class SetStatusResponse(_message.Message):
    __slots__ = ("message_id",)
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    def __init__(self, message_id: _Optional[str] = ...) -> None: ...

class ChangeRequest(_message.Message):
    __slots__ = ("doc_id", "business_doc_type", "take_back", "reason", "document", "staff_info", "client_key")
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    BUSINESS_DOC_TYPE_FIELD_NUMBER: _ClassVar[int]
    TAKE_BACK_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    STAFF_INFO_FIELD_NUMBER: _ClassVar[int]
    CLIENT_KEY_FIELD_NUMBER: _ClassVar[int]
    doc_id: str
    business_doc_type: int
    take_back: bool
    reason: str
    document: _envelope_pb2.Document
    staff_info: _envelope_pb2.StaffInfo
    client_key: str
    def __init__(self, doc_id: _Optional[str] = ..., business_doc_type: _Optional[int] = ..., take_back: _Optional[bool] = ..., reason: _Optional[str] = ..., document: _Optional[_Union[_envelope_pb2.Document, _Mapping]] = ..., staff_info: _Optional[_Union[_envelope_pb2.StaffInfo, _Mapping]] = ..., client_key: _Optional[str] = ...) -> None: ...

class StatusView(_message.Message):
    __slots__ = ("status_code", "time_ms", "staff_info", "description", "message_id", "received_ms", "timestamp", "answered_by")
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    STAFF_INFO_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_MS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_BY_FIELD_NUMBER: _ClassVar[int]
    status_code: str
    time_ms: int
    staff_info: _envelope_pb2.StaffInfo
    description: str
    message_id: str
    received_ms: int
    timestamp: str
    answered_by: str
    def __init__(self, status_code: _Optional[str] = ..., time_ms: _Optional[int] = ..., staff_info: _Optional[_Union[_envelope_pb2.StaffInfo, _Mapping]] = ..., description: _Optional[str] = ..., message_id: _Optional[str] = ..., received_ms: _Optional[int] = ..., timestamp: _Optional[str] = ..., answered_by: _Optional[str] = ...) -> None: ...

class RecipientTrack(_message.Message):
    __slots__ = ("recipient", "message_id", "state", "delivered_ms", "arrived_ms", "path", "statuses", "reason", "latest_status", "send_state", "waits_at", "waits_until_ms", "successor_of")
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_MS_FIELD_NUMBER: _ClassVar[int]
    ARRIVED_MS_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    LATEST_STATUS_FIELD_NUMBER: _ClassVar[int]
    SEND_STATE_FIELD_NUMBER: _ClassVar[int]
    WAITS_AT_FIELD_NUMBER: _ClassVar[int]
    WAITS_UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    SUCCESSOR_OF_FIELD_NUMBER: _ClassVar[int]
    recipient: str
    message_id: str
    state: str
    delivered_ms: int
    arrived_ms: int
    path: _containers.RepeatedCompositeFieldContainer[HopView]
    statuses: _containers.RepeatedCompositeFieldContainer[StatusView]
    reason: str
    latest_status: str
    send_state: SendState
    waits_at: str
    waits_until_ms: int
    successor_of: str
    def __init__(self, recipient: _Optional[str] = ..., message_id: _Optional[str] = ..., state: _Optional[str] = ..., delivered_ms: _Optional[int] = ..., arrived_ms: _Optional[int] = ..., path: _Optional[_Iterable[_Union[HopView, _Mapping]]] = ..., statuses: _Optional[_Iterable[_Union[StatusView, _Mapping]]] = ..., reason: _Optional[str] = ..., latest_status: _Optional[str] = ..., send_state: _Optional[_Union[SendState, str]] = ..., waits_at: _Optional[str] = ..., waits_until_ms: _Optional[int] = ..., successor_of: _Optional[str] = ...) -> None: ...

class TrackRequest(_message.Message):
    __slots__ = ("doc_id",)
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    doc_id: str
    def __init__(self, doc_id: _Optional[str] = ...) -> None: ...

class TrackResponse(_message.Message):
    __slots__ = ("doc_id", "subject", "document_id", "created_ms", "recipients", "changes", "held_for")
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    RECIPIENTS_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    HELD_FOR_FIELD_NUMBER: _ClassVar[int]
    doc_id: str
    subject: str
    document_id: str
    created_ms: int
    recipients: _containers.RepeatedCompositeFieldContainer[RecipientTrack]
    changes: _containers.RepeatedScalarFieldContainer[str]
    held_for: str
    def __init__(self, doc_id: _Optional[str] = ..., subject: _Optional[str] = ..., document_id: _Optional[str] = ..., created_ms: _Optional[int] = ..., recipients: _Optional[_Iterable[_Union[RecipientTrack, _Mapping]]] = ..., changes: _Optional[_Iterable[str]] = ..., held_for: _Optional[str] = ...) -> None: ...

class ImportEdxmlRequest(_message.Message):
    __slots__ = ("packet", "recipients", "ref_message_id", "client_key")
    PACKET_FIELD_NUMBER: _ClassVar[int]
    RECIPIENTS_FIELD_NUMBER: _ClassVar[int]
    REF_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_KEY_FIELD_NUMBER: _ClassVar[int]
    packet: bytes
    recipients: _containers.RepeatedScalarFieldContainer[str]
    ref_message_id: str
    client_key: str
    def __init__(self, packet: _Optional[bytes] = ..., recipients: _Optional[_Iterable[str]] = ..., ref_message_id: _Optional[str] = ..., client_key: _Optional[str] = ...) -> None: ...

class ImportEdxmlResponse(_message.Message):
    __slots__ = ("kind", "sent", "status_message_id", "warnings", "payload_kind")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SENT_FIELD_NUMBER: _ClassVar[int]
    STATUS_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_KIND_FIELD_NUMBER: _ClassVar[int]
    kind: str
    sent: SendResponse
    status_message_id: str
    warnings: _containers.RepeatedScalarFieldContainer[str]
    payload_kind: _envelope_pb2.Kind
    def __init__(self, kind: _Optional[str] = ..., sent: _Optional[_Union[SendResponse, _Mapping]] = ..., status_message_id: _Optional[str] = ..., warnings: _Optional[_Iterable[str]] = ..., payload_kind: _Optional[_Union[_envelope_pb2.Kind, str]] = ...) -> None: ...

class ExportEdxmlRequest(_message.Message):
    __slots__ = ("message_id", "unwrap_attachments")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    UNWRAP_ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    unwrap_attachments: bool
    def __init__(self, message_id: _Optional[str] = ..., unwrap_attachments: _Optional[bool] = ...) -> None: ...

class ExportEdxmlResponse(_message.Message):
    __slots__ = ("packet", "file_name", "warnings")
    PACKET_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    packet: bytes
    file_name: str
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, packet: _Optional[bytes] = ..., file_name: _Optional[str] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class CountPendingRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CountPendingResponse(_message.Message):
    __slots__ = ("total", "documents", "statuses", "notices")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    NOTICES_FIELD_NUMBER: _ClassVar[int]
    total: int
    documents: int
    statuses: int
    notices: int
    def __init__(self, total: _Optional[int] = ..., documents: _Optional[int] = ..., statuses: _Optional[int] = ..., notices: _Optional[int] = ...) -> None: ...

class WhoAmIRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ApiLimits(_message.Message):
    __slots__ = ("max_envelope_bytes", "max_api_message_bytes", "recipients_per_send", "attachments_per_document", "documents_per_batch", "max_page", "message_lifetime_seconds")
    MAX_ENVELOPE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_API_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    RECIPIENTS_PER_SEND_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENTS_PER_DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_PER_BATCH_FIELD_NUMBER: _ClassVar[int]
    MAX_PAGE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_LIFETIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    max_envelope_bytes: int
    max_api_message_bytes: int
    recipients_per_send: int
    attachments_per_document: int
    documents_per_batch: int
    max_page: int
    message_lifetime_seconds: int
    def __init__(self, max_envelope_bytes: _Optional[int] = ..., max_api_message_bytes: _Optional[int] = ..., recipients_per_send: _Optional[int] = ..., attachments_per_document: _Optional[int] = ..., documents_per_batch: _Optional[int] = ..., max_page: _Optional[int] = ..., message_lifetime_seconds: _Optional[int] = ...) -> None: ...

class WhoAmIResponse(_message.Message):
    __slots__ = ("code", "name", "level", "parent", "limits", "version", "schema_version", "client", "scopes")
    CODE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    code: str
    name: str
    level: int
    parent: str
    limits: ApiLimits
    version: str
    schema_version: int
    client: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, code: _Optional[str] = ..., name: _Optional[str] = ..., level: _Optional[int] = ..., parent: _Optional[str] = ..., limits: _Optional[_Union[ApiLimits, _Mapping]] = ..., version: _Optional[str] = ..., schema_version: _Optional[int] = ..., client: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ...) -> None: ...
