"""X.509 certificates that bind an agency code to a key.

The code sits in the subject CN and in a SAN URI (`urn:lienthong:agency:<code>`); a SAN
DNS name derived from the code lets gRPC's TLS check that it reached the agency it
dialled, whatever the address. A test CA (`lienthong ca init`) stands in for the
Government Cipher Committee's CA; its certificates are plain X.509 that openssl accepts.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import keys

AGENCY_URI_PREFIX = "urn:lienthong:agency:"
TLS_NAME_SUFFIX = ".lienthong.internal"


def tls_name(code: str) -> str:
    """The DNS SAN a node's certificate carries; clients pin it with ssl_target_name_override."""
    return code.lower() + TLS_NAME_SUFFIX


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    attrs.append(x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"))
    return x509.Name(attrs)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def make_ca(name: str = "lienthong test CA", days: int = 3650) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = keys.generate_key()
    subject = _name(name)
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_csr(key: ec.EllipticCurvePrivateKey, code: str, name: str) -> x509.CertificateSigningRequest:
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_name(code, name))
        .add_extension(_san(code), critical=False)
        .sign(key, hashes.SHA256())
    )


def _san(code: str) -> x509.SubjectAlternativeName:
    return x509.SubjectAlternativeName(
        [x509.UniformResourceIdentifier(AGENCY_URI_PREFIX + code), x509.DNSName(tls_name(code))]
    )


def sign_csr(
    csr: x509.CertificateSigningRequest,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    days: int = 825,
    not_before: dt.datetime | None = None,
) -> x509.Certificate:
    """Issue a node certificate; the code is taken from the request's CN and re-bound in the SAN."""
    if not csr.is_signature_valid:
        raise ValueError("certificate request signature does not verify")
    code = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    start = not_before or (_now() - dt.timedelta(minutes=5))
    return (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_cert.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(_san(code), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def agency_code(cert: x509.Certificate) -> str | None:
    """The agency code a certificate binds: the SAN URI, which must agree with the CN."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = [u for u in san.get_values_for_type(x509.UniformResourceIdentifier) if u.startswith(AGENCY_URI_PREFIX)]
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(uris) != 1 or not cns:
        return None
    code = uris[0][len(AGENCY_URI_PREFIX):]
    return code if cns[0].value == code else None


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


def load_certs(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(Path(path).read_bytes())


@dataclass(frozen=True)
class IssuedFiles:
    key: Path
    csr: Path
    cert: Path | None
    ca: Path | None
    seal_key: Path | None = None


def refuse_overwrite(*paths: Path) -> None:
    """A key (or the certificate that goes with it) is never replaced unless the operator says --force."""
    for p in paths:
        if p.exists():
            raise FileExistsError(f"{p} already exists: keep it, or pass --force to replace it "
                                  "(whatever it signed or certified then no longer matches)")


def init_ca(directory: Path, name: str = "lienthong test CA", force: bool = False) -> tuple[Path, Path]:
    """`lienthong ca init`: ca.key (0600) and self-signed ca.pem in `directory`."""
    if not force:
        refuse_overwrite(directory / "ca.key", directory / "ca.pem")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key, cert = make_ca(name)
    keys.write_private_key(directory / "ca.key", key)
    (directory / "ca.pem").write_bytes(pem(cert))
    return directory / "ca.key", directory / "ca.pem"


def init_node(directory: Path, code: str, name: str, ca_dir: Path | None = None, days: int = 825,
              not_before: dt.datetime | None = None, force: bool = False) -> IssuedFiles:
    """`lienthong init`: node.key and seal.key (0600) and node.csr; with a CA, node.pem and a copy of ca.pem.

    seal.key is the P-256 key-agreement key payloads are sealed to (node.identity.sealing): a key of
    its own, published in the node's signed registry record, never the signing/TLS key."""
    if ca_dir is not None:
        for f in ("ca.key", "ca.pem"):
            if not (ca_dir / f).is_file():
                raise FileNotFoundError(f"{ca_dir / f}: no such file (is --ca a directory made by `lienthong ca init`?)")
    if not force:
        refuse_overwrite(directory / "node.key", directory / "node.pem", directory / "seal.key")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = keys.generate_key()
    keys.write_private_key(directory / "node.key", key)
    keys.write_private_key(directory / "seal.key", keys.generate_key())
    csr = make_csr(key, code, name)
    (directory / "node.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    if ca_dir is None:
        return IssuedFiles(directory / "node.key", directory / "node.csr", None, None, directory / "seal.key")
    ca_key = keys.load_private_key(ca_dir / "ca.key")
    ca_cert = load_cert(ca_dir / "ca.pem")
    cert = sign_csr(csr, ca_key, ca_cert, days=days, not_before=not_before)
    (directory / "node.pem").write_bytes(pem(cert))
    (directory / "ca.pem").write_bytes(pem(ca_cert))
    return IssuedFiles(directory / "node.key", directory / "node.csr", directory / "node.pem", directory / "ca.pem",
                       directory / "seal.key")


def sign_request_file(csr_path: Path, ca_dir: Path, out: Path, days: int = 825, force: bool = False) -> str:
    """`lienthong ca sign`: issue a certificate for a request file; returns the code it binds."""
    from ..codes import CodeError, case_twin_of, validate
    for f in ("ca.key", "ca.pem"):
        if not (ca_dir / f).is_file():
            raise FileNotFoundError(f"{ca_dir / f}: no such file (is --ca a directory made by `lienthong ca init`?)")
    try:
        csr = x509.load_pem_x509_csr(Path(csr_path).read_bytes())
    except ValueError:
        raise ValueError(f"{csr_path} is not a PEM certificate request") from None
    cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not cns:
        raise ValueError(f"{csr_path}: the request names no agency code (no CN)")
    code = str(cns[0].value)
    try:
        validate(code)
    except CodeError:
        if not code or not all(ch.isalnum() or ch == "." for ch in code):
            raise ValueError(f"{csr_path}: {code!r} is not an agency code") from None
        if case_twin_of(code) is not None:
            raise ValueError(f"{csr_path}: {code!r} differs from the QCVN 102 code {case_twin_of(code)} only by "
                             "letter case: no agency has it") from None
    if not force:
        refuse_overwrite(out)
    cert = sign_csr(csr, keys.load_private_key(ca_dir / "ca.key"), load_cert(ca_dir / "ca.pem"), days=days)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(pem(cert))
    return code
