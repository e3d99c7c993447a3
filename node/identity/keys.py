"""Signing keys.

ECDSA P-256 rather than Ed25519: the same key must sign envelopes *and* serve as the
node's TLS key for gRPC's mutual TLS, and P-256 is the curve every TLS stack (gRPC's
BoringSSL included) and every national-CA / HSM profile supports for certificates,
while Ed25519 certificates are refused by many TLS clients and CAs. Signatures use
SHA-256 (DER-encoded ECDSA).
"""
from __future__ import annotations

import os
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


def verify(public_key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    try:
        public_key.verify(signature, data, SIGNATURE_ALGORITHM)
        return True
    except (InvalidSignature, ValueError):
        return False
