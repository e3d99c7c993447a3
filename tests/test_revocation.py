"""Revocation: the CA revokes, publishes a standard CRL, and a node holding it refuses the certificate
everywhere certificates are checked (envelopes, registrations), with reason CERT_REVOKED."""
from __future__ import annotations

import subprocess

import pytest

from node import envelope
from node.cli import main
from node.config import ConfigError, load_config
from node.errors import Reason, Rejected
from node.harness import nodes
from node.harness.nodes import NodeSpec
from node.identity import certs, revocation
from node.identity.trust import TrustStore
from node.pb import envelope_pb2 as pb
from node.registry import records
from node.runtime import Node

A, B, D = "000.00.01.H53", "000.00.02.H53", "000.00.00.H53"


@pytest.fixture
def ca(tmp_path):
    ca_dir = tmp_path / "ca"
    certs.init_ca(ca_dir)
    return ca_dir


def issued(tmp_path, ca, code):
    certs.init_node(tmp_path / code, code, f"agency {code}", ca)
    return envelope.Signer.from_files(tmp_path / code / "node.key", tmp_path / code / "node.pem"), \
        tmp_path / code / "node.pem"


def run(capsys, *argv):
    status = main(list(argv))
    return status, capsys.readouterr()


def test_the_cli_revokes_and_writes_a_crl_openssl_reads(tmp_path, ca, capsys):
    _, pem = issued(tmp_path, ca, A)
    serial = certs.load_cert(pem).serial_number
    status, out = run(capsys, "ca", "revoke", str(pem), "--ca", str(ca), "--reason", "key_compromise")
    assert status == 0 and f"{serial:x}" in out.out
    status, out = run(capsys, "ca", "crl", "--ca", str(ca))
    assert status == 0
    text = subprocess.run(["openssl", "crl", "-in", str(ca / "ca.crl"), "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    assert f"{serial:X}".upper() in text.replace(":", "").upper() and "Key Compromise" in text


def test_a_revoked_certificate_is_refused_for_envelopes_and_registrations(tmp_path, ca, clock):
    signer, pem = issued(tmp_path, ca, A)
    _, other_pem = issued(tmp_path, ca, B)
    trust = TrustStore.from_files([ca / "ca.pem"])
    _, raw = envelope.seal(signer, B, pb.Payload(document=pb.Document(subject="x")), lifetime_s=60)
    envelope.verify(raw, trust, max_size=1 << 20)  # trusted before
    revocation.revoke(ca, pem, "key_compromise")
    trust.use_crl(revocation.make_crl(ca).read_bytes())
    with pytest.raises(Rejected) as e:
        envelope.verify(raw, trust, max_size=1 << 20)
    assert e.value.reason is Reason.CERT_REVOKED
    trust.identify(certs.der(certs.load_cert(other_pem)))  # others are still trusted
    record = records.make(signer, name="xã", level=2, parent=D, endpoint="127.0.0.1:9", now_ms=clock.now_ms())
    with pytest.raises(Rejected) as e:
        records.verify(record, trust)
    assert e.value.reason is Reason.CERT_REVOKED


def test_an_older_crl_never_brings_a_revoked_certificate_back(tmp_path, ca):
    _, pem = issued(tmp_path, ca, A)
    old = revocation.make_crl(ca).read_bytes()             # number 1: nothing revoked
    revocation.revoke(ca, pem, "superseded")
    new = revocation.make_crl(ca).read_bytes()             # number 2: A revoked
    trust = TrustStore.from_files([ca / "ca.pem"])
    trust.use_crl(new)
    trust.use_crl(old)
    with pytest.raises(Rejected) as e:
        trust.identify(certs.der(certs.load_cert(pem)))
    assert e.value.reason is Reason.CERT_REVOKED


def test_a_crl_not_signed_by_a_trust_anchor_stops_start_up_naming_the_key(tmp_path, ca, pki):
    rogue = tmp_path / "rogue"
    certs.init_ca(rogue, "rogue CA")
    crl = revocation.make_crl(rogue)
    with pytest.raises(ValueError, match="not signed by any trust anchor"):
        TrustStore.from_files([ca / "ca.pem"], crl=crl)
    handle = nodes.prepare_node(tmp_path, pki.ca, NodeSpec(A, "Sở A", extra={"tls": {"crl": str(crl)}}),
                                {A: "127.0.0.1:0"})
    with pytest.raises(ConfigError) as e:
        Node(load_config(handle.config))
    assert e.value.path == "tls.crl"


def test_agencies_of_one_process_share_one_parsed_crl_and_a_rogue_one_is_still_refused(tmp_path, ca):
    """Every agency of a host loads the same CRL: the same bytes verified against the same anchors are parsed
    once (one set of serials in memory, not one per agency); other anchors are checked afresh."""
    _, pem = issued(tmp_path, ca, A)
    revocation.revoke(ca, pem, "key_compromise")
    data = revocation.make_crl(ca).read_bytes()
    stores = [TrustStore.from_files([ca / "ca.pem"]) for _ in range(3)]
    for trust in stores:
        trust.use_crl(data)
    assert stores[0].revoked is stores[1].revoked is stores[2].revoked
    for trust in stores:
        with pytest.raises(Rejected) as e:
            trust.identify(certs.der(certs.load_cert(pem)))
        assert e.value.reason is Reason.CERT_REVOKED
    rogue = tmp_path / "rogue"
    certs.init_ca(rogue, "rogue CA")
    with pytest.raises(revocation.UntrustedCrl):  # the same bytes, other anchors: verified, and refused
        revocation.load(data, certs.load_certs(rogue / "ca.pem"))
