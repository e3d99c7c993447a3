"""The CRL a node holds: only a newer list an anchor signed is taken (kept 0600 in the data dir, read
again at start-up); a stale one (past next update + tls.crl_grace, by the injected clock) holds the
queue and turns the peer surface NOT_SERVING; a renewal after the registered certificate was revoked."""
from __future__ import annotations

import datetime as dt
import stat
import time

import pytest
from grpc_health.v1 import health_pb2

from node import envelope
from node.clock import FakeClock
from node.config import load_config
from node.errors import Reason, Rejected
from node.harness import nodes
from node.harness.nodes import NodeSpec
from node.identity import certs, revocation
from node.identity.crl_holder import FILE, CrlHolder
from node.identity.trust import TrustStore
from node.pb import registry_pb2 as rpb
from node.registry import records
from node.runtime import Node

A, D = "000.21.35.H53", "000.00.35.H53"


@pytest.fixture
def ca(tmp_path):
    ca_dir = tmp_path / "ca"
    certs.init_ca(ca_dir)
    return ca_dir


def holder(tmp_path, ca, clock=None, grace_s=0.0):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    return CrlHolder(TrustStore.from_files([ca / "ca.pem"]), data, clock or FakeClock(), grace_s)


def refused(fn) -> Reason:
    with pytest.raises(Rejected) as e:
        fn()
    return e.value.reason


def test_a_newer_crl_is_taken_kept_0600_and_read_again(tmp_path, ca):
    certs.init_node(tmp_path / A, A, "xã A", ca)
    pem = tmp_path / A / "node.pem"
    h = holder(tmp_path, ca)
    taken = []
    h.on_new.append(taken.append)
    revocation.revoke(ca, pem, "key_compromise")
    crl = revocation.make_crl(ca).read_bytes()
    assert h.offer(crl, "tls.crl") is True and [c.number for c in taken] == [1]
    assert h.offer(crl, "tls.crl") is False  # the very list we hold: nothing to do
    kept = h.path
    assert kept.name == FILE and stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert kept.read_bytes() == h.current.der
    again = holder(tmp_path, ca)  # a restart: the kept list is in use at once
    again.load_stored()
    assert again.number == 1
    assert refused(lambda: again.trust.identify(certs.der(certs.load_cert(pem)))) is Reason.CERT_REVOKED


def test_forged_older_oversized_and_garbage_lists_change_nothing(tmp_path, ca):
    h = holder(tmp_path, ca)
    first = revocation.make_crl(ca).read_bytes()
    second = revocation.make_crl(ca).read_bytes()
    assert h.offer(second, "parent")
    kept = h.path.read_bytes()
    rogue = tmp_path / "rogue"
    certs.init_ca(rogue, "rogue CA")
    for _ in range(5):
        forged = revocation.make_crl(rogue).read_bytes()  # a higher number, but nobody we trust signed it
    assert refused(lambda: h.offer(forged, "parent")) is Reason.UNTRUSTED_CERT
    assert refused(lambda: h.offer(first, "parent")) is Reason.CRL_OUTDATED
    assert refused(lambda: h.offer(b"\x30" * (revocation.MAX_CRL_BYTES + 1), "parent")) is Reason.TOO_LARGE
    assert refused(lambda: h.offer(b"not a CRL", "parent")) is Reason.MALFORMED
    assert h.number == 2 and h.path.read_bytes() == kept


def test_staleness_follows_the_injected_clock_and_the_grace(tmp_path, ca):
    clock = FakeClock()
    h = holder(tmp_path, ca, clock, grace_s=3600)
    assert h.stale_problem() is None  # no CRL held: nothing to be stale
    now = dt.datetime.fromtimestamp(clock.now(), dt.timezone.utc)
    h.offer(revocation.make_crl(ca, days=1, now=now).read_bytes(), "tls.crl")
    clock.advance(86400 + 3600)
    assert not h.stale
    clock.advance(1)
    assert "past its next update" in h.stale_problem() and "tls.crl_grace (3600s)" in h.stale_problem()
    later = dt.datetime.fromtimestamp(clock.now(), dt.timezone.utc)
    h.offer(revocation.make_crl(ca, days=1, now=later).read_bytes(), "parent")
    assert h.stale_problem() is None


def test_a_certificate_whose_registered_predecessor_is_revoked_registers_without_its_key(tmp_path, ca):
    """Key compromise: the CA revokes the registered certificate and issues a new one; the parent takes
    the new record although the old key did not sign it (whoever holds that key must not be needed)."""
    certs.init_node(tmp_path / "old", A, "xã A", ca)
    old = envelope.Signer.from_files(tmp_path / "old" / "node.key", tmp_path / "old" / "node.pem")
    certs.init_node(tmp_path / "new", A, "xã A", ca)
    new = envelope.Signer.from_files(tmp_path / "new" / "node.key", tmp_path / "new" / "node.pem")
    trust = TrustStore.from_files([ca / "ca.pem"])
    signed = records.make(new, name="xã A", level=3, parent=D, endpoint="127.0.0.1:9", now_ms=int(time.time() * 1000))
    record = rpb.AgencyRecord.FromString(signed.record)
    assert refused(lambda: records.check_renewal(signed, record, old.cert_der, trust)) is Reason.CERT_IN_USE
    revocation.revoke(ca, tmp_path / "old" / "node.pem", "key_compromise")
    trust.use_crl(revocation.make_crl(ca).read_bytes())
    records.check_renewal(signed, record, old.cert_der, trust)  # taken


def test_a_stale_crl_holds_the_queue_and_the_peer_surface_until_a_fresh_one(tmp_path, pki):
    """In-process node, injected clock: past next update + grace the peer surface is NOT_SERVING (the
    Mailbox is not), hops do not send, nothing expires; a fresh CRL brings it all back."""
    clock = FakeClock(time.time_ns() // 1_000_000)
    crl = revocation.make_crl(pki.ca, days=1, now=dt.datetime.fromtimestamp(clock.now(), dt.timezone.utc))
    handle = nodes.prepare_node(tmp_path, pki.ca, NodeSpec(D, "Huyện D", extra={
        "tls": {"crl": str(crl), "crl_grace": "1h"}}), {D: "127.0.0.1:0"})
    node = Node(load_config(handle.config), clock=clock)
    node.start()
    try:
        SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
        assert node.health.check() and not node.dispatcher.paused()
        clock.advance(86400 + 3601)
        assert not node.health.check()
        assert "past its next update" in node.health.problem
        statuses = {s: node.health.servicer.Check(health_pb2.HealthCheckRequest(service=s), None).status
                    for s in ("", "lienthong.v1.Exchange", "lienthong.v1.Mailbox")}
        assert statuses == {"": NOT_SERVING, "lienthong.v1.Exchange": NOT_SERVING, "lienthong.v1.Mailbox": SERVING}
        assert node.dispatcher.paused() and node.dispatcher.hop("000.00.00.H53").attempt().value == "not_due"
        fresh = revocation.make_crl(pki.ca, days=1, now=dt.datetime.fromtimestamp(clock.now(), dt.timezone.utc))
        crl.write_bytes(fresh.read_bytes())
        assert node.reload()  # SIGHUP at the root: tls.crl read again, taken, health follows at once
        assert node.health.problem is None and not node.dispatcher.paused()
        assert node.crl.number == 2
    finally:
        node.stop(grace=1)


def test_doctor_says_the_crl_is_stale_and_what_to_do(tmp_path, pki):
    from node.doctor import PROBLEM, diagnose
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2)
    crl = revocation.make_crl(pki.ca, days=1, now=past)
    handle = nodes.prepare_node(tmp_path, pki.ca, NodeSpec(D, "Huyện D", extra={
        "tls": {"crl": str(crl), "crl_grace": "1h"}}), {D: "127.0.0.1:0"})
    lines = [(lv, what, text) for lv, what, text in diagnose(str(handle.config)).lines if what == "tls.crl"]
    assert len(lines) == 1 and lines[0][0] == PROBLEM
    assert "past its next update" in lines[0][2] and "`lienthong ca crl`" in lines[0][2]
