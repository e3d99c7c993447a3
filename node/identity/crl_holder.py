"""The CRL this node holds: taken only if a trust anchor signed it and it is newer, kept on disk, passed on.

CRLs travel down the tree: the root reads its from `tls.crl` (start-up, SIGHUP), every other
node gets its parent's (a push when the parent takes a new one, or the parent's answer to a
registration or a heartbeat showing an older number). The CA signs the list, so a relay needs
no trust of its own and can forge nothing: each node checks the signature against its own
anchors and the CRL number against the one it holds (an older list would bring a revoked
certificate back), keeps it in its data directory (0600, written atomically, read again at
start-up) and tells `on_new` (push to the children, wake the queues).

A CRL past its next update plus `tls.crl_grace` is stale: the node can no longer tell whether a
certificate was revoked since (`stale_problem`).
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path
from typing import Callable

from .. import events
from ..clock import Clock
from ..errors import Reason, Rejected, too_large
from ..events import EventSink, NoEvents
from ..files import write_atomically
from . import revocation
from .trust import TrustStore

log = logging.getLogger(__name__)

FILE = "crl.der"


class CrlHolder:
    def __init__(self, trust: TrustStore, data_dir: Path, clock: Clock, grace_s: float,
                 events_: EventSink = NoEvents()) -> None:
        self.trust, self.path, self.clock = trust, Path(data_dir) / FILE, clock
        self.grace_ms = int(grace_s * 1000)
        self.events = events_
        self.on_new: list[Callable[[revocation.Revoked], None]] = []  # after a newer CRL is in use and on disk
        self._lock = threading.Lock()  # one offer at a time: check, write, adopt
        self.source = "tls.crl" if trust.revoked is not None else ""  # where the list in use came from

    @property
    def current(self) -> revocation.Revoked | None:
        return self.trust.revoked

    @property
    def number(self) -> int:
        crl = self.trust.revoked
        return crl.number if crl is not None else 0

    def load_stored(self) -> None:
        """At start-up: the list this node kept last time, if still signed by an anchor (else said, and ignored)."""
        if not self.path.exists():
            return
        try:
            crl = revocation.load(self.path.read_bytes(), self.trust.anchors)
        except (ValueError, OSError) as e:
            log.warning("ignoring the CRL kept in %s: %s", self.path, e)
            return
        held = self.trust.revoked
        if self.trust.adopt(crl) and (held is None or crl.number > held.number):
            self.source = f"kept ({FILE})"

    def offer(self, data: bytes, source: str) -> bool:
        """Take `data` if it is a CRL an anchor signed with a higher number than ours: True if taken,
        False if it is the very list we hold; Rejected (nothing changed) otherwise."""
        if len(data) > revocation.MAX_CRL_BYTES:
            raise too_large("CRL", len(data), revocation.MAX_CRL_BYTES)
        with self._lock:
            held = self.trust.revoked
            if held is not None and data == held.der:
                return False
            try:
                crl = revocation.load(data, self.trust.anchors)
            except revocation.UntrustedCrl:
                raise Rejected(Reason.UNTRUSTED_CERT, "CRL is not signed by any trust anchor of this node") from None
            except revocation.NotACrl as e:
                raise Rejected(Reason.MALFORMED, str(e)) from None
            held = self.trust.revoked
            if held is not None and crl.der == held.der:
                return False  # the same list (it came as PEM)
            if held is not None and crl.number <= held.number:
                raise Rejected(Reason.CRL_OUTDATED, f"CRL number {crl.number} is not newer than {held.number}",
                               metadata={"held": str(held.number)})
            write_atomically(self.path, crl.der, 0o600)  # on disk first: a restart never goes back to an older list
            self.trust.adopt(crl)
            self.source = source
        log.info("CRL number %d from %s in use (%d revoked, next update %s)", crl.number, source,
                 len(crl.serials), _when(crl.next_update_ms))
        for fn in self.on_new:
            try:
                fn(crl)
            except Exception:  # noqa: BLE001 - the list is in use; a failing follower must not undo that
                log.exception("after taking CRL number %d", crl.number)
        # last: a watcher that sees the event finds health and the queues already following the new list
        self.events.emit(events.CRL, peer=source[:64], crl_number=crl.number, time_ms=self.clock.now_ms())
        return True

    def stale_problem(self) -> str | None:
        """Why the CRL in use can no longer be relied on (None: fresh, or no CRL in use at all)."""
        crl = self.trust.revoked
        if crl is None or not crl.next_update_ms:
            return None
        if self.clock.now_ms() <= crl.next_update_ms + self.grace_ms:
            return None
        return (f"CRL number {crl.number} is past its next update ({_when(crl.next_update_ms)}) plus "
                f"tls.crl_grace ({self.grace_ms // 1000}s): peers are refused and the queues wait until a fresh "
                f"one arrives (at the root: `lienthong ca crl`, copy it to tls.crl, SIGHUP; elsewhere it comes "
                f"from the parent)")

    def describe(self) -> str:
        """The CRL in use, in words for the log (start-up names it, so an admin sees which list a node holds)."""
        crl = self.trust.revoked
        if crl is None:
            return "no CRL in use (tls.crl unset and none taken from the parent yet)"
        return (f"CRL number {crl.number} in use ({len(crl.serials)} revoked, next update {_when(crl.next_update_ms)}"
                f"{', STALE' if self.stale else ''})")

    @property
    def stale(self) -> bool:
        return self.stale_problem() is not None


def _when(ms: int) -> str:
    if not ms:
        return "none"
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
