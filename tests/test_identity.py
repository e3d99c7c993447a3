"""Identity: `lienthong ca init` / `init`, certificates binding agency codes, the trust store, keys."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from node import cli
from node.envelope import Signer
from node.errors import Reason, Rejected
from node.identity import certs, keys
from node.identity.trust import TrustStore

sys.path.insert(0, str(Path(__file__).parent))  # tests/ is not a package (pytest runs in importlib mode)
from identity_fixtures import (  # noqa: E402
    DAY,
    DAY_MS,
    SENDER,
    T0,
    T0_MS,
    ca,
    clock,
    rogue_ca,
    trust,
)

CODE = "000.00.35.H53"
NAME = "UBND huyện Hòa Thành"
URI = "urn:lienthong:agency:000.00.35.H53"


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def reason_of(trust: TrustStore, cert_der: bytes) -> Reason:
    with pytest.raises(Rejected) as exc:
        trust.identify(cert_der)
    return exc.value.reason


# ---- CLI: ca init / init --------------------------------------------------------


@pytest.fixture(scope="module")
def issued(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("cli")
    ca_dir, node_dir = root / "ca", root / "node"
    assert cli.main(["ca", "init", "--dir", str(ca_dir)]) == 0
    assert cli.main(["init", "--code", CODE, "--name", NAME, "--dir", str(node_dir), "--ca", str(ca_dir)]) == 0
    return ca_dir, node_dir


def test_ca_init_writes_owner_only_key_and_self_signed_ca(issued):
    ca_dir, _ = issued
    assert mode(ca_dir / "ca.key") == 0o600
    ca_cert = certs.load_cert(ca_dir / "ca.pem")
    ca_cert.verify_directly_issued_by(ca_cert)
    assert ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca_cert.public_key().public_numbers() == keys.load_private_key(ca_dir / "ca.key").public_key().public_numbers()


def test_init_with_ca_writes_key_csr_cert_and_ca_copy(issued):
    ca_dir, node_dir = issued
    for name in ("node.key", "node.csr", "node.pem", "ca.pem"):
        assert (node_dir / name).is_file(), name
    assert mode(node_dir / "node.key") == 0o600
    assert (node_dir / "ca.pem").read_bytes() == (ca_dir / "ca.pem").read_bytes()


def test_certificate_binds_code_in_cn_and_san(issued):
    ca_dir, node_dir = issued
    cert = certs.load_cert(node_dir / "node.pem")
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == CODE
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == NAME
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [URI]
    assert san.get_values_for_type(x509.DNSName) == [certs.tls_name(CODE)]
    assert certs.agency_code(cert) == CODE
    cert.verify_directly_issued_by(certs.load_cert(ca_dir / "ca.pem"))


def test_issued_files_load_as_signer_and_are_trusted(issued):
    ca_dir, node_dir = issued
    signer = Signer.from_files(node_dir / "node.key", node_dir / "node.pem")
    assert signer.code == CODE
    ident = TrustStore.from_files([ca_dir / "ca.pem"]).identify(signer.cert_der)  # wall clock: issued just now
    assert ident.code == CODE
    assert keys.verify(ident.public_key, signer.sign(b"x"), b"x")


@pytest.mark.parametrize("purpose", [[], ["-purpose", "sslserver"], ["-purpose", "sslclient"]])
def test_openssl_verifies_certificate_against_ca(issued, purpose):
    if shutil.which("openssl") is None:
        pytest.skip("openssl not on PATH")
    ca_dir, node_dir = issued
    r = subprocess.run(
        ["openssl", "verify", *purpose, "-CAfile", str(ca_dir / "ca.pem"), str(node_dir / "node.pem")],
        capture_output=True, text=True, timeout=30,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().endswith("OK")


def test_init_without_ca_writes_key_and_valid_csr_only(tmp_path):
    assert cli.main(["init", "--code", CODE, "--name", NAME, "--dir", str(tmp_path)]) == 0
    assert mode(tmp_path / "node.key") == 0o600
    assert not (tmp_path / "node.pem").exists() and not (tmp_path / "ca.pem").exists()
    csr = x509.load_pem_x509_csr((tmp_path / "node.csr").read_bytes())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == CODE
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [URI]
    key = keys.load_private_key(tmp_path / "node.key")
    assert csr.public_key().public_numbers() == key.public_key().public_numbers()


@pytest.mark.parametrize("bad", ["abc", "000.00.35.Z53", "000.00.35.H5", "00.00.35.H53", ""])
def test_init_refuses_malformed_code_with_status_2(tmp_path, capsys, bad):
    assert cli.main(["init", "--code", bad, "--name", NAME, "--dir", str(tmp_path / "n")]) == 2
    assert "agency code" in capsys.readouterr().err
    assert not (tmp_path / "n" / "node.key").exists()


def test_init_accepts_non_qcvn_code_with_registered_parent(tmp_path, issued):
    ca_dir, _ = issued
    argv = ["init", "--code", "vxp.saas.03", "--parent", "000.00.00.H53", "--name", "SaaS", "--dir", str(tmp_path),
            "--ca", str(ca_dir)]
    assert cli.main(argv) == 0
    assert certs.agency_code(certs.load_cert(tmp_path / "node.pem")) == "vxp.saas.03"


# ---- TrustStore -------------------------------------------------------------------


def test_trust_identifies_certificate_from_its_ca(ca, trust):
    key, cert = ca.issue(SENDER)
    ident = trust.identify(certs.der(cert))
    assert ident.code == SENDER
    assert ident.subject == cert.subject.rfc4514_string()
    assert "CN=" + SENDER in ident.subject
    assert ident.public_key.public_numbers() == key.public_key().public_numbers()
    assert (ident.not_before_ms, ident.not_after_ms) == (T0_MS - DAY_MS, T0_MS + 364 * DAY_MS)
    assert ident.cert_der == certs.der(cert)


def test_trust_needs_an_anchor():
    with pytest.raises(ValueError):
        TrustStore([])


def test_certificate_from_another_ca_is_untrusted(ca, rogue_ca, trust):
    assert rogue_ca.cert.subject == ca.cert.subject  # same name, different key
    _, cert = rogue_ca.issue(SENDER)
    assert reason_of(trust, certs.der(cert)) is Reason.UNTRUSTED_CERT


def test_certificate_from_differently_named_ca_is_untrusted(trust):
    other = certs.make_ca("another CA")
    cert = certs.sign_csr(certs.make_csr(keys.generate_key(), SENDER, "x"), *other, not_before=T0 - DAY)
    assert reason_of(trust, certs.der(cert)) is Reason.UNTRUSTED_CERT


def test_any_of_several_same_named_anchors_may_vouch(ca, rogue_ca, clock):
    store = TrustStore([rogue_ca.cert, ca.cert], clock)
    _, cert = ca.issue(SENDER)
    assert store.identify(certs.der(cert)).code == SENDER


@pytest.mark.parametrize(
    "not_before, days",
    [(T0 - 400 * DAY, 365), (T0 + DAY, 365)],
    ids=["expired", "not-yet-valid"],
)
def test_certificate_outside_validity_is_expired(ca, trust, not_before, days):
    _, cert = ca.issue(SENDER, not_before=not_before, days=days)
    assert reason_of(trust, certs.der(cert)) is Reason.CERT_EXPIRED


def test_validity_is_rechecked_as_the_clock_moves(ca, trust, clock):
    _, cert = ca.issue(SENDER)  # valid T0-1d .. T0+364d
    der = certs.der(cert)
    assert trust.identify(der).code == SENDER  # now cached
    clock.advance(364 * 86_400)
    assert trust.identify(der).code == SENDER  # not_after itself is inside the period
    clock.advance(0.001)
    assert reason_of(trust, der) is Reason.CERT_EXPIRED


@pytest.mark.parametrize("data", [b"", b"\x00garbage\xff", b"0\x82\x01\x00"], ids=["empty", "garbage", "truncated-der"])
def test_unparseable_certificate_is_untrusted(trust, data):
    assert reason_of(trust, data) is Reason.UNTRUSTED_CERT


def test_pem_instead_of_der_is_untrusted(ca, trust):
    _, cert = ca.issue(SENDER)
    assert reason_of(trust, certs.pem(cert)) is Reason.UNTRUSTED_CERT


def _ca_signed(ca, cn: str, san: list[x509.GeneralName] | None) -> x509.Certificate:
    key = keys.generate_key()
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(T0 - DAY)
        .not_valid_after(T0 + DAY)
    )
    if san is not None:
        b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return b.sign(ca.key, hashes.SHA256())


@pytest.mark.parametrize(
    "san",
    [
        None,
        [x509.DNSName(certs.tls_name(SENDER))],
        [x509.UniformResourceIdentifier("urn:lienthong:agency:000.00.36.H53")],
        [x509.UniformResourceIdentifier("urn:lienthong:agency:" + SENDER),
         x509.UniformResourceIdentifier("urn:lienthong:agency:000.00.36.H53")],
    ],
    ids=["no-san", "dns-only", "uri-differs-from-cn", "two-agency-uris"],
)
def test_ca_signed_certificate_without_single_matching_agency_san_is_untrusted(ca, trust, san):
    cert = _ca_signed(ca, SENDER, san)
    cert.verify_directly_issued_by(ca.cert)  # the chain itself is fine
    assert reason_of(trust, certs.der(cert)) is Reason.UNTRUSTED_CERT


def test_anchor_itself_is_no_agency(ca, trust):
    assert reason_of(trust, certs.der(ca.cert)) is Reason.UNTRUSTED_CERT


# ---- Signer.from_files --------------------------------------------------------------


def _write(tmp_path: Path, key, cert: x509.Certificate) -> tuple[Path, Path]:
    keys.write_private_key(tmp_path / "node.key", key)
    (tmp_path / "node.pem").write_bytes(certs.pem(cert))
    return tmp_path / "node.key", tmp_path / "node.pem"


def test_signer_from_matching_files(ca, tmp_path):
    key, cert = ca.issue(SENDER)
    signer = Signer.from_files(*_write(tmp_path, key, cert))
    assert (signer.code, signer.cert_der) == (SENDER, certs.der(cert))


def test_signer_from_files_refuses_key_that_does_not_match_cert(ca, tmp_path):
    _, cert = ca.issue(SENDER)
    with pytest.raises(ValueError, match="does not match"):
        Signer.from_files(*_write(tmp_path, keys.generate_key(), cert))


def test_signer_from_files_refuses_cert_without_agency_code(ca, tmp_path):
    cert = _ca_signed(ca, SENDER, None)
    key = keys.generate_key()
    with pytest.raises(ValueError, match="binds no agency code"):
        Signer.from_files(*_write(tmp_path, key, cert))


# ---- keys -------------------------------------------------------------------------------


def test_sign_verify_round_trip_and_tamper():
    key = keys.generate_key()
    data = "Công văn số 12/UBND".encode()
    sig = keys.sign(key, data)
    assert keys.verify(key.public_key(), sig, data)
    assert not keys.verify(key.public_key(), sig, data + b".")
    assert not keys.verify(key.public_key(), sig, data[:-1] + bytes([data[-1] ^ 1]))
    assert not keys.verify(keys.generate_key().public_key(), sig, data)
    assert not keys.verify(key.public_key(), b"not a DER signature", data)
    assert not keys.verify(key.public_key(), b"", data)


def test_write_private_key_tightens_existing_file_and_round_trips(tmp_path):
    path = tmp_path / "k" / "node.key"
    path.parent.mkdir()
    path.write_bytes(b"old")
    path.chmod(0o644)
    key = keys.generate_key()
    keys.write_private_key(path, key)
    assert mode(path) == 0o600
    assert keys.load_private_key(path).private_numbers() == key.private_numbers()
    assert serialization.load_pem_private_key(path.read_bytes(), None).key_size == 256
