from node.pb import stats_pb2 as _stats_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HandOverChunk(_message.Message):
    __slots__ = ("backup_sha256", "offset", "data", "total")
    BACKUP_SHA256_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    backup_sha256: str
    offset: int
    data: bytes
    total: int
    def __init__(self, backup_sha256: _Optional[str] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ..., total: _Optional[int] = ...) -> None: ...

class HandOverResponse(_message.Message):
    __slots__ = ("received", "done", "inbox", "sent", "resealed", "kept_sealed", "already")
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    INBOX_FIELD_NUMBER: _ClassVar[int]
    SENT_FIELD_NUMBER: _ClassVar[int]
    RESEALED_FIELD_NUMBER: _ClassVar[int]
    KEPT_SEALED_FIELD_NUMBER: _ClassVar[int]
    ALREADY_FIELD_NUMBER: _ClassVar[int]
    received: int
    done: bool
    inbox: int
    sent: int
    resealed: int
    kept_sealed: int
    already: int
    def __init__(self, received: _Optional[int] = ..., done: _Optional[bool] = ..., inbox: _Optional[int] = ..., sent: _Optional[int] = ..., resealed: _Optional[int] = ..., kept_sealed: _Optional[int] = ..., already: _Optional[int] = ...) -> None: ...

class HeldKeys(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[HeldKey]
    def __init__(self, keys: _Optional[_Iterable[_Union[HeldKey, _Mapping]]] = ...) -> None: ...

class HeldKey(_message.Message):
    __slots__ = ("message_id", "wrap")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    WRAP_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    wrap: bytes
    def __init__(self, message_id: _Optional[str] = ..., wrap: _Optional[bytes] = ...) -> None: ...

class AgencyRecord(_message.Message):
    __slots__ = ("code", "name", "level", "parent", "endpoint", "cert_der", "issued_ms", "seal_key")
    CODE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    CERT_DER_FIELD_NUMBER: _ClassVar[int]
    ISSUED_MS_FIELD_NUMBER: _ClassVar[int]
    SEAL_KEY_FIELD_NUMBER: _ClassVar[int]
    code: str
    name: str
    level: int
    parent: str
    endpoint: str
    cert_der: bytes
    issued_ms: int
    seal_key: bytes
    def __init__(self, code: _Optional[str] = ..., name: _Optional[str] = ..., level: _Optional[int] = ..., parent: _Optional[str] = ..., endpoint: _Optional[str] = ..., cert_der: _Optional[bytes] = ..., issued_ms: _Optional[int] = ..., seal_key: _Optional[bytes] = ...) -> None: ...

class SignedRecord(_message.Message):
    __slots__ = ("record", "signature", "renewal_signature")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    RENEWAL_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    record: bytes
    signature: bytes
    renewal_signature: bytes
    def __init__(self, record: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., renewal_signature: _Optional[bytes] = ...) -> None: ...

class RegisterResponse(_message.Message):
    __slots__ = ("heartbeat_ms", "crl_der", "successions")
    HEARTBEAT_MS_FIELD_NUMBER: _ClassVar[int]
    CRL_DER_FIELD_NUMBER: _ClassVar[int]
    SUCCESSIONS_FIELD_NUMBER: _ClassVar[int]
    heartbeat_ms: int
    crl_der: bytes
    successions: _containers.RepeatedCompositeFieldContainer[SignedSuccessionList]
    def __init__(self, heartbeat_ms: _Optional[int] = ..., crl_der: _Optional[bytes] = ..., successions: _Optional[_Iterable[_Union[SignedSuccessionList, _Mapping]]] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("code", "time_ms", "odd_codes", "subtree_stats", "signed_stats", "crl_number", "succession_numbers")
    class OddCodesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class SuccessionNumbersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    CODE_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    ODD_CODES_FIELD_NUMBER: _ClassVar[int]
    SUBTREE_STATS_FIELD_NUMBER: _ClassVar[int]
    SIGNED_STATS_FIELD_NUMBER: _ClassVar[int]
    CRL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    SUCCESSION_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    code: str
    time_ms: int
    odd_codes: _containers.ScalarMap[str, str]
    subtree_stats: _containers.RepeatedCompositeFieldContainer[_stats_pb2.AgencyStats]
    signed_stats: _containers.RepeatedCompositeFieldContainer[_stats_pb2.SignedStats]
    crl_number: int
    succession_numbers: _containers.ScalarMap[str, int]
    def __init__(self, code: _Optional[str] = ..., time_ms: _Optional[int] = ..., odd_codes: _Optional[_Mapping[str, str]] = ..., subtree_stats: _Optional[_Iterable[_Union[_stats_pb2.AgencyStats, _Mapping]]] = ..., signed_stats: _Optional[_Iterable[_Union[_stats_pb2.SignedStats, _Mapping]]] = ..., crl_number: _Optional[int] = ..., succession_numbers: _Optional[_Mapping[str, int]] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("crl_der", "successions")
    CRL_DER_FIELD_NUMBER: _ClassVar[int]
    SUCCESSIONS_FIELD_NUMBER: _ClassVar[int]
    crl_der: bytes
    successions: _containers.RepeatedCompositeFieldContainer[SignedSuccessionList]
    def __init__(self, crl_der: _Optional[bytes] = ..., successions: _Optional[_Iterable[_Union[SignedSuccessionList, _Mapping]]] = ...) -> None: ...

class Succession(_message.Message):
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

class SuccessionList(_message.Message):
    __slots__ = ("issuer", "number", "issued_ms", "successions")
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    ISSUED_MS_FIELD_NUMBER: _ClassVar[int]
    SUCCESSIONS_FIELD_NUMBER: _ClassVar[int]
    issuer: str
    number: int
    issued_ms: int
    successions: _containers.RepeatedCompositeFieldContainer[Succession]
    def __init__(self, issuer: _Optional[str] = ..., number: _Optional[int] = ..., issued_ms: _Optional[int] = ..., successions: _Optional[_Iterable[_Union[Succession, _Mapping]]] = ...) -> None: ...

class SignedSuccessionList(_message.Message):
    __slots__ = ("body", "signature", "cert_der")
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    CERT_DER_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    signature: bytes
    cert_der: bytes
    def __init__(self, body: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., cert_der: _Optional[bytes] = ...) -> None: ...

class SuccessionPush(_message.Message):
    __slots__ = ("lists",)
    LISTS_FIELD_NUMBER: _ClassVar[int]
    lists: _containers.RepeatedCompositeFieldContainer[SignedSuccessionList]
    def __init__(self, lists: _Optional[_Iterable[_Union[SignedSuccessionList, _Mapping]]] = ...) -> None: ...

class SuccessionPushResponse(_message.Message):
    __slots__ = ("numbers",)
    class NumbersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NUMBERS_FIELD_NUMBER: _ClassVar[int]
    numbers: _containers.ScalarMap[str, int]
    def __init__(self, numbers: _Optional[_Mapping[str, int]] = ...) -> None: ...

class CrlPush(_message.Message):
    __slots__ = ("crl_der",)
    CRL_DER_FIELD_NUMBER: _ClassVar[int]
    crl_der: bytes
    def __init__(self, crl_der: _Optional[bytes] = ...) -> None: ...

class CrlPushResponse(_message.Message):
    __slots__ = ("crl_number",)
    CRL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    crl_number: int
    def __init__(self, crl_number: _Optional[int] = ...) -> None: ...

class DirectoryEntry(_message.Message):
    __slots__ = ("record", "reachable", "last_seen_ms", "succession")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    REACHABLE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_MS_FIELD_NUMBER: _ClassVar[int]
    SUCCESSION_FIELD_NUMBER: _ClassVar[int]
    record: SignedRecord
    reachable: bool
    last_seen_ms: int
    succession: SignedSuccessionList
    def __init__(self, record: _Optional[_Union[SignedRecord, _Mapping]] = ..., reachable: _Optional[bool] = ..., last_seen_ms: _Optional[int] = ..., succession: _Optional[_Union[SignedSuccessionList, _Mapping]] = ...) -> None: ...

class LookupRequest(_message.Message):
    __slots__ = ("code", "from_below", "fresh")
    CODE_FIELD_NUMBER: _ClassVar[int]
    FROM_BELOW_FIELD_NUMBER: _ClassVar[int]
    FRESH_FIELD_NUMBER: _ClassVar[int]
    code: str
    from_below: bool
    fresh: bool
    def __init__(self, code: _Optional[str] = ..., from_below: _Optional[bool] = ..., fresh: _Optional[bool] = ...) -> None: ...

class LookupResponse(_message.Message):
    __slots__ = ("entry",)
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    entry: DirectoryEntry
    def __init__(self, entry: _Optional[_Union[DirectoryEntry, _Mapping]] = ...) -> None: ...

class ChildrenRequest(_message.Message):
    __slots__ = ("code", "recursive", "from_below")
    CODE_FIELD_NUMBER: _ClassVar[int]
    RECURSIVE_FIELD_NUMBER: _ClassVar[int]
    FROM_BELOW_FIELD_NUMBER: _ClassVar[int]
    code: str
    recursive: bool
    from_below: bool
    def __init__(self, code: _Optional[str] = ..., recursive: _Optional[bool] = ..., from_below: _Optional[bool] = ...) -> None: ...

class ChildrenResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[DirectoryEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[DirectoryEntry, _Mapping]]] = ...) -> None: ...

class CheckpointBody(_message.Message):
    __slots__ = ("code", "seq", "head", "time_ms", "restored_from_seq", "restored_from_head", "backup")
    CODE_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    HEAD_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    RESTORED_FROM_SEQ_FIELD_NUMBER: _ClassVar[int]
    RESTORED_FROM_HEAD_FIELD_NUMBER: _ClassVar[int]
    BACKUP_FIELD_NUMBER: _ClassVar[int]
    code: str
    seq: int
    head: bytes
    time_ms: int
    restored_from_seq: int
    restored_from_head: bytes
    backup: str
    def __init__(self, code: _Optional[str] = ..., seq: _Optional[int] = ..., head: _Optional[bytes] = ..., time_ms: _Optional[int] = ..., restored_from_seq: _Optional[int] = ..., restored_from_head: _Optional[bytes] = ..., backup: _Optional[str] = ...) -> None: ...

class SignedCheckpoint(_message.Message):
    __slots__ = ("body", "signature", "cert_der")
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    CERT_DER_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    signature: bytes
    cert_der: bytes
    def __init__(self, body: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., cert_der: _Optional[bytes] = ...) -> None: ...

class CheckpointRequest(_message.Message):
    __slots__ = ("code", "seq")
    CODE_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    code: str
    seq: int
    def __init__(self, code: _Optional[str] = ..., seq: _Optional[int] = ...) -> None: ...

class CheckpointResponse(_message.Message):
    __slots__ = ("latest", "at_seq", "restores")
    LATEST_FIELD_NUMBER: _ClassVar[int]
    AT_SEQ_FIELD_NUMBER: _ClassVar[int]
    RESTORES_FIELD_NUMBER: _ClassVar[int]
    latest: SignedCheckpoint
    at_seq: SignedCheckpoint
    restores: _containers.RepeatedCompositeFieldContainer[RestoreRecord]
    def __init__(self, latest: _Optional[_Union[SignedCheckpoint, _Mapping]] = ..., at_seq: _Optional[_Union[SignedCheckpoint, _Mapping]] = ..., restores: _Optional[_Iterable[_Union[RestoreRecord, _Mapping]]] = ...) -> None: ...

class RestoreRecord(_message.Message):
    __slots__ = ("restore", "superseded", "received_ms")
    RESTORE_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDED_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_MS_FIELD_NUMBER: _ClassVar[int]
    restore: SignedCheckpoint
    superseded: SignedCheckpoint
    received_ms: int
    def __init__(self, restore: _Optional[_Union[SignedCheckpoint, _Mapping]] = ..., superseded: _Optional[_Union[SignedCheckpoint, _Mapping]] = ..., received_ms: _Optional[int] = ...) -> None: ...
