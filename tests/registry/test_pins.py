"""A registered child is held to the certificate it registered (node.registry.pins): a renewal co-signed
by the registered key moves the pin (the renewed one still passes, for mail marked before), a revoked
registered certificate drops it, and the pin survives a restart (it is the registry table)."""
from __future__ import annotations

import datetime as dt

import pytest

from node.clock import FakeClock
from node.envelope import Signer
from node.errors import Reason, Rejected
from node.harness import nodes
from node.identity import certs, revocation
from node.identity.trust import TrustStore
from node.registry import records
from node.registry.directory import Directory
from node.store.database import Database

D, C1 = "000.00.35.H53", "000.23.35.H53"
FAKE_EPOCH = dt.datetime.fromtimestamp(FakeClock().now_ms() / 1000, dt.timezone.utc)


@pytest.fixture
def world(tmp_path, clock):
    ca = nodes.make_ca(tmp_path)

    def issue(name: str, code: str = C1) -> Signer:
        certs.init_node(tmp_path / name, code, f"agency {code}", ca, not_before=FAKE_EPOCH - dt.timedelta(days=1))
        return Signer.from_files(tmp_path / name / "node.key", tmp_path / name / "node.pem")

    trust = TrustStore.from_files([ca / "ca.pem"], clock)
    db = Database(tmp_path / "d.sqlite3")
    signers = {name: issue(name) for name in ("first", "second", "third")}
    district = issue("district", D)

    def directory() -> Directory:
        return Directory(db, district, trust, clock, name="district", configured_parents={}, parent=None,
                         parent_address=None, transport=None, heartbeat_s=10, stale_after_s=30,
                         cache_ttl_s=300)

    def revoke(name: str) -> None:
        revocation.revoke(ca, tmp_path / name / "node.pem", "key_compromise")
        trust.use_crl(revocation.make_crl(ca).read_bytes())

    yield directory, signers, revoke
    db.close()


def register(directory: Directory, signer: Signer, clock, previous: Signer | None = None) -> None:
    directory.register(records.make(signer, name="xã", level=3, parent=D, endpoint="127.0.0.1:9",
                                    now_ms=clock.now_ms(), previous=previous), peer=C1)


def passes(directory: Directory, signer: Signer) -> bool:
    try:
        directory.pins.check(C1, signer.cert_der, "the hand-over")
    except Rejected as r:
        assert r.reason is Reason.CERT_NOT_REGISTERED and not r.reason.permanent
        assert f"by {C1}" in r.detail and "registered here" in r.detail
        return False
    return True


def test_the_pin_follows_registration_renewal_and_revocation(world, clock):
    directory, s, revoke = world
    d = directory()
    assert passes(d, s["second"])  # nothing registered: nothing pinned here
    register(d, s["first"], clock)
    assert [passes(d, s[n]) for n in ("first", "second", "third")] == [True, False, False]

    register(d, s["second"], clock, previous=s["first"])  # a renewal co-signed by the registered key
    assert [passes(d, s[n]) for n in ("first", "second", "third")] == [True, True, False]
    again = directory()  # a restart: the pin is read back from the registry table
    assert [passes(again, s[n]) for n in ("first", "second", "third")] == [True, True, False]

    revoke("second")  # the registered certificate is revoked: the pin is dropped until the next registration
    assert passes(d, s["third"])
    register(d, s["third"], clock)  # no co-signature needed: the registered one is revoked
    assert [passes(d, s[n]) for n in ("first", "third")] == [False, True]  # the revoked one renewed nothing
