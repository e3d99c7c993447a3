"""SIGHUP reloads the certificate, key and trust anchors of a running node without dropping custody work
(real processes): province P, district D under it; D's certificate is renewed while mail waits."""
from __future__ import annotations

import signal

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from node.cli import main
from node.config import load_config
from node.doctor import peer_certificate
from node.harness import nodes
from node.harness.inproc import FAST_REGISTRY
from node.harness.nodes import NodeSpec
from node.harness.waiting import EventWaiter
from node.pb import envelope_pb2 as pb

P, D = "000.00.00.H53", "000.00.35.H53"
TIMEOUT = 30.0


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("reload")
    ca = nodes.make_ca(root)
    addresses = {code: f"127.0.0.1:{nodes.free_port()}" for code in (P, D)}
    hp = nodes.prepare_node(root, ca, NodeSpec(P, "Tỉnh P", extra=FAST_REGISTRY), addresses)
    hd = nodes.prepare_node(root, ca, NodeSpec(D, "Huyện D", peers={P: P}, parent=P, extra=FAST_REGISTRY), addresses)
    try:
        nodes.start(hp)
        nodes.wait_healthy([hp], TIMEOUT)
        nodes.start_registered(hp, hd, TIMEOUT)
        yield root, ca, hp, hd
    finally:
        for h in (hp, hd):
            nodes.terminate(h)


def test_sighup_puts_a_renewed_certificate_in_use_and_keeps_the_mail(tree, capsys):
    _, ca, hp, hd = tree
    p, d, cfg = hp.client(), hd.client(), str(hd.config)
    pid = hd.pid
    new_pem = hd.dir / "keys" / "node.pem"
    old_der = x509.load_pem_x509_certificate(new_pem.read_bytes()).public_bytes(Encoding.DER)
    assert peer_certificate(load_config(hp.config), hd.listen) == old_der

    assert main(["hold", "--config", cfg, P]) == 0  # custody work under way: mail waiting in D's queue
    [waiting] = d.send(pb.Document(subject="trước khi đổi chứng thư"), [P]).envelopes
    assert main(["renew", "--config", cfg, "--ca", str(ca)]) == 0
    capsys.readouterr()

    with EventWaiter(p, inbox=True, sent=False, registry=True) as ev:
        hd.process.send_signal(signal.SIGHUP)
        ev.wait(lambda evs: any(e.type == "registered" and e.peer == D for e in evs), TIMEOUT)  # new cert, accepted
        assert main(["release", "--config", cfg, P]) == 0
        [after] = d.send(pb.Document(subject="sau khi đổi chứng thư"), [P]).envelopes
        ev.wait(lambda _: {waiting.message_id, after.message_id} <= ev.ids("arrived"), TIMEOUT)

    assert hd.process.poll() is None and hd.pid == pid  # the same process all along
    new_der = x509.load_pem_x509_certificate(new_pem.read_bytes()).public_bytes(Encoding.DER)
    assert new_der != old_der
    assert peer_certificate(load_config(hp.config), hd.listen) == new_der  # a new connection sees the new one
    for m in (waiting.message_id, after.message_id):
        assert p.fetch(m).signature_verified
    log = hd.log_path.read_text()
    assert "reload (SIGHUP): certificate: serial" in log and "reload (SIGHUP): key: replaced" in log
    assert "registering the new certificate with 000.00.00.H53 (co-signed by the previous key)" in log
    assert "CERT_IN_USE" not in hp.log_path.read_text()


def test_sighup_with_broken_files_keeps_what_is_in_use_and_says_why(tree):
    _, _, hp, hd = tree
    key = hd.dir / "keys" / "node.key"
    good = key.read_bytes()
    key.write_bytes(b"not a key")
    try:
        with EventWaiter(hp.client(), inbox=False, sent=False, registry=True) as ev:
            hd.process.send_signal(signal.SIGHUP)
            # the node goes on: a heartbeat reaches P after the refused reload
            ev.wait(lambda evs: any(e.type == "heartbeat" and e.peer == D for e in evs), TIMEOUT)
    finally:
        key.write_bytes(good)
    assert hd.process.poll() is None
    assert "reload refused, keeping the key, certificate and trust anchors in use: tls.key:" in hd.log_path.read_text()
