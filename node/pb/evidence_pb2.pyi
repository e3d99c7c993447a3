from node.pb import envelope_pb2 as _envelope_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EvidenceBundle(_message.Message):
    __slots__ = ("body", "signature")
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    signature: bytes
    def __init__(self, body: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class EvidenceItem(_message.Message):
    __slots__ = ("envelope", "receipts", "content_key")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    CONTENT_KEY_FIELD_NUMBER: _ClassVar[int]
    envelope: bytes
    receipts: _containers.RepeatedCompositeFieldContainer[_envelope_pb2.Receipt]
    content_key: bytes
    def __init__(self, envelope: _Optional[bytes] = ..., receipts: _Optional[_Iterable[_Union[_envelope_pb2.Receipt, _Mapping]]] = ..., content_key: _Optional[bytes] = ...) -> None: ...

class EvidenceBody(_message.Message):
    __slots__ = ("version", "message_id", "made_by", "made_ms", "document", "statuses", "certificates", "crls", "made_by_cert", "held_for", "successions")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    MADE_BY_FIELD_NUMBER: _ClassVar[int]
    MADE_MS_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATES_FIELD_NUMBER: _ClassVar[int]
    CRLS_FIELD_NUMBER: _ClassVar[int]
    MADE_BY_CERT_FIELD_NUMBER: _ClassVar[int]
    HELD_FOR_FIELD_NUMBER: _ClassVar[int]
    SUCCESSIONS_FIELD_NUMBER: _ClassVar[int]
    version: int
    message_id: str
    made_by: str
    made_ms: int
    document: EvidenceItem
    statuses: _containers.RepeatedCompositeFieldContainer[EvidenceItem]
    certificates: _containers.RepeatedScalarFieldContainer[bytes]
    crls: _containers.RepeatedScalarFieldContainer[bytes]
    made_by_cert: bytes
    held_for: str
    successions: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, version: _Optional[int] = ..., message_id: _Optional[str] = ..., made_by: _Optional[str] = ..., made_ms: _Optional[int] = ..., document: _Optional[_Union[EvidenceItem, _Mapping]] = ..., statuses: _Optional[_Iterable[_Union[EvidenceItem, _Mapping]]] = ..., certificates: _Optional[_Iterable[bytes]] = ..., crls: _Optional[_Iterable[bytes]] = ..., made_by_cert: _Optional[bytes] = ..., held_for: _Optional[str] = ..., successions: _Optional[_Iterable[bytes]] = ...) -> None: ...
