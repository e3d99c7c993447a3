"""SIGHUP reloads the certificate, key and trust anchors of a running node without dropping custody work
(real processes): province P, district D under it; D's certificate is renewed while mail waits."""
from __future__ import annotations

import json
import signal
import socket
import tempfile
import urllib.request
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from node.cli import main
from node.config import load_config
from node.doctor import Report, check_peer, peer_certificate
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
    with nodes.parent_and_child(root, ca, NodeSpec(P, "Tỉnh P", extra=FAST_REGISTRY),
                                NodeSpec(D, "Huyện D", peers={P: P}, parent=P, extra=FAST_REGISTRY), TIMEOUT) as (hp, hd):
        yield root, ca, hp, hd


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
    assert "reload refused, keeping the config, key, certificate and trust anchors in use: tls.key:" in hd.log_path.read_text()


# ---- SIGHUP re-reads node.yaml ---------------------------------------------------------------

A, X = "000.00.01.H53", "000.00.02.H53"


class Notified:
    """A fake $NOTIFY_SOCKET: what the node tells systemd, read datagram by datagram (bounded waits)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ltn-"))  # short: a unix socket path is at most 107 bytes
        self.path = self.dir / "notify"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.settimeout(TIMEOUT)  # a bound on the wait for the node's datagrams, not a sleep

    def reloaded(self) -> str:
        """After a SIGHUP: RELOADING=1, then READY=1 with the outcome as STATUS; returns the outcome."""
        while "RELOADING=1" not in self.sock.recv(4096).decode().splitlines():
            pass
        while True:
            lines = self.sock.recv(4096).decode().splitlines()
            if "READY=1" in lines:
                return next(line[len("STATUS="):] for line in lines if line.startswith("STATUS="))

    def close(self) -> None:
        self.sock.close()
        self.path.unlink()
        self.dir.rmdir()


def rewrite(handle, edit) -> None:
    data = yaml.safe_load(handle.config.read_text())
    edit(data)
    handle.config.write_text(yaml.safe_dump(data, allow_unicode=True))


def peer_line(checker, target) -> str:
    report = Report()
    check_peer(load_config(checker.config), report, "peer", target.code, target.listen)
    [(_, _, detail)] = report.lines
    return detail


def test_sighup_rereads_node_yaml_takes_what_it_can_and_names_what_needs_a_restart(tmp_path, monkeypatch):
    ca = nodes.make_ca(tmp_path)
    addresses = {A: f"127.0.0.1:{nodes.free_port()}", X: f"127.0.0.1:{nodes.free_port()}"}
    ha = nodes.prepare_node(tmp_path, ca, NodeSpec(A, "Sở A"), addresses)
    hx = nodes.prepare_node(tmp_path, ca, NodeSpec(X, "Sở X", peers={A: A}), addresses)  # never started
    assert main(["ca", "revoke", str(hx.dir / "keys" / "node.pem"), "--ca", str(ca), "--reason", "key_compromise"]) == 0
    assert main(["ca", "crl", "--ca", str(ca)]) == 0
    notified = Notified()
    monkeypatch.setenv("NOTIFY_SOCKET", str(notified.path))
    nodes.start(ha)
    try:
        nodes.wait_healthy([ha], TIMEOUT)
        assert "reachable over mutual TLS, SERVING" in peer_line(hx, ha)  # no CRL in use: X is let in
        moved = f"127.0.0.1:{nodes.free_port()}"

        # a bad config is refused as a whole: not even its good keys are taken
        rewrite(ha, lambda d: (d["tls"].update(crl=str(ca / "ca.crl")), d.update(listen=moved),
                               d.update(retry={"first_delay": "soon"})))
        ha.process.send_signal(signal.SIGHUP)
        outcome = notified.reloaded()
        assert outcome.startswith("refused: retry.first_delay: expected a duration"), outcome
        assert "reachable over mutual TLS, SERVING" in peer_line(hx, ha)  # the CRL was not taken
        assert not ha.client().admin.running().crl.held

        # fixed: the CRL, peers, limits and log level are taken; the new listen address waits for a restart
        assert "metrics" not in json.loads((ha.dir / "data" / "runtime.json").read_text())
        rewrite(ha, lambda d: (d.pop("retry"), d.update(limits={"recipients_per_send": 7}, log_level="WARNING",
                                                         peers=[{"code": X, "address": hx.listen}],
                                                         metrics={"listen": "127.0.0.1:0"})))
        ha.process.send_signal(signal.SIGHUP)
        assert notified.reloaded() == "reloaded; restart to apply: listen"
        line = peer_line(hx, ha)  # still served where it was, and now it refuses X
        assert f"{ha.listen} is {A} and refuses us: our certificate" in line and "REVOKED" in line, line
        client = ha.client()
        assert client.whoami().limits.recipients_per_send == 7
        held = client.admin.running()
        assert (held.crl.held, held.crl.source, held.crl.revoked) == (True, "tls.crl", 1)
        assert held.config["listen"] == f'"{ha.listen}"' and held.config["limits.recipients_per_send"] == "7"
        assert held.last_reload == "reloaded; restart to apply: listen"
        metrics = json.loads((ha.dir / "data" / "runtime.json").read_text())["metrics"]  # served from now on
        with urllib.request.urlopen(f"http://{metrics}/metrics", timeout=TIMEOUT) as resp:
            assert b"lienthong_" in resp.read()
        assert ha.process.poll() is None
    finally:
        nodes.terminate(ha)
        notified.close()
    log = ha.log_path.read_text()
    assert "reload refused, keeping the config, key, certificate and trust anchors in use: retry.first_delay:" in log
    assert log.count("restart to apply") == 1  # not for the refused one
    assert f"reload (SIGHUP): listen changed in {ha.config}: restart to apply" in log
    assert f"reload (SIGHUP): peers: + {X} {hx.listen}" in log
    assert "CRL number 1 from tls.crl in use (1 revoked" in log
    assert "reload (SIGHUP): log_level taken" in log and "stopping node" not in log  # INFO no more
