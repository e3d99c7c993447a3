"""Shared fixtures: a real test CA, real node identities and a clock that tests move."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from node.clock import FakeClock
from node.envelope import Signer
from node.harness import nodes
from node.identity import certs
from node.identity.trust import TrustStore


FAKE_EPOCH = dt.datetime.fromtimestamp(FakeClock().now_ms() / 1000, dt.timezone.utc)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """A CA and a cache of node identities issued by it (issued once per session)."""
    root = tmp_path_factory.mktemp("pki")
    ca_dir = nodes.make_ca(root)

    class Pki:
        ca = ca_dir
        _signers: dict[str, Signer] = {}

        def node_dir(self, code: str) -> Path:
            d = root / code / "keys"
            if not (d / "node.pem").exists():
                # valid from before the FakeClock's start, so tests can move time freely
                certs.init_node(d, code, f"agency {code}", ca_dir, not_before=FAKE_EPOCH - dt.timedelta(days=1))
            return d

        def signer(self, code: str) -> Signer:
            if code not in self._signers:
                d = self.node_dir(code)
                self._signers[code] = Signer.from_files(d / "node.key", d / "node.pem")
            return self._signers[code]

        def trust(self, clock) -> TrustStore:
            return TrustStore.from_files([ca_dir / "ca.pem"], clock)

    return Pki()


@pytest.fixture
def clock():
    return FakeClock()
