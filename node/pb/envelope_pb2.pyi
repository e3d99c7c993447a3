from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Seal(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLAIN: _ClassVar[Seal]
    SEALED_P256_AES256GCM: _ClassVar[Seal]

class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KIND_UNSPECIFIED: _ClassVar[Kind]
    DOCUMENT: _ClassVar[Kind]
    STATUS: _ClassVar[Kind]
    NOTICE: _ClassVar[Kind]
PLAIN: Seal
SEALED_P256_AES256GCM: Seal
KIND_UNSPECIFIED: Kind
DOCUMENT: Kind
STATUS: Kind
NOTICE: Kind

class Header(_message.Message):
    __slots__ = ("message_id", "sender", "recipient", "kind", "created_ms", "expires_ms", "priority", "payload_sha256", "payload_size", "ref_message_id", "seal")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_MS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_SHA256_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_SIZE_FIELD_NUMBER: _ClassVar[int]
    REF_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SEAL_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    sender: str
    recipient: str
    kind: Kind
    created_ms: int
    expires_ms: int
    priority: int
    payload_sha256: bytes
    payload_size: int
    ref_message_id: str
    seal: Seal
    def __init__(self, message_id: _Optional[str] = ..., sender: _Optional[str] = ..., recipient: _Optional[str] = ..., kind: _Optional[_Union[Kind, str]] = ..., created_ms: _Optional[int] = ..., expires_ms: _Optional[int] = ..., priority: _Optional[int] = ..., payload_sha256: _Optional[bytes] = ..., payload_size: _Optional[int] = ..., ref_message_id: _Optional[str] = ..., seal: _Optional[_Union[Seal, str]] = ...) -> None: ...

class TraceBody(_message.Message):
    __slots__ = ("code", "time_ms", "header_sha256", "prev_sha256")
    CODE_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    HEADER_SHA256_FIELD_NUMBER: _ClassVar[int]
    PREV_SHA256_FIELD_NUMBER: _ClassVar[int]
    code: str
    time_ms: int
    header_sha256: bytes
    prev_sha256: bytes
    def __init__(self, code: _Optional[str] = ..., time_ms: _Optional[int] = ..., header_sha256: _Optional[bytes] = ..., prev_sha256: _Optional[bytes] = ...) -> None: ...

class TraceEntry(_message.Message):
    __slots__ = ("body", "signature", "cert_der")
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    CERT_DER_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    signature: bytes
    cert_der: bytes
    def __init__(self, body: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., cert_der: _Optional[bytes] = ...) -> None: ...

class Envelope(_message.Message):
    __slots__ = ("header", "signature", "sender_cert", "payload", "trace")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    SENDER_CERT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    TRACE_FIELD_NUMBER: _ClassVar[int]
    header: bytes
    signature: bytes
    sender_cert: bytes
    payload: bytes
    trace: _containers.RepeatedCompositeFieldContainer[TraceEntry]
    def __init__(self, header: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., sender_cert: _Optional[bytes] = ..., payload: _Optional[bytes] = ..., trace: _Optional[_Iterable[_Union[TraceEntry, _Mapping]]] = ...) -> None: ...

class ReceiptBody(_message.Message):
    __slots__ = ("receiver", "received_ms", "root")
    RECEIVER_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_MS_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    receiver: str
    received_ms: int
    root: bytes
    def __init__(self, receiver: _Optional[str] = ..., received_ms: _Optional[int] = ..., root: _Optional[bytes] = ...) -> None: ...

class ProofStep(_message.Message):
    __slots__ = ("sibling", "sibling_left")
    SIBLING_FIELD_NUMBER: _ClassVar[int]
    SIBLING_LEFT_FIELD_NUMBER: _ClassVar[int]
    sibling: bytes
    sibling_left: bool
    def __init__(self, sibling: _Optional[bytes] = ..., sibling_left: _Optional[bool] = ...) -> None: ...

class Receipt(_message.Message):
    __slots__ = ("body", "signature", "receiver_cert", "message_id", "envelope_sha256", "proof")
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_CERT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_SHA256_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    signature: bytes
    receiver_cert: bytes
    message_id: str
    envelope_sha256: bytes
    proof: _containers.RepeatedCompositeFieldContainer[ProofStep]
    def __init__(self, body: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., receiver_cert: _Optional[bytes] = ..., message_id: _Optional[str] = ..., envelope_sha256: _Optional[bytes] = ..., proof: _Optional[_Iterable[_Union[ProofStep, _Mapping]]] = ...) -> None: ...

class KeyWrap(_message.Message):
    __slots__ = ("key_id", "ephemeral", "wrapped_key", "salt")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    EPHEMERAL_FIELD_NUMBER: _ClassVar[int]
    WRAPPED_KEY_FIELD_NUMBER: _ClassVar[int]
    SALT_FIELD_NUMBER: _ClassVar[int]
    key_id: bytes
    ephemeral: bytes
    wrapped_key: bytes
    salt: bytes
    def __init__(self, key_id: _Optional[bytes] = ..., ephemeral: _Optional[bytes] = ..., wrapped_key: _Optional[bytes] = ..., salt: _Optional[bytes] = ...) -> None: ...

class SealedPayload(_message.Message):
    __slots__ = ("nonce", "ciphertext", "wraps", "sender_key")
    NONCE_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    WRAPS_FIELD_NUMBER: _ClassVar[int]
    SENDER_KEY_FIELD_NUMBER: _ClassVar[int]
    nonce: bytes
    ciphertext: bytes
    wraps: _containers.RepeatedCompositeFieldContainer[KeyWrap]
    sender_key: bytes
    def __init__(self, nonce: _Optional[bytes] = ..., ciphertext: _Optional[bytes] = ..., wraps: _Optional[_Iterable[_Union[KeyWrap, _Mapping]]] = ..., sender_key: _Optional[bytes] = ...) -> None: ...

class Payload(_message.Message):
    __slots__ = ("document", "status", "notice")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    NOTICE_FIELD_NUMBER: _ClassVar[int]
    document: Document
    status: Status
    notice: Notice
    def __init__(self, document: _Optional[_Union[Document, _Mapping]] = ..., status: _Optional[_Union[Status, _Mapping]] = ..., notice: _Optional[_Union[Notice, _Mapping]] = ...) -> None: ...

class Organization(_message.Message):
    __slots__ = ("organ_id", "organization_in_charge", "organ_name", "organ_add", "email", "telephone", "fax", "website")
    ORGAN_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_IN_CHARGE_FIELD_NUMBER: _ClassVar[int]
    ORGAN_NAME_FIELD_NUMBER: _ClassVar[int]
    ORGAN_ADD_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    TELEPHONE_FIELD_NUMBER: _ClassVar[int]
    FAX_FIELD_NUMBER: _ClassVar[int]
    WEBSITE_FIELD_NUMBER: _ClassVar[int]
    organ_id: str
    organization_in_charge: str
    organ_name: str
    organ_add: str
    email: str
    telephone: str
    fax: str
    website: str
    def __init__(self, organ_id: _Optional[str] = ..., organization_in_charge: _Optional[str] = ..., organ_name: _Optional[str] = ..., organ_add: _Optional[str] = ..., email: _Optional[str] = ..., telephone: _Optional[str] = ..., fax: _Optional[str] = ..., website: _Optional[str] = ...) -> None: ...

class DocCode(_message.Message):
    __slots__ = ("code_number", "code_notation")
    CODE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CODE_NOTATION_FIELD_NUMBER: _ClassVar[int]
    code_number: str
    code_notation: str
    def __init__(self, code_number: _Optional[str] = ..., code_notation: _Optional[str] = ...) -> None: ...

class PromulgationInfo(_message.Message):
    __slots__ = ("place", "promulgation_date")
    PLACE_FIELD_NUMBER: _ClassVar[int]
    PROMULGATION_DATE_FIELD_NUMBER: _ClassVar[int]
    place: str
    promulgation_date: str
    def __init__(self, place: _Optional[str] = ..., promulgation_date: _Optional[str] = ...) -> None: ...

class DocumentType(_message.Message):
    __slots__ = ("type", "type_detail", "type_name")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TYPE_DETAIL_FIELD_NUMBER: _ClassVar[int]
    TYPE_NAME_FIELD_NUMBER: _ClassVar[int]
    type: str
    type_detail: str
    type_name: str
    def __init__(self, type: _Optional[str] = ..., type_detail: _Optional[str] = ..., type_name: _Optional[str] = ...) -> None: ...

class SignerInfo(_message.Message):
    __slots__ = ("competence", "position", "full_name")
    COMPETENCE_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    FULL_NAME_FIELD_NUMBER: _ClassVar[int]
    competence: str
    position: str
    full_name: str
    def __init__(self, competence: _Optional[str] = ..., position: _Optional[str] = ..., full_name: _Optional[str] = ...) -> None: ...

class OtherInfo(_message.Message):
    __slots__ = ("priority", "sphere_of_promulgation", "typer_notation", "promulgation_amount", "page_amount", "direction", "appendixes")
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    SPHERE_OF_PROMULGATION_FIELD_NUMBER: _ClassVar[int]
    TYPER_NOTATION_FIELD_NUMBER: _ClassVar[int]
    PROMULGATION_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    PAGE_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    APPENDIXES_FIELD_NUMBER: _ClassVar[int]
    priority: int
    sphere_of_promulgation: str
    typer_notation: str
    promulgation_amount: str
    page_amount: str
    direction: str
    appendixes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, priority: _Optional[int] = ..., sphere_of_promulgation: _Optional[str] = ..., typer_notation: _Optional[str] = ..., promulgation_amount: _Optional[str] = ..., page_amount: _Optional[str] = ..., direction: _Optional[str] = ..., appendixes: _Optional[_Iterable[str]] = ...) -> None: ...

class ResponseFor(_message.Message):
    __slots__ = ("organ_id", "code", "promulgation_date", "document_id")
    ORGAN_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    PROMULGATION_DATE_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    organ_id: str
    code: str
    promulgation_date: str
    document_id: str
    def __init__(self, organ_id: _Optional[str] = ..., code: _Optional[str] = ..., promulgation_date: _Optional[str] = ..., document_id: _Optional[str] = ...) -> None: ...

class StaffInfo(_message.Message):
    __slots__ = ("department", "staff", "email", "mobile")
    DEPARTMENT_FIELD_NUMBER: _ClassVar[int]
    STAFF_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    MOBILE_FIELD_NUMBER: _ClassVar[int]
    department: str
    staff: str
    email: str
    mobile: str
    def __init__(self, department: _Optional[str] = ..., staff: _Optional[str] = ..., email: _Optional[str] = ..., mobile: _Optional[str] = ...) -> None: ...

class Receiver(_message.Message):
    __slots__ = ("organ_id", "receiver_type")
    ORGAN_ID_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_TYPE_FIELD_NUMBER: _ClassVar[int]
    organ_id: str
    receiver_type: str
    def __init__(self, organ_id: _Optional[str] = ..., receiver_type: _Optional[str] = ...) -> None: ...

class ReplacementInfo(_message.Message):
    __slots__ = ("document_id", "organ_ids")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ORGAN_IDS_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    organ_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, document_id: _Optional[str] = ..., organ_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class Business(_message.Message):
    __slots__ = ("document_id", "business_doc_type", "business_doc_reason", "paper", "document_info", "document_receiver", "receivers", "replacements", "staff_info")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    BUSINESS_DOC_TYPE_FIELD_NUMBER: _ClassVar[int]
    BUSINESS_DOC_REASON_FIELD_NUMBER: _ClassVar[int]
    PAPER_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_INFO_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_RECEIVER_FIELD_NUMBER: _ClassVar[int]
    RECEIVERS_FIELD_NUMBER: _ClassVar[int]
    REPLACEMENTS_FIELD_NUMBER: _ClassVar[int]
    STAFF_INFO_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    business_doc_type: int
    business_doc_reason: str
    paper: str
    document_info: str
    document_receiver: str
    receivers: _containers.RepeatedCompositeFieldContainer[Receiver]
    replacements: _containers.RepeatedCompositeFieldContainer[ReplacementInfo]
    staff_info: StaffInfo
    def __init__(self, document_id: _Optional[str] = ..., business_doc_type: _Optional[int] = ..., business_doc_reason: _Optional[str] = ..., paper: _Optional[str] = ..., document_info: _Optional[str] = ..., document_receiver: _Optional[str] = ..., receivers: _Optional[_Iterable[_Union[Receiver, _Mapping]]] = ..., replacements: _Optional[_Iterable[_Union[ReplacementInfo, _Mapping]]] = ..., staff_info: _Optional[_Union[StaffInfo, _Mapping]] = ...) -> None: ...

class EdxmlTrace(_message.Message):
    __slots__ = ("organ_id", "timestamp")
    ORGAN_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    organ_id: str
    timestamp: str
    def __init__(self, organ_id: _Optional[str] = ..., timestamp: _Optional[str] = ...) -> None: ...

class ManifestReference(_message.Message):
    __slots__ = ("content_id", "content_type", "description", "name")
    CONTENT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    content_id: str
    content_type: str
    description: str
    name: str
    def __init__(self, content_id: _Optional[str] = ..., content_type: _Optional[str] = ..., description: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class ZipWrapper(_message.Message):
    __slots__ = ("content_type", "entry_name", "size", "sha256")
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    ENTRY_NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    content_type: str
    entry_name: str
    size: int
    sha256: bytes
    def __init__(self, content_type: _Optional[str] = ..., entry_name: _Optional[str] = ..., size: _Optional[int] = ..., sha256: _Optional[bytes] = ...) -> None: ...

class Attachment(_message.Message):
    __slots__ = ("content_id", "name", "description", "content_type", "data", "manifest", "encoded_text", "unwrapped_from")
    CONTENT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    ENCODED_TEXT_FIELD_NUMBER: _ClassVar[int]
    UNWRAPPED_FROM_FIELD_NUMBER: _ClassVar[int]
    content_id: str
    name: str
    description: str
    content_type: str
    data: bytes
    manifest: ManifestReference
    encoded_text: str
    unwrapped_from: ZipWrapper
    def __init__(self, content_id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., content_type: _Optional[str] = ..., data: _Optional[bytes] = ..., manifest: _Optional[_Union[ManifestReference, _Mapping]] = ..., encoded_text: _Optional[str] = ..., unwrapped_from: _Optional[_Union[ZipWrapper, _Mapping]] = ...) -> None: ...

class Document(_message.Message):
    __slots__ = ("from_organ", "to", "document_id", "code", "promulgation_info", "document_type", "subject", "content", "signer_info", "due_date", "to_places", "other_info", "response_for", "steering_type", "business", "attachments", "edxml_trace", "edxml_signature")
    FROM_ORGAN_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    PROMULGATION_INFO_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    SIGNER_INFO_FIELD_NUMBER: _ClassVar[int]
    DUE_DATE_FIELD_NUMBER: _ClassVar[int]
    TO_PLACES_FIELD_NUMBER: _ClassVar[int]
    OTHER_INFO_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FOR_FIELD_NUMBER: _ClassVar[int]
    STEERING_TYPE_FIELD_NUMBER: _ClassVar[int]
    BUSINESS_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    EDXML_TRACE_FIELD_NUMBER: _ClassVar[int]
    EDXML_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    from_organ: Organization
    to: _containers.RepeatedCompositeFieldContainer[Organization]
    document_id: str
    code: DocCode
    promulgation_info: PromulgationInfo
    document_type: DocumentType
    subject: str
    content: str
    signer_info: SignerInfo
    due_date: str
    to_places: _containers.RepeatedScalarFieldContainer[str]
    other_info: OtherInfo
    response_for: _containers.RepeatedCompositeFieldContainer[ResponseFor]
    steering_type: int
    business: Business
    attachments: _containers.RepeatedCompositeFieldContainer[Attachment]
    edxml_trace: _containers.RepeatedCompositeFieldContainer[EdxmlTrace]
    edxml_signature: str
    def __init__(self, from_organ: _Optional[_Union[Organization, _Mapping]] = ..., to: _Optional[_Iterable[_Union[Organization, _Mapping]]] = ..., document_id: _Optional[str] = ..., code: _Optional[_Union[DocCode, _Mapping]] = ..., promulgation_info: _Optional[_Union[PromulgationInfo, _Mapping]] = ..., document_type: _Optional[_Union[DocumentType, _Mapping]] = ..., subject: _Optional[str] = ..., content: _Optional[str] = ..., signer_info: _Optional[_Union[SignerInfo, _Mapping]] = ..., due_date: _Optional[str] = ..., to_places: _Optional[_Iterable[str]] = ..., other_info: _Optional[_Union[OtherInfo, _Mapping]] = ..., response_for: _Optional[_Iterable[_Union[ResponseFor, _Mapping]]] = ..., steering_type: _Optional[int] = ..., business: _Optional[_Union[Business, _Mapping]] = ..., attachments: _Optional[_Iterable[_Union[Attachment, _Mapping]]] = ..., edxml_trace: _Optional[_Iterable[_Union[EdxmlTrace, _Mapping]]] = ..., edxml_signature: _Optional[str] = ...) -> None: ...

class Status(_message.Message):
    __slots__ = ("from_organ", "response_for", "staff_info", "status_code", "description", "timestamp", "edxml_trace", "edxml_signature")
    FROM_ORGAN_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FOR_FIELD_NUMBER: _ClassVar[int]
    STAFF_INFO_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    EDXML_TRACE_FIELD_NUMBER: _ClassVar[int]
    EDXML_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    from_organ: Organization
    response_for: ResponseFor
    staff_info: StaffInfo
    status_code: str
    description: str
    timestamp: str
    edxml_trace: _containers.RepeatedCompositeFieldContainer[EdxmlTrace]
    edxml_signature: str
    def __init__(self, from_organ: _Optional[_Union[Organization, _Mapping]] = ..., response_for: _Optional[_Union[ResponseFor, _Mapping]] = ..., staff_info: _Optional[_Union[StaffInfo, _Mapping]] = ..., status_code: _Optional[str] = ..., description: _Optional[str] = ..., timestamp: _Optional[str] = ..., edxml_trace: _Optional[_Iterable[_Union[EdxmlTrace, _Mapping]]] = ..., edxml_signature: _Optional[str] = ...) -> None: ...

class Notice(_message.Message):
    __slots__ = ("ref_message_id", "recipient", "reason", "detail")
    REF_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    ref_message_id: str
    recipient: str
    reason: str
    detail: str
    def __init__(self, ref_message_id: _Optional[str] = ..., recipient: _Optional[str] = ..., reason: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...
