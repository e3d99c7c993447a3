"""Real PKI for the identity and envelope tests: a CA, a rival CA and node signers.

Node certificates are anchored at FakeClock's epoch (2026-01-01), not at the wall
clock: certificates issued "now" are not yet valid at a FakeClock() that starts
before now. Import every fixture a test module uses (pytest resolves fixture
dependencies by name in the requesting module).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from node.clock import FakeClock
from node.envelope import Signer
from node.identity import certs, keys
from node.identity.trust import TrustStore

T0_MS = FakeClock().now_ms()
T0 = dt.datetime.fromtimestamp(T0_MS / 1000, dt.timezone.utc)
DAY = dt.timedelta(days=1)
DAY_MS = 86_400_000

SENDER = "000.00.35.H53"
RELAY = "000.00.00.H53"
RECEIVER = "000.00.12.G22"


@dataclass(frozen=True)
class Authority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def issue(
        self, code: str, *, not_before: dt.datetime = T0 - DAY, days: int = 365
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = keys.generate_key()
        csr = certs.make_csr(key, code, f"agency {code}")
        return key, certs.sign_csr(csr, self.key, self.cert, days=days, not_before=not_before)

    def signer(self, code: str, **validity) -> Signer:
        key, cert = self.issue(code, **validity)
        return Signer(code, key, certs.der(cert))


@pytest.fixture(scope="module")
def ca() -> Authority:
    return Authority(*certs.make_ca())


@pytest.fixture(scope="module")
def rogue_ca() -> Authority:
    # Same default name as `ca`: only the signature tells the two apart.
    return Authority(*certs.make_ca())


@pytest.fixture(scope="module")
def sender(ca) -> Signer:
    return ca.signer(SENDER)


@pytest.fixture(scope="module")
def relay(ca) -> Signer:
    return ca.signer(RELAY)


@pytest.fixture(scope="module")
def receiver(ca) -> Signer:
    return ca.signer(RECEIVER)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def trust(ca, clock) -> TrustStore:
    return TrustStore([ca.cert], clock)
