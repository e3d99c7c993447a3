"""Health's look at the key and certificate files (node/identity/on_disk.py): read again only when they, the
trust store or the date say the last answer may be stale, and every change a restart would refuse is still
noticed at the next check."""
from __future__ import annotations

import os
import shutil

import pytest

from node.clock import FakeClock
from node.config import load_config
from node.harness import nodes
from node.harness.nodes import NodeSpec
from node.identity import certs, revocation
from node.identity.on_disk import IdentityOnDisk
from node.identity.trust import TrustStore
from node.runtime import Node

A, B = "000.00.01.H53", "000.00.02.H53"
DAY_S = 86_400


@pytest.fixture
def agency(tmp_path):
    """Settings of a prepared node A (real key, certificate, CA), and the CA directory."""
    ca = nodes.make_ca(tmp_path)
    handle = nodes.prepare_node(tmp_path, ca, NodeSpec(A, "agency A"), {A: "127.0.0.1:1"})
    return load_config(handle.config), ca


def _watch(settings, clock):
    trust = TrustStore.from_files(list(settings.tls.trust_anchors), clock)
    return IdentityOnDisk(lambda: settings, lambda: trust, clock), trust


def test_unchanged_files_are_read_once(agency):
    settings, _ = agency
    watch, _ = _watch(settings, _now_clock())
    for _ in range(5):
        assert watch.problem() is None
    assert watch.loads == 1


def test_a_key_made_readable_by_others_is_noticed_and_so_is_its_fix(agency):
    settings, _ = agency
    watch, _ = _watch(settings, _now_clock())
    assert watch.problem() is None
    settings.tls.key.chmod(0o644)  # a chmod changes the mode and ctime only
    assert "tls.key" in watch.problem() and "chmod 600" in watch.problem()
    settings.tls.key.chmod(0o600)
    assert watch.problem() is None


def test_a_certificate_replaced_by_one_for_another_key_is_noticed(agency, tmp_path):
    settings, ca = agency
    watch, _ = _watch(settings, _now_clock())
    assert watch.problem() is None
    certs.init_node(tmp_path / "other", A, "agency A", ca)  # same code, another key
    mtime = settings.tls.cert.stat().st_mtime_ns
    shutil.copyfile(tmp_path / "other" / "node.pem", settings.tls.cert)
    os.utime(settings.tls.cert, ns=(mtime, mtime))  # even with the old mtime (a copy keeping times)
    assert "does not match" in watch.problem()


def test_a_crl_revoking_the_certificate_on_disk_is_noticed(agency):
    settings, ca = agency
    watch, trust = _watch(settings, _now_clock())
    assert watch.problem() is None
    revocation.revoke(ca, settings.tls.cert, "key_compromise")
    trust.use_crl(revocation.make_crl(ca).read_bytes())
    assert "tls.cert" in watch.problem()


def test_the_certificate_running_out_is_noticed_without_any_file_changing(agency):
    settings, _ = agency
    clock = _now_clock()
    watch, _ = _watch(settings, clock)
    assert watch.problem() is None
    clock.advance(826 * DAY_S)  # init_node issues for 825 days
    assert "expired" in watch.problem()


def test_a_node_health_notices_a_changed_key_file(tmp_path):
    ca = nodes.make_ca(tmp_path)
    handle = nodes.prepare_node(tmp_path, ca, NodeSpec(A, "agency A"), {A: "127.0.0.1:1"})
    settings = load_config(handle.config)
    node = Node(settings)
    try:
        assert node.health.check() and node.health.check(), node.health.problem
        assert node.identity_on_disk.loads == 1  # unchanged files: read once
        settings.tls.key.chmod(0o644)
        assert not node.health.check() and node.health.problem.startswith("tls.key:")
        settings.tls.key.chmod(0o600)
        assert node.health.check(), node.health.problem
        shutil.copyfile(handle.dir / "keys" / "seal.key", settings.tls.key)  # a key, but not the certificate's
        assert not node.health.check() and "does not match" in node.health.problem
    finally:
        node.db.close()
        node.data_dir.release()


def _now_clock() -> FakeClock:
    import time
    return FakeClock(time.time_ns() // 1_000_000)
