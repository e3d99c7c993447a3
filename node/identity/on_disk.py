"""Whether the key and certificate files are what a restart would load, re-read only when something changed.

Health asks every HEALTH_SECONDS. Reading, parsing and verifying the key and certificate each time
costs most of a health check, and a host with a thousand agencies asks a thousand times as often.
A passing answer is kept while nothing it depends on changed:

- the files (key, certificate, and the paths the settings name): inode, size, mode, mtime and
  ctime (a chmod changes only the ctime and mode; a replaced file its inode);
- what the trust store trusts (anchors, CRL: `TrustStore.generation`), so a revoked certificate
  on disk is noticed when the CRL comes;
- the clock: never past the certificate's end of validity.

A failing answer is never kept: a problem is looked at again at every check, so its fix is seen
at the next one.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from ..clock import Clock
from ..config import ConfigError, Settings
from .trust import TrustStore


def _stat(path: Path) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_dev, st.st_size, st.st_mode, st.st_mtime_ns, st.st_ctime_ns


class IdentityOnDisk:
    """`settings` and `trust` are read at each check: a reload may replace either."""

    def __init__(self, settings: Callable[[], Settings], trust: Callable[[], TrustStore], clock: Clock) -> None:
        self.settings, self.trust, self.clock = settings, trust, clock
        self._passed: tuple | None = None  # what the last passing load depended on
        self._until_ms = 0  # and until when at most (the certificate's end of validity)
        self.loads = 0  # how many times the files were read (for tests and benchmarks)

    def _state(self, s: Settings, trust: TrustStore) -> tuple:
        return (s.tls.key, s.tls.cert, s.node.code, _stat(Path(s.tls.key)), _stat(Path(s.tls.cert)), id(trust),
                trust.generation)

    def problem(self) -> str | None:
        """What a restart would refuse in the key and certificate files, or None."""
        from .. import preflight  # preflight imports the identity package: not at import time
        s, trust = self.settings(), self.trust()
        state = self._state(s, trust)
        if state == self._passed and self.clock.now_ms() < self._until_ms:
            return None
        self._passed = None
        self.loads += 1
        try:
            signer = preflight.load_identity(s, trust, self.clock)
        except ConfigError as e:
            return f"{e.path}: {e.message}"
        except OSError as e:
            return f"tls files: {e.strerror or e}: {e.filename or ''}"
        self._passed, self._until_ms = state, trust.identify(signer.cert_der).not_after_ms
        return None
