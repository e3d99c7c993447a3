"""Certificate revocation: the CA's signed list of certificates no longer to be trusted (an X.509 CRL).

A stolen or leaked agency key would otherwise stay valid until its certificate expires.
The CA side (`lienthong ca revoke`, `lienthong ca crl`) keeps what it revoked in
`revoked.json` beside its key and writes a standard CRL (`ca.crl`, PEM) that openssl
reads. A node loads a CRL only if one of its trust anchors signed it; its TrustStore
then refuses a revoked certificate wherever certificates are checked (envelopes, relay
marks, receipts, registrations, counters), with reason CERT_REVOKED.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ..files import write_atomically
from . import certs, keys

REASONS = {
    "unspecified": x509.ReasonFlags.unspecified,
    "key_compromise": x509.ReasonFlags.key_compromise,
    "affiliation_changed": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessation_of_operation": x509.ReasonFlags.cessation_of_operation,
}
LIST_FILE, CRL_FILE = "revoked.json", "ca.crl"
MAX_CRL_BYTES = 1 << 20  # ~25 000 revoked serials; a peer's push or a file bigger than this is refused unread


class NotACrl(ValueError):
    """The bytes are not an X.509 CRL (or are over MAX_CRL_BYTES)."""


class UntrustedCrl(ValueError):
    """A CRL no trust anchor signed."""


def _revoked(ca_dir: Path) -> dict:
    path = ca_dir / LIST_FILE
    return json.loads(path.read_text()) if path.exists() else {"number": 0, "revoked": {}}


def revoke(ca_dir: Path, cert_path: Path, reason: str, now: dt.datetime | None = None) -> int:
    """Record `cert_path`'s serial as revoked (once; the first reason and time stay). Returns the serial."""
    if reason not in REASONS:
        raise ValueError(f"reason must be one of {', '.join(REASONS)}, got {reason!r}")
    cert = certs.load_cert(cert_path)
    ca = certs.load_cert(ca_dir / "ca.pem")
    if cert.issuer != ca.subject:
        raise ValueError(f"{cert_path} was not issued by the CA in {ca_dir}")
    state = _revoked(ca_dir)
    when = (now or dt.datetime.now(dt.timezone.utc)).isoformat()
    state["revoked"].setdefault(format(cert.serial_number, "x"), {"time": when, "reason": reason,
                                                                   "subject": cert.subject.rfc4514_string()})
    write_atomically(ca_dir / LIST_FILE, json.dumps(state, indent=2).encode(), 0o644)
    return cert.serial_number


def make_crl(ca_dir: Path, days: int = 7, now: dt.datetime | None = None) -> Path:
    """Write `ca.crl`: every revoked serial, signed by the CA, valid for `days` (nodes want a fresh one by then)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    state = _revoked(ca_dir)
    state["number"] += 1
    ca, key = certs.load_cert(ca_dir / "ca.pem"), keys.load_private_key(ca_dir / "ca.key")
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject).last_update(now)
               .next_update(now + dt.timedelta(days=days))
               .add_extension(x509.CRLNumber(state["number"]), critical=False))
    for serial, entry in sorted(state["revoked"].items()):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(int(serial, 16))
            .revocation_date(dt.datetime.fromisoformat(entry["time"]))
            .add_extension(x509.CRLReason(REASONS[entry["reason"]]), critical=False).build())
    crl = builder.sign(key, hashes.SHA256())
    write_atomically(ca_dir / CRL_FILE, crl.public_bytes(serialization.Encoding.PEM), 0o644)
    write_atomically(ca_dir / LIST_FILE, json.dumps(state, indent=2).encode(), 0o644)
    return ca_dir / CRL_FILE


@dataclass(frozen=True)
class Revoked:
    """What a verified CRL says: the revoked serials of its issuer, and until when it is fresh."""
    issuer: x509.Name
    serials: frozenset[int]
    next_update_ms: int
    number: int
    der: bytes = b""  # the CRL as signed, what a node stores and passes on to its children
    this_update_ms: int = 0  # when the CA issued it (the metrics show its age)


def reason_of(revoked: Revoked, serial: int) -> str | None:
    """Why the CRL revokes `serial` (a name of REASONS; "unspecified" when it says none), None if it does not."""
    if serial not in revoked.serials or not revoked.der:
        return None
    entry = x509.load_der_x509_crl(revoked.der).get_revoked_certificate_by_serial_number(serial)
    if entry is None:
        return None
    try:
        flag = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return "unspecified"
    return next((name for name, f in REASONS.items() if f == flag), flag.name)


def load(data: bytes, anchors: list[x509.Certificate]) -> Revoked:
    """A CRL, if one of `anchors` signed it; NotACrl or UntrustedCrl (both ValueError) otherwise: a CRL anyone
    could write is worth nothing.

    The same bytes verified against the same anchors give the same (immutable) answer, so it is shared:
    every agency of a host loads the national CA's CRL (up to MAX_CRL_BYTES: ~25,000 serials, a few MB
    parsed), and keeps one copy, not one each. Kept only while some holder uses it (weak references)."""
    if len(data) > MAX_CRL_BYTES:
        raise NotACrl(f"CRL is {len(data)} bytes, over the limit of {MAX_CRL_BYTES}")
    key = (hashlib.sha256(data).digest(), tuple(a.fingerprint(hashes.SHA256()) for a in anchors))
    with _shared_lock:
        known = _shared.get(key)
    if known is not None:
        return known
    loaded = _load(data, anchors)
    with _shared_lock:
        return _shared.setdefault(key, loaded)


_shared: "weakref.WeakValueDictionary[tuple, Revoked]" = weakref.WeakValueDictionary()  # CRLs verified, in use
_shared_lock = threading.Lock()


def _load(data: bytes, anchors: list[x509.Certificate]) -> Revoked:
    try:
        crl = x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----") else x509.load_der_x509_crl(data)
    except Exception:  # noqa: BLE001 - any parse failure means: not a CRL
        raise NotACrl("not an X.509 CRL") from None
    try:
        signer = next((a for a in anchors if a.subject == crl.issuer and crl.is_signature_valid(a.public_key())),
                      None)
    except Exception:  # noqa: BLE001 - a signature or issuer that does not parse signs nothing
        signer = None
    if signer is None:
        raise UntrustedCrl("CRL is not signed by any trust anchor")
    try:
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        next_update = crl.next_update_utc
        serials = frozenset(r.serial_number for r in crl)
        der = crl.public_bytes(serialization.Encoding.DER)
        this_update = crl.last_update_utc
    except x509.ExtensionNotFound:
        raise NotACrl("CRL carries no CRL number (nodes order CRLs by it)") from None
    except Exception:  # noqa: BLE001 - signed by the CA yet not readable: refuse rather than half-use it
        raise NotACrl("CRL entries do not parse") from None
    return Revoked(crl.issuer, serials, int(next_update.timestamp() * 1000) if next_update else 0, number, der,
                   int(this_update.timestamp() * 1000))
