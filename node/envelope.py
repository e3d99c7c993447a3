"""Build, sign, trace and verify envelopes and receipts.

The path an envelope took (edXML's TraceHeaderList) starts with the sender: its
signature over the header, which carries its code and creation time, is its hop mark.
Every relay then appends a signed trace entry chained to the previous mark (the
header signature for the first relay), so one signature per hop proves the path.

Everything signed is carried as the exact bytes that were signed (protobuf is not
canonical), and every check runs over received bytes before any parsed field is
trusted. Every hop, relays included, checks every mark: a relay takes custody and signs
a receipt, so a relay that chained its mark onto a forged earlier one would vouch for a
path nobody took (an insider's forged mark passed relays when they checked only the
last one). A trace is at most MAX_TRACE entries long, so the cost stays bounded.
"""
from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf import unknown_fields
from google.protobuf.message import DecodeError

from .clock import SYSTEM, Clock
from . import fields
from .codes import is_identifier
from .errors import Reason, Rejected, too_large
from .limits import over
from .identity import certs, keys, signed
from .identity.trust import Identity, TrustStore
from .pb import envelope_pb2 as pb


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass(frozen=True)
class Signer:
    """A node's own identity: what it signs envelopes, trace entries and receipts with."""

    code: str
    key: ec.EllipticCurvePrivateKey
    cert_der: bytes

    @classmethod
    def from_files(cls, key_path: Path, cert_path: Path) -> "Signer":
        key = keys.load_private_key(key_path)
        cert = certs.load_cert(cert_path)
        code = certs.agency_code(cert)
        if code is None:
            raise ValueError(f"{cert_path}: certificate binds no agency code")
        if cert.public_key().public_numbers() != key.public_key().public_numbers():
            raise ValueError(f"{key_path}: key does not match certificate {cert_path}")
        return cls(code, key, certs.der(cert))

    def sign(self, data: bytes) -> bytes:
        return keys.sign(self.key, data)


Opener = Callable[[bytes, pb.Header], bytes]  # (sealed payload bytes, header) -> serialised Payload


KIND_OF_PAYLOAD = {"document": pb.DOCUMENT, "status": pb.STATUS, "notice": pb.NOTICE}


_MESSAGE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def is_message_id(value: str) -> bool:
    """Message ids name files (export, saved attachments) and rows: no separators, dots or controls."""
    return isinstance(value, str) and _MESSAGE_ID.fullmatch(value) is not None


def new_message_id() -> str:
    return uuid.uuid4().hex


def seal(
    signer: Signer,
    recipient: str,
    payload: pb.Payload,
    *,
    clock: Clock = SYSTEM,
    lifetime_s: float,
    priority: int = 0,
    ref_message_id: str = "",
    message_id: str | None = None,
    sealer: Callable[[pb.Header], bytes] | None = None,
    created_ms: int | None = None,
    expires_ms: int | None = None,
) -> tuple[pb.Header, bytes]:
    """A signed envelope from `signer` to `recipient`; its header signature is the first hop mark.

    `sealer(header)`: the sealed payload bytes for this header (node.identity.sealing), given every
    field but the digest and size, which then digest the sealed bytes; None: the payload in clear."""
    now = clock.now_ms()
    header = pb.Header(
        message_id=message_id or new_message_id(),
        sender=signer.code,
        recipient=recipient,
        kind=KIND_OF_PAYLOAD[payload.WhichOneof("body")],
        created_ms=now,
        expires_ms=now + int(lifetime_s * 1000) if expires_ms is None else expires_ms,
        priority=priority,
        ref_message_id=ref_message_id,
    )
    if sealer is not None:
        header.seal = pb.SEALED_P256_AES256GCM
        payload_bytes = sealer(header)
    else:
        payload_bytes = payload.SerializeToString()
    header.payload_sha256 = sha256(payload_bytes)
    header.payload_size = len(payload_bytes)
    header_bytes = header.SerializeToString()
    mark = signed.sign(signer, header_bytes)
    env = pb.Envelope(
        header=header_bytes,
        signature=mark.signature,
        sender_cert=mark.cert_der,
        payload=payload_bytes,
    )
    return header, env.SerializeToString()


def add_trace(env: pb.Envelope, signer: Signer, clock: Clock = SYSTEM) -> pb.Envelope:
    """Append this relay's signed hop mark, chained to the previous one."""
    env.trace.append(_trace_entry(env, signer, clock))
    return env


# Envelope.trace is field 5, length-delimited: the tag every appended entry starts with
_TRACE_TAG = bytes([(pb.Envelope.TRACE_FIELD_NUMBER << 3) | 2])


def append_trace(raw: bytes, env: pb.Envelope, signer: Signer, clock: Clock = SYSTEM) -> bytes:
    """`raw` (the verified bytes `env` was parsed from) with this relay's mark appended, as add_trace would.

    Protobuf parses a repeated field's records appended to the encoded bytes as appended entries, and
    trace is the last field, so the bytes equal what re-serializing after add_trace gives, without
    re-encoding a whole envelope (up to max_envelope_size) at every relay. Bytes longer than their
    encoding (a field written twice: the parser keeps the last, and the earlier copy is bytes nobody
    signed) are re-encoded as before, so no relay hands on more than the envelope says. `env` is not changed."""
    if env.ByteSize() != len(raw):
        relayed = pb.Envelope()
        relayed.CopyFrom(env)
        return add_trace(relayed, signer, clock).SerializeToString()
    data = _trace_entry(env, signer, clock).SerializeToString()
    return b"".join((raw, _TRACE_TAG, varint(len(data)), data))


def _trace_entry(env: pb.Envelope, signer: Signer, clock: Clock) -> pb.TraceEntry:
    prev = sha256(env.trace[-1].signature if env.trace else env.signature)
    body = pb.TraceBody(
        code=signer.code, time_ms=clock.now_ms(), header_sha256=sha256(env.header), prev_sha256=prev
    ).SerializeToString()
    mark = signed.sign(signer, body)
    return pb.TraceEntry(body=body, signature=mark.signature, cert_der=mark.cert_der)


def varint(n: int) -> bytes:
    """Protobuf's base-128 length prefix (records appended to encoded bytes: a relay's mark, a batch)."""
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


@dataclass
class Verified:
    """An envelope whose bytes passed every check."""

    raw: bytes
    envelope: pb.Envelope
    header: pb.Header
    sender: Identity
    path: list[tuple[str, int]] = field(default_factory=list)  # (code, time_ms): sender, then each relay
    opener: Opener | None = None  # this node's seal key, for payloads sealed to it

    _digest: bytes | None = field(default=None, repr=False)

    @property
    def digest(self) -> bytes:
        """sha256 of the bytes received, computed once (the receipt, custody's dedup row and the audit row use it)."""
        if self._digest is None:
            self._digest = sha256(self.raw)
        return self._digest

    @property
    def sealed(self) -> bool:
        return self.header.seal != pb.PLAIN

    def payload(self) -> pb.Payload:
        """The payload, opened with our seal key when sealed (BAD_SEAL / NOT_SEALED_FOR_ME when it does not)."""
        data = self.envelope.payload
        if self.header.seal == pb.SEALED_P256_AES256GCM:
            if self.opener is None:
                raise Rejected(Reason.NOT_SEALED_FOR_ME, "this node has no seal key")
            data = self.opener(data, self.header)
        elif self.header.seal != pb.PLAIN:
            raise Rejected(Reason.BAD_SEAL, f"unknown seal {self.header.seal}")
        p = pb.Payload()
        try:
            p.ParseFromString(data)
        except DecodeError:
            raise Rejected(Reason.MALFORMED, "payload does not parse") from None
        which = p.WhichOneof("body")
        if which is None or KIND_OF_PAYLOAD[which] != self.header.kind:
            raise Rejected(Reason.MISSING_FIELD, "payload body does not match header kind", field="payload")
        return p


EARLIEST_MS = 946_684_800_000        # 2000-01-01: no envelope is older
# 9999-12-31T00:00:00Z: the last day a timestamp shows in every time zone (edXML writes Vietnam's time, UTC+7:
# a relay mark dated later in that day was year 10000 there, and failed the automatic 01 inside custody)
LATEST_MS = 253_402_214_400_000
MAX_CLOCK_SKEW_MS = 24 * 3600 * 1000  # a sender's clock may run this far ahead of ours
MAX_LIFETIME_MS = 3650 * 86400 * 1000  # the longest lifetime a sender may ask for (ten years)
MAX_TRACE = 16  # relay marks: the deepest route (commune → root → commune) has 7 hops

REQUIRED_HEADER_FIELDS = ("message_id", "sender", "recipient", "kind", "created_ms", "expires_ms", "payload_sha256")


def verify(
    raw: bytes,
    trust: TrustStore,
    *,
    max_size: int,
    clock: Clock = SYSTEM,
    check_expiry: bool = True,
    max_trace: int = MAX_TRACE,
    opener: Opener | None = None,
    parsed: pb.Envelope | None = None,
) -> Verified:
    """Check an envelope's bytes: size, structure, sender certificate and signature, digest, every trace mark.

    `parsed`: `raw` already parsed by the caller (intake counts marks before any signature), so the
    bytes are parsed once; every check still runs over them."""
    if len(raw) > max_size:
        raise too_large("envelope", len(raw), max_size)
    env = parsed if parsed is not None else pb.Envelope()
    header = pb.Header()
    try:
        if parsed is None:
            env.ParseFromString(raw)
        header.ParseFromString(env.header)
    except DecodeError:
        raise Rejected(Reason.MALFORMED, "envelope does not parse") from None
    if len(env.trace) > max_trace:  # before any signature is checked: too many marks cost nothing to refuse
        raise over("trace entries", len(env.trace), max_trace, "trace")
    _no_unsigned_fields(env, "envelope")
    for name in REQUIRED_HEADER_FIELDS:
        if not getattr(header, name):
            raise Rejected(Reason.MISSING_FIELD, f"header.{name} is missing", field=f"header.{name}")
    if header.priority > 4:
        raise Rejected(Reason.INVALID_REQUEST, "header.priority must be 0..4", field="header.priority")
    for name in ("message_id", "ref_message_id"):
        value = getattr(header, name)
        if value and not is_message_id(value):
            raise Rejected(Reason.MALFORMED, f"header.{name} is not a message id (1-128 of A-Z a-z 0-9 _ -)",
                           field=f"header.{name}")
    for name in ("sender", "recipient"):  # else a recipient no agency can have is relayed up to the root
        fields.check_code(getattr(header, name), f"header.{name}")
        if not is_identifier(getattr(header, name)):
            raise Rejected(Reason.MALFORMED, f"header.{name} is not an agency code", field=f"header.{name}")
    if not env.signature:
        raise Rejected(Reason.BAD_SIGNATURE, "envelope is not signed")
    if not env.sender_cert:
        raise Rejected(Reason.UNKNOWN_SENDER, f"no certificate for sender {header.sender}")
    sender = signed.check(
        trust, env.sender_cert, env.signature, env.header, signer=header.sender,
        wrong_signer=lambda i: Rejected(Reason.SENDER_MISMATCH,
                                        f"header says {header.sender}, certificate says {i.code}"),
        bad_signature=lambda: Rejected(Reason.BAD_SIGNATURE))
    if sha256(env.payload) != header.payload_sha256 or len(env.payload) != header.payload_size:
        raise Rejected(Reason.DIGEST_MISMATCH)
    _check_times(header, clock)
    if check_expiry and header.expires_ms < clock.now_ms():
        raise Rejected(Reason.EXPIRED, f"expired at {header.expires_ms}")
    path = [(header.sender, header.created_ms)] + verify_trace(env, trust, max_trace)
    return Verified(raw, env, header, sender, path, opener)


def stored_verifier(trust: TrustStore, clock: Clock = SYSTEM,
                    opener: Opener | None = None) -> Callable[[bytes], Verified]:
    """Re-verify envelopes from our own mailbox before showing or exporting them: every check but
    size and expiry, which held when the envelope arrived (what we show is what was signed; a sealed
    payload stays sealed in the mailbox and is opened when read)."""
    return lambda raw: verify(raw, trust, max_size=len(raw), clock=clock, check_expiry=False, opener=opener)


def _no_unsigned_fields(msg: pb.Envelope | pb.TraceEntry, where: str) -> None:
    """Fields this node does not know, outside every signed byte (Envelope and TraceEntry carry the
    signed header, payload and trace bodies as bytes): nobody vouches for them, yet a node would store
    and relay them, so an insider could make every hop keep a megabyte nobody signed. Refused rather
    than dropped: a receipt covers the exact bytes received, and they must be the bytes stored."""
    found = unknown_fields.UnknownFieldSet(msg)
    if len(found):
        raise Rejected(Reason.UNSIGNED_FIELDS, f"{where} carries unknown field #{found[0].field_number} "
                       f"outside its signed bytes", field=where)


def _check_times(header: pb.Header, clock: Clock) -> None:
    """Times a handler will format or compare: within years a calendar can show, lifetimes a sender may ask.

    A creation time beyond year 9999 once raised inside the custody transaction and failed
    the whole batch; refused here, it fails only its own envelope."""
    if not EARLIEST_MS <= header.created_ms <= clock.now_ms() + MAX_CLOCK_SKEW_MS:
        raise Rejected(Reason.BAD_TIME, f"header.created_ms {header.created_ms} is out of range")
    if not header.created_ms < header.expires_ms <= header.created_ms + MAX_LIFETIME_MS:
        raise Rejected(Reason.BAD_TIME, f"header.expires_ms {header.expires_ms} is out of range")


def verify_trace(env: pb.Envelope, trust: TrustStore, max_trace: int = MAX_TRACE) -> list[tuple[str, int]]:
    """The relays' hop marks, each checked and chained back to the sender's signature."""
    if len(env.trace) > max_trace:
        raise over("trace entries", len(env.trace), max_trace, "trace")
    header_digest = sha256(env.header)
    prev = sha256(env.signature)
    path = []
    for i, entry in enumerate(env.trace):
        _no_unsigned_fields(entry, f"trace[{i}]")
        body = pb.TraceBody()
        try:
            body.ParseFromString(entry.body)
        except DecodeError:
            raise Rejected(Reason.MALFORMED, f"trace[{i}] does not parse") from None
        chained = body.header_sha256 == header_digest and body.prev_sha256 == prev
        signed.check(trust, entry.cert_der, entry.signature, entry.body, signer=body.code,
                     wrong_signer=lambda _, i=i, code=body.code: Rejected(
                         Reason.BAD_TRACE, f"trace[{i}] code {code} is not its certificate's"),
                     bad_signature=lambda i=i: Rejected(Reason.BAD_TRACE, f"trace[{i}] signature does not verify"),
                     before_signature=None if chained else lambda _, i=i: _unchained(i))  # before the signature
        if not EARLIEST_MS <= body.time_ms <= LATEST_MS:
            raise Rejected(Reason.BAD_TIME, f"trace[{i}].time_ms {body.time_ms} is out of range")
        prev = sha256(entry.signature)
        path.append((body.code, body.time_ms))
    return path


def _unchained(i: int) -> None:
    """A relay mark that names another envelope or another previous mark (checked before its signature)."""
    raise Rejected(Reason.BAD_TRACE, f"trace[{i}] is not chained to this envelope")


def own_header(raw: bytes) -> pb.Header:
    """The header of an envelope this node made (seal writes it first), read from that leading field
    alone: deciding whether one of ours still needs sealing at each hand-over does not parse and copy
    its payload. Bytes of another layout are parsed whole."""
    if raw[:1] == b"\x0a":  # field 1 (header), length-delimited
        size, shift, i = 0, 0, 1
        while i < min(len(raw), 6):
            byte = raw[i]
            size |= (byte & 0x7F) << shift
            i += 1
            if not byte & 0x80:
                if i + size <= len(raw):
                    return pb.Header.FromString(raw[i:i + size])
                break
            shift += 7
    return pb.Header.FromString(pb.Envelope.FromString(raw).header)


def last_hop(raw: bytes) -> str:
    """Code of the last hop mark (last relay, else the sender), read without verification."""
    env = pb.Envelope.FromString(raw)
    if env.trace:
        return pb.TraceBody.FromString(env.trace[-1].body).code
    return pb.Header.FromString(env.header).sender
