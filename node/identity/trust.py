"""Deciding whether a certificate speaks for an agency: chains to an anchor, is in its validity period.

Checks are cached per certificate (by DER digest) because every envelope carries its
sender's certificate; only the validity window is re-checked against the clock.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from ..codes import case_twin_of
from ..clock import SYSTEM, Clock
from ..errors import Reason, Rejected
from . import certs, revocation


@dataclass(frozen=True)
class Identity:
    code: str
    subject: str
    public_key: ec.EllipticCurvePublicKey
    not_before_ms: int
    not_after_ms: int
    cert_der: bytes
    serial: int = 0
    issuer: x509.Name | None = None


class TrustStore:
    def __init__(self, anchors: list[x509.Certificate], clock: Clock = SYSTEM) -> None:
        if not anchors:
            raise ValueError("at least one trust anchor is needed")
        self._anchors = anchors
        self._clock = clock
        self._cache: dict[bytes, Identity] = {}
        self._lock = threading.Lock()
        self.revoked: revocation.Revoked | None = None
        self.generation = 0  # counts changes of what is trusted (anchors, CRL): a check cached on it is redone

    @classmethod
    def from_files(cls, paths: list[Path], clock: Clock = SYSTEM, crl: Path | None = None) -> "TrustStore":
        anchors = [c for p in paths for c in certs.load_certs(p)]
        store = cls(anchors, clock)
        if crl is not None:
            store.use_crl(crl.read_bytes())
        return store

    def use_crl(self, data: bytes) -> revocation.Revoked:
        """Refuse the certificates this CRL revokes (ValueError if no anchor signed it). A CRL with a lower
        number than the one in use is ignored: an old list must not bring a revoked certificate back."""
        self.adopt(revocation.load(data, self._anchors))
        return self.revoked

    def adopt(self, crl: revocation.Revoked) -> bool:
        """Use a CRL already verified against our anchors, unless the one in use is newer; True if taken."""
        with self._lock:
            if self.revoked is None or crl.number >= self.revoked.number:
                self.revoked = crl
                self.generation += 1
                return True
            return False

    def replace_anchors(self, other: "TrustStore") -> None:
        """Take `other`'s anchors (SIGHUP reload); what was learned about certificates is forgotten."""
        with self._lock:
            self._anchors = list(other._anchors)
            if other.revoked is not None and (self.revoked is None or other.revoked.number >= self.revoked.number):
                self.revoked = other.revoked
            self._cache.clear()
            self.generation += 1

    @property
    def anchors(self) -> list[x509.Certificate]:
        return list(self._anchors)

    @property
    def anchors_pem(self) -> bytes:
        return b"".join(certs.pem(a) for a in self._anchors)

    def identify(self, cert_der: bytes, check_validity: bool = True) -> Identity:
        """The identity a DER certificate proves now, or Rejected(UNTRUSTED_CERT / CERT_EXPIRED).

        check_validity=False: the chain only, for an old certificate whose key signs its own renewal."""
        digest = hashlib.sha256(cert_der).digest()
        with self._lock:
            ident = self._cache.get(digest)
        if ident is None:
            ident = self._check_chain(cert_der)
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = ident
        revoked = self.revoked
        if revoked is not None and ident.serial in revoked.serials and ident.issuer == revoked.issuer:
            raise Rejected(Reason.CERT_REVOKED, f"certificate of {ident.code} (serial {ident.serial:x}) is revoked")
        now = self._clock.now_ms()
        if check_validity and not (ident.not_before_ms <= now <= ident.not_after_ms):
            raise Rejected(Reason.CERT_EXPIRED, f"certificate of {ident.code} is not valid at this time")
        return ident

    def _check_chain(self, cert_der: bytes) -> Identity:
        try:
            cert = x509.load_der_x509_certificate(cert_der)
            issuer = cert.issuer  # parsed lazily: may fail too
        except Exception:  # ValueError, and cryptography's InvalidVersion (not a ValueError) for a version byte flipped
            raise Rejected(Reason.UNTRUSTED_CERT, "certificate does not parse") from None
        for anchor in self._anchors:
            if issuer != anchor.subject:
                continue
            try:
                cert.verify_directly_issued_by(anchor)
            except Exception:
                continue
            code = certs.agency_code(cert)
            key = cert.public_key()
            if code is None or not isinstance(key, ec.EllipticCurvePublicKey):
                raise Rejected(Reason.UNTRUSTED_CERT, "certificate binds no agency code")
            twin = case_twin_of(code)
            if twin is not None:  # its TLS name (certs.tls_name, lower case) is the real agency's too
                raise Rejected(Reason.CASE_TWIN, f"certificate binds {code[:40]!r}, which differs from {twin} "
                               "only by letter case")
            return Identity(
                code=code,
                subject=cert.subject.rfc4514_string(),
                public_key=key,
                not_before_ms=int(cert.not_valid_before_utc.timestamp() * 1000),
                not_after_ms=int(cert.not_valid_after_utc.timestamp() * 1000),
                cert_der=cert_der,
                serial=cert.serial_number,
                issuer=issuer,
            )
        raise Rejected(Reason.UNTRUSTED_CERT, "certificate is not issued by a trust anchor")
