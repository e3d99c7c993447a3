from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HandOverRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TakeoverRequest(_message.Message):
    __slots__ = ("backup", "seal_key")
    BACKUP_FIELD_NUMBER: _ClassVar[int]
    SEAL_KEY_FIELD_NUMBER: _ClassVar[int]
    backup: str
    seal_key: str
    def __init__(self, backup: _Optional[str] = ..., seal_key: _Optional[str] = ...) -> None: ...

class TakeoverResponse(_message.Message):
    __slots__ = ("predecessor", "inbox", "sent", "resealed", "kept_sealed", "already", "backup_sha256")
    PREDECESSOR_FIELD_NUMBER: _ClassVar[int]
    INBOX_FIELD_NUMBER: _ClassVar[int]
    SENT_FIELD_NUMBER: _ClassVar[int]
    RESEALED_FIELD_NUMBER: _ClassVar[int]
    KEPT_SEALED_FIELD_NUMBER: _ClassVar[int]
    ALREADY_FIELD_NUMBER: _ClassVar[int]
    BACKUP_SHA256_FIELD_NUMBER: _ClassVar[int]
    predecessor: str
    inbox: int
    sent: int
    resealed: int
    kept_sealed: int
    already: int
    backup_sha256: str
    def __init__(self, predecessor: _Optional[str] = ..., inbox: _Optional[int] = ..., sent: _Optional[int] = ..., resealed: _Optional[int] = ..., kept_sealed: _Optional[int] = ..., already: _Optional[int] = ..., backup_sha256: _Optional[str] = ...) -> None: ...

class RetireRequest(_message.Message):
    __slots__ = ("to",)
    TO_FIELD_NUMBER: _ClassVar[int]
    to: str
    def __init__(self, to: _Optional[str] = ...) -> None: ...

class RetireStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RetireResponse(_message.Message):
    __slots__ = ("successor", "started_ms", "queued", "parked", "unfetched", "drained", "revoke_command")
    SUCCESSOR_FIELD_NUMBER: _ClassVar[int]
    STARTED_MS_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    PARKED_FIELD_NUMBER: _ClassVar[int]
    UNFETCHED_FIELD_NUMBER: _ClassVar[int]
    DRAINED_FIELD_NUMBER: _ClassVar[int]
    REVOKE_COMMAND_FIELD_NUMBER: _ClassVar[int]
    successor: str
    started_ms: int
    queued: int
    parked: int
    unfetched: int
    drained: bool
    revoke_command: str
    def __init__(self, successor: _Optional[str] = ..., started_ms: _Optional[int] = ..., queued: _Optional[int] = ..., parked: _Optional[int] = ..., unfetched: _Optional[int] = ..., drained: _Optional[bool] = ..., revoke_command: _Optional[str] = ...) -> None: ...

class IssueSuccessionRequest(_message.Message):
    __slots__ = ("old_codes", "successor", "effective_ms", "reason")
    OLD_CODES_FIELD_NUMBER: _ClassVar[int]
    SUCCESSOR_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_MS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    old_codes: _containers.RepeatedScalarFieldContainer[str]
    successor: str
    effective_ms: int
    reason: str
    def __init__(self, old_codes: _Optional[_Iterable[str]] = ..., successor: _Optional[str] = ..., effective_ms: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class SuccessionView(_message.Message):
    __slots__ = ("issuer", "number", "old_codes", "successor", "effective_ms", "reason", "issued_ms")
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    OLD_CODES_FIELD_NUMBER: _ClassVar[int]
    SUCCESSOR_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_MS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ISSUED_MS_FIELD_NUMBER: _ClassVar[int]
    issuer: str
    number: int
    old_codes: _containers.RepeatedScalarFieldContainer[str]
    successor: str
    effective_ms: int
    reason: str
    issued_ms: int
    def __init__(self, issuer: _Optional[str] = ..., number: _Optional[int] = ..., old_codes: _Optional[_Iterable[str]] = ..., successor: _Optional[str] = ..., effective_ms: _Optional[int] = ..., reason: _Optional[str] = ..., issued_ms: _Optional[int] = ...) -> None: ...

class IssueSuccessionResponse(_message.Message):
    __slots__ = ("succession", "rerouted")
    SUCCESSION_FIELD_NUMBER: _ClassVar[int]
    REROUTED_FIELD_NUMBER: _ClassVar[int]
    succession: SuccessionView
    rerouted: int
    def __init__(self, succession: _Optional[_Union[SuccessionView, _Mapping]] = ..., rerouted: _Optional[int] = ...) -> None: ...

class ListSuccessionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSuccessionsResponse(_message.Message):
    __slots__ = ("successions",)
    SUCCESSIONS_FIELD_NUMBER: _ClassVar[int]
    successions: _containers.RepeatedCompositeFieldContainer[SuccessionView]
    def __init__(self, successions: _Optional[_Iterable[_Union[SuccessionView, _Mapping]]] = ...) -> None: ...

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

class RunningRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CrlInUse(_message.Message):
    __slots__ = ("held", "number", "next_update_ms", "revoked", "source", "stale")
    HELD_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    NEXT_UPDATE_MS_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    held: bool
    number: int
    next_update_ms: int
    revoked: int
    source: str
    stale: bool
    def __init__(self, held: _Optional[bool] = ..., number: _Optional[int] = ..., next_update_ms: _Optional[int] = ..., revoked: _Optional[int] = ..., source: _Optional[str] = ..., stale: _Optional[bool] = ...) -> None: ...

class OwnCertificate(_message.Message):
    __slots__ = ("code", "serial", "not_after_ms", "revoked")
    CODE_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    code: str
    serial: str
    not_after_ms: int
    revoked: bool
    def __init__(self, code: _Optional[str] = ..., serial: _Optional[str] = ..., not_after_ms: _Optional[int] = ..., revoked: _Optional[bool] = ...) -> None: ...

class RunningResponse(_message.Message):
    __slots__ = ("config_file", "config", "crl", "certificate", "version", "started_ms", "last_reload_ms", "last_reload")
    class ConfigEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CONFIG_FILE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    CRL_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STARTED_MS_FIELD_NUMBER: _ClassVar[int]
    LAST_RELOAD_MS_FIELD_NUMBER: _ClassVar[int]
    LAST_RELOAD_FIELD_NUMBER: _ClassVar[int]
    config_file: str
    config: _containers.ScalarMap[str, str]
    crl: CrlInUse
    certificate: OwnCertificate
    version: str
    started_ms: int
    last_reload_ms: int
    last_reload: str
    def __init__(self, config_file: _Optional[str] = ..., config: _Optional[_Mapping[str, str]] = ..., crl: _Optional[_Union[CrlInUse, _Mapping]] = ..., certificate: _Optional[_Union[OwnCertificate, _Mapping]] = ..., version: _Optional[str] = ..., started_ms: _Optional[int] = ..., last_reload_ms: _Optional[int] = ..., last_reload: _Optional[str] = ...) -> None: ...

class ListQueueRequest(_message.Message):
    __slots__ = ("hop", "parked", "after_seq", "limit")
    HOP_FIELD_NUMBER: _ClassVar[int]
    PARKED_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    hop: str
    parked: bool
    after_seq: int
    limit: int
    def __init__(self, hop: _Optional[str] = ..., parked: _Optional[bool] = ..., after_seq: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class QueuedMessage(_message.Message):
    __slots__ = ("message_id", "sender", "recipient", "next_hop", "kind", "size", "created_ms", "attempts", "last_error", "held", "hop_held", "parked", "park_until_ms", "origin", "expires_ms", "not_before_ms", "seq")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    NEXT_HOP_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    HOP_HELD_FIELD_NUMBER: _ClassVar[int]
    PARKED_FIELD_NUMBER: _ClassVar[int]
    PARK_UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_MS_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_MS_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    sender: str
    recipient: str
    next_hop: str
    kind: str
    size: int
    created_ms: int
    attempts: int
    last_error: str
    held: bool
    hop_held: bool
    parked: bool
    park_until_ms: int
    origin: str
    expires_ms: int
    not_before_ms: int
    seq: int
    def __init__(self, message_id: _Optional[str] = ..., sender: _Optional[str] = ..., recipient: _Optional[str] = ..., next_hop: _Optional[str] = ..., kind: _Optional[str] = ..., size: _Optional[int] = ..., created_ms: _Optional[int] = ..., attempts: _Optional[int] = ..., last_error: _Optional[str] = ..., held: _Optional[bool] = ..., hop_held: _Optional[bool] = ..., parked: _Optional[bool] = ..., park_until_ms: _Optional[int] = ..., origin: _Optional[str] = ..., expires_ms: _Optional[int] = ..., not_before_ms: _Optional[int] = ..., seq: _Optional[int] = ...) -> None: ...

class ListQueueResponse(_message.Message):
    __slots__ = ("messages", "now_ms", "next_after_seq")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    NOW_MS_FIELD_NUMBER: _ClassVar[int]
    NEXT_AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[QueuedMessage]
    now_ms: int
    next_after_seq: int
    def __init__(self, messages: _Optional[_Iterable[_Union[QueuedMessage, _Mapping]]] = ..., now_ms: _Optional[int] = ..., next_after_seq: _Optional[int] = ...) -> None: ...

class MessageRequest(_message.Message):
    __slots__ = ("message_id",)
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    def __init__(self, message_id: _Optional[str] = ...) -> None: ...
