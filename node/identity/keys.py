"""Signing keys.

ECDSA P-256 rather than Ed25519: the same key must sign envelopes *and* serve as the
node's TLS key for gRPC's mutual TLS, and P-256 is the curve every TLS stack (gRPC's
BoringSSL included) and every national-CA / HSM profile supports for certificates,
while Ed25519 certificates are refused by many TLS clients and CAs. Signatures use
SHA-256 (DER-encoded ECDSA).
"""
from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

SIGNATURE_ALGORITHM = ec.ECDSA(hashes.SHA256())


def generate_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_private_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Write a PEM key readable by its owner only (mode 0600 from creation, no window)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem(key))
    os.chmod(path, 0o600)


def load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: expected an EC P-256 private key")
    return key


def sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    return key.sign(data, SIGNATURE_ALGORITHM)


class _Points:
    """Each public key's encoded point, made once per key object (encoding it was two thirds of the cache key's
    cost, at every signature checked). Keyed by the object's id with the object kept beside it, so an id
    reused by another key after the first is gone can never match; bounded (cleared when full)."""

    LIMIT = 4096

    def __init__(self) -> None:
        self._known: dict[int, tuple[ec.EllipticCurvePublicKey, bytes]] = {}

    def of(self, public_key: ec.EllipticCurvePublicKey) -> bytes:
        hit = self._known.get(id(public_key))
        if hit is not None and hit[0] is public_key:
            return hit[1]
        point = public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        if len(self._known) >= self.LIMIT:
            self._known.clear()
        self._known[id(public_key)] = (public_key, point)  # a dict's get and set are atomic: no lock needed
        return point


POINTS = _Points()

VERIFIED_LIMIT = 8192  # (key, digest, signature) triples remembered as verified


class _Verified:
    """Signatures already verified, so identical bytes are checked once: a heartbeat of 20,000 copies of one
    signed row, or the same listing asked again, cost a signature check each. Bounded (oldest dropped);
    only successes are kept, so a bad signature is never remembered as good."""

    def __init__(self, limit: int = VERIFIED_LIMIT) -> None:
        self.limit = limit
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(public_key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bytes:
        point = POINTS.of(public_key)
        return hashlib.sha256(b"%d:" % len(point) + point + b"%d:" % len(signature) + signature + data).digest()

    def __contains__(self, key: bytes) -> bool:
        with self._lock:
            if key in self._seen:
                self._seen.move_to_end(key)
                return True
            return False

    def add(self, key: bytes) -> None:
        with self._lock:
            self._seen[key] = None
            if len(self._seen) > self.limit:
                self._seen.popitem(last=False)


VERIFIED = _Verified()


def verify(public_key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    key = VERIFIED.key(public_key, signature, data)
    if key in VERIFIED:
        return True
    try:
        public_key.verify(signature, data, SIGNATURE_ALGORITHM)
    except (InvalidSignature, ValueError):
        return False
    VERIFIED.add(key)
    return True
