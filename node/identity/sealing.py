"""Payloads sealed for their recipient: relays route and store them without being able to read them.

The construction (docs/sealing.md), all from `cryptography`'s long-stable primitives:

- **Content, encrypted once.** The serialised Payload is encrypted with AES-256-GCM under a
  random 256-bit content key. One document to many recipients is encrypted once: every
  envelope of the send carries the same ciphertext.
- **The content key, wrapped per holder.** For the recipient: a fresh ephemeral P-256 key, ECDH
  with the recipient's key, HKDF-SHA256 over the shared secret (info: a label, the ephemeral and
  the holder's key id) giving a one-time key-encryption key and nonce, and AES-256-GCM over the
  content key. This is ECIES with an AEAD, the shape of HPKE's DHKEM(P-256)/HKDF-SHA256/AES-256-GCM
  base mode. For the sender itself (so that its node can read its own sent copies back, e.g. to
  copy the original into a revocation) no key agreement is needed, as it holds the private key:
  the KEK and nonce come from HKDF over a secret derived from its private key and a random
  16-byte salt. That saves one ECDH per envelope, the larger part of the cost of sealing.
  Why not HPKE itself: `cryptography` gained it only in its newest releases (P-256 later than
  X25519, and its `aad` argument came and went between them); this node supports
  `cryptography>=43`, and the primitives used here are the ones every version has.
- **Bound to the header.** Each wrap's associated data is a canonical encoding of every header
  field the sender signs except the two that describe the sealed bytes themselves
  (payload_sha256 and payload_size, which cannot be known before sealing), plus the digest and
  nonce of the shared ciphertext. So a sealed payload moved under another header (another
  message id, recipient, sender, kind, reference, time) or paired with another ciphertext does
  not open. The content's own associated data cannot name a recipient (it is shared by all);
  it is bound to its envelope through the wrap. The fields are length-prefixed, never joined
  with separators, so no two headers encode alike.
- **Authenticated by the signature.** The sealed bytes are what Header.payload_sha256 digests,
  and the sender signs the header: whatever opens (the content, `sender_key`) is the sender's.

The recipient's seal key is published in its signed AgencyRecord (node.registry.records):
certified by the agency's CA-certified signing key, returned by Lookup and cached by senders
like the rest of the record, and replaced by re-registering, with no CA round trip. It is a
separate key from the signing key: one key for one purpose, and the signing key stays the
TLS key (node.identity.keys).
"""
from __future__ import annotations

import functools
import hashlib
import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from google.protobuf.message import DecodeError

from ..errors import Reason, Rejected
from ..pb import envelope_pb2 as pb
from . import keys

log = logging.getLogger(__name__)

LABEL = b"lienthong seal v1"
KEY_BYTES = 32
NONCE_BYTES = 12
POINT_BYTES = 65            # X9.62 uncompressed P-256 point
WRAPPED_BYTES = KEY_BYTES + 16
MAX_WRAPS = 4               # we write two (recipient, sender); a few more is someone else's business, not unbounded
MAX_SPKI_BYTES = 200        # a P-256 SubjectPublicKeyInfo is 91 bytes


def key_id(public_der: bytes) -> bytes:
    return hashlib.sha256(public_der).digest()


def public_der(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@functools.lru_cache(maxsize=1024)
def load_public(der: bytes) -> ec.EllipticCurvePublicKey:
    """A published seal key: a P-256 SubjectPublicKeyInfo, else ValueError (cached: keys are immutable and
    a node seals to the same few recipients again and again)."""
    if not der or len(der) > MAX_SPKI_BYTES:
        raise ValueError("a seal key is a P-256 SubjectPublicKeyInfo")
    key = serialization.load_der_public_key(der)
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("a seal key is a P-256 SubjectPublicKeyInfo")
    return key


@dataclass(frozen=True)
class SealKey:
    """This node's own seal key pair (key agreement only; never signs)."""

    private: ec.EllipticCurvePrivateKey
    public_der: bytes
    self_secret: bytes  # for the wraps it makes for itself (see module docstring); never leaves memory

    @classmethod
    def of(cls, private: ec.EllipticCurvePrivateKey) -> "SealKey":
        scalar = private.private_numbers().private_value.to_bytes(32, "big")
        secret = HKDF(hashes.SHA256(), KEY_BYTES, salt=None, info=LABEL + b" self-wrap secret").derive(scalar)
        return cls(private, public_der(private.public_key()), secret)

    @property
    def key_id(self) -> bytes:
        return key_id(self.public_der)


def load_or_create(path: Path, *, create: bool) -> tuple[SealKey, bool]:
    """The seal key at `path`; made (0600) when missing and `create`; never replaced. (key, made)."""
    path = Path(path)
    if not path.exists():
        if not create:
            raise FileNotFoundError(f"{path}: no such file")
        key = keys.generate_key()
        keys.write_private_key(path, key)
        return SealKey.of(key), True
    key = keys.load_private_key(path)
    if not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"{path}: expected a P-256 key")
    return SealKey.of(key), False


# ---- the header binding -------------------------------------------------------------

def binding(h: pb.Header) -> bytes:
    """Every signed header field but the digest and size of the sealed bytes, length-prefixed."""
    out = [LABEL]
    for text in (h.message_id, h.sender, h.recipient, h.ref_message_id):
        data = text.encode()
        out.append(struct.pack(">I", len(data)) + data)
    out.append(struct.pack(">iqqII", h.kind, h.created_ms, h.expires_ms, h.priority, h.seal))
    return b"".join(out)


# ---- sealing ------------------------------------------------------------------------

@dataclass(frozen=True)
class Content:
    """A payload encrypted once; `key` stays in memory only, to be wrapped per envelope."""

    key: bytes
    nonce: bytes
    ciphertext: bytes

    @classmethod
    def encrypt(cls, plaintext: bytes, sender: str) -> "Content":
        key, nonce = AESGCM.generate_key(256), os.urandom(NONCE_BYTES)
        return cls(key, nonce, AESGCM(key).encrypt(nonce, plaintext, _content_aad(sender)))

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.nonce + self.ciphertext).digest()


def _content_aad(sender: str) -> bytes:
    return LABEL + b" content " + sender.encode()


def _wrap_aad(header: pb.Header, content_digest: bytes) -> bytes:
    return binding(header) + content_digest


def _kek(shared: bytes, ephemeral: bytes, holder_key_id: bytes) -> tuple[bytes, bytes]:
    """A one-time key and nonce: each ephemeral key is used for one wrap, so a derived nonce never repeats."""
    okm = HKDF(hashes.SHA256(), KEY_BYTES + NONCE_BYTES, salt=None,
               info=LABEL + b" wrap " + ephemeral + holder_key_id).derive(shared)
    return okm[:KEY_BYTES], okm[KEY_BYTES:]


def wrap(content: Content, header: pb.Header, holder_der: bytes) -> pb.KeyWrap:
    holder = load_public(holder_der)
    eph = ec.generate_private_key(ec.SECP256R1())
    point = eph.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    kid = key_id(holder_der)
    kek, nonce = _kek(eph.exchange(ec.ECDH(), holder), point, kid)
    return pb.KeyWrap(key_id=kid, ephemeral=point,
                      wrapped_key=AESGCM(kek).encrypt(nonce, content.key, _wrap_aad(header, content.digest)))


SALT_BYTES = 16


def _self_kek(own: SealKey, salt: bytes) -> tuple[bytes, bytes]:
    okm = HKDF(hashes.SHA256(), KEY_BYTES + NONCE_BYTES, salt=salt,
               info=LABEL + b" self wrap " + own.key_id).derive(own.self_secret)
    return okm[:KEY_BYTES], okm[KEY_BYTES:]


def self_wrap(content: Content, header: pb.Header, own: SealKey) -> pb.KeyWrap:
    """The content key for ourselves: a fresh salt makes a one-time KEK and nonce, no key agreement."""
    salt = os.urandom(SALT_BYTES)
    kek, nonce = _self_kek(own, salt)
    return pb.KeyWrap(key_id=own.key_id, salt=salt,
                      wrapped_key=AESGCM(kek).encrypt(nonce, content.key, _wrap_aad(header, content.digest)))


def seal(content: Content, header: pb.Header, recipient_der: bytes, own: SealKey) -> bytes:
    """The sealed payload bytes for the envelope with `header` (its digest and size not yet set)."""
    wraps = [self_wrap(content, header, own)] if own.public_der == recipient_der else [
        wrap(content, header, recipient_der), self_wrap(content, header, own)]
    return pb.SealedPayload(nonce=content.nonce, ciphertext=content.ciphertext, wraps=wraps,
                            sender_key=own.public_der).SerializeToString()


# ---- opening ----------------------------------------------------------------------

def parse(data: bytes) -> pb.SealedPayload:
    """Structure only (sizes bounded): what relays may read (sender_key) without any key."""
    sealed = pb.SealedPayload()
    try:
        sealed.ParseFromString(data)
    except DecodeError:
        raise Rejected(Reason.BAD_SEAL, "sealed payload does not parse") from None
    if len(sealed.nonce) != NONCE_BYTES or len(sealed.ciphertext) < 16:
        raise Rejected(Reason.BAD_SEAL, "sealed payload has no valid content")
    if not 1 <= len(sealed.wraps) <= MAX_WRAPS:
        raise Rejected(Reason.BAD_SEAL, f"sealed payload has {len(sealed.wraps)} key wraps (1..{MAX_WRAPS})")
    if len(sealed.sender_key) > MAX_SPKI_BYTES:
        raise Rejected(Reason.BAD_SEAL, "sealed payload's sender key is too long")
    return sealed


def key_for(data: bytes, keys: list[SealKey]) -> SealKey:
    """Of `keys`, the one a wrap of this sealed payload names (the first when none does: it then refuses
    with NOT_SEALED_FOR_ME as usual)."""
    wrapped = {w.key_id for w in parse(data).wraps}
    return next((k for k in keys if k.key_id in wrapped), keys[0])


def open_payload(data: bytes, header: pb.Header, own: SealKey) -> bytes:
    """The serialised Payload inside; BAD_SEAL if anything fails to authenticate, NOT_SEALED_FOR_ME if no
    wrap is for our key. The details name no content (there is none to name: nothing opened)."""
    return open_with_key(data, header, content_key(data, header, own))


def content_key(data: bytes, header: pb.Header, own: SealKey) -> bytes:
    """The content key of a payload sealed to `own` (its wrap opened for this header), else as open_payload."""
    sealed = parse(data)
    mine = [w for w in sealed.wraps if w.key_id == own.key_id]
    if not mine:
        raise Rejected(Reason.NOT_SEALED_FOR_ME, "no key wrap for this node's seal key")
    w = mine[0]
    if len(w.wrapped_key) != WRAPPED_BYTES:
        raise Rejected(Reason.BAD_SEAL, "key wrap is malformed")
    if not w.ephemeral and len(w.salt) == SALT_BYTES:  # one we made for ourselves
        kek, nonce = _self_kek(own, w.salt)
    elif len(w.ephemeral) == POINT_BYTES and not w.salt:
        try:
            eph = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), w.ephemeral)
            kek, nonce = _kek(own.private.exchange(ec.ECDH(), eph), w.ephemeral, own.key_id)
        except ValueError:
            raise Rejected(Reason.BAD_SEAL, "key wrap's ephemeral key is not a P-256 point") from None
    else:
        raise Rejected(Reason.BAD_SEAL, "key wrap is malformed")
    content_digest = hashlib.sha256(sealed.nonce + sealed.ciphertext).digest()
    try:
        return AESGCM(kek).decrypt(nonce, w.wrapped_key, _wrap_aad(header, content_digest))
    except InvalidTag:
        raise Rejected(Reason.BAD_SEAL, "key wrap does not open for this header") from None


def open_with_key(data: bytes, header: pb.Header, key: bytes) -> bytes:
    """The content of a sealed payload under a content key, from our own wrap or disclosed in an evidence
    bundle (node.evidence). A disclosed key is checked by the content's AES-GCM tag over ciphertext the
    sender signed (Header.payload_sha256): the discloser did not choose that ciphertext, so it cannot
    find another key under which it opens to other content."""
    sealed = parse(data)
    if len(key) != KEY_BYTES:
        raise Rejected(Reason.BAD_SEAL, "content key is malformed")
    try:
        return AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, _content_aad(header.sender))
    except InvalidTag:
        raise Rejected(Reason.BAD_SEAL, "content does not open") from None


def sender_key_of(envelope_raw: bytes) -> bytes:
    """The seal key the sender of a sealed envelope published in it ("" for a plain one), read without a key.

    Trusted because the sender's signature covers it (Header.payload_sha256); callers hold envelopes that
    were verified when they arrived."""
    try:
        env = pb.Envelope.FromString(envelope_raw)
        return sender_key_in(env, pb.Header.FromString(env.header))
    except DecodeError:
        return b""


def sender_key_in(env: pb.Envelope, header: pb.Header) -> bytes:
    """`sender_key_of` for an envelope already parsed and verified (intake's: not parsed again for its 01);
    nothing parsed at all for a plain one."""
    if header.seal != pb.SEALED_P256_AES256GCM:
        return b""
    try:
        der = parse(env.payload).sender_key
        load_public(der)
        return der
    except (DecodeError, Rejected, ValueError):
        return b""


# ---- held for a predecessor (node.takeover) --------------------------------------------

def rewrap(data: bytes, header: pb.Header, key: bytes, own: SealKey) -> bytes:
    """A content key opened with a predecessor's seal key, wrapped for ourselves (a serialised KeyWrap, bound to
    this header and ciphertext like every wrap): the envelope keeps the bytes its sender signed, we keep this."""
    sealed = parse(data)
    return self_wrap(Content(key, sealed.nonce, sealed.ciphertext), header, own).SerializeToString()


def wrap_for(data: bytes, header: pb.Header, key: bytes, holder_der: bytes) -> bytes:
    """A content key we opened, wrapped for another holder's published seal key (a successor taking our mailbox
    over: node.takeover), bound to this header and ciphertext; a serialised KeyWrap."""
    sealed = parse(data)
    return wrap(Content(key, sealed.nonce, sealed.ciphertext), header, holder_der).SerializeToString()


def held_content_key(data: bytes, header: pb.Header, held_wrap: bytes, keys_: list[SealKey]) -> bytes:
    """The content key of a payload sealed to a predecessor, through the wrap `rewrap` made for one of `keys_`."""
    sealed = parse(data)
    try:
        wrap = pb.KeyWrap.FromString(held_wrap)
    except DecodeError:
        raise Rejected(Reason.BAD_SEAL, "held key wrap does not parse") from None
    del sealed.wraps[:]
    sealed.wraps.append(wrap)
    mine = sealed.SerializeToString()
    return content_key(mine, header, key_for(mine, keys_))


def open_held(data: bytes, header: pb.Header, held_wrap: bytes, keys_: list[SealKey]) -> bytes:
    """The content of a payload sealed to a predecessor, through the wrap `rewrap` made for one of `keys_`."""
    return open_with_key(data, header, held_content_key(data, header, held_wrap, keys_))
