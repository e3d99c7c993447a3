"""A registered child speaks only with the certificate it registered here (certificate pinning).

The CA may issue a second certificate for a code (a mistake, a stolen request, an insider at the
CA). Registration already keeps one certificate per code (CERT_IN_USE); without a pin, the second
one still connected to the parent as the agency and had its documents delivered, since a hand-over
and a relay mark were checked only against the CA. Here, for every code registered with this node:

- the certificate a child hands envelopes over with (its TLS client certificate), and
- the certificate of every mark of that code on an envelope (the sender's signature, a relay mark)

must be the one it registered, or the one that registration renewed (mail queued and marked before a
renewal still passes). A renewal (co-signed by the registered key) moves the pin; a registered
certificate that is revoked drops it, until the agency registers its new one. Anything else is
refused CERT_NOT_REGISTERED, which the sending node retries (a renewed child may hand over before
its new registration lands). Codes not registered here are pinned by the node they registered with.
"""
from __future__ import annotations

import hashlib
import threading
from typing import Iterable

from ..errors import Reason, Rejected
from ..identity.trust import TrustStore
from ..pb import registry_pb2 as rpb


def _digest(cert_der: bytes) -> bytes:
    return hashlib.sha256(cert_der).digest()


class Pins:
    """code -> the registered certificate and the digests accepted for it; rebuilt from the registry
    table whenever a child registers (node.registry.directory), read on every envelope."""

    def __init__(self, trust: TrustStore) -> None:
        self.trust = trust
        self._pins: dict[str, tuple[bytes, frozenset[bytes]]] = {}
        self._lock = threading.Lock()

    def load(self, children: Iterable[tuple[str, bytes, bytes | None]]) -> None:
        """(code, registered record bytes, previous certificate or None) per registered child."""
        pins = {}
        for code, record, previous in children:
            current = rpb.AgencyRecord.FromString(record).cert_der
            pins[code] = (current, frozenset(_digest(c) for c in (current, previous) if c))
        with self._lock:
            self._pins = pins

    def pin(self, code: str, record: bytes, previous: bytes | None) -> None:
        """One child's pin, from the registration just stored (a thousand registering children do not each
        re-read every record: node.registry.directory)."""
        current = rpb.AgencyRecord.FromString(record).cert_der
        with self._lock:
            self._pins[code] = (current, frozenset(_digest(c) for c in (current, previous) if c))

    def check(self, code: str, cert_der: bytes, what: str) -> None:
        with self._lock:
            pin = self._pins.get(code)
        if pin is None or _digest(cert_der) in pin[1]:
            return
        try:
            self.trust.identify(pin[0], check_validity=False)
        except Rejected as r:
            if r.reason is Reason.CERT_REVOKED:
                return  # the registered certificate speaks for nobody: no pin until the agency registers anew
        try:
            serial = f"serial {self.trust.identify(cert_der, check_validity=False).serial:x}"
        except Rejected:
            serial = "a certificate"
        raise Rejected(Reason.CERT_NOT_REGISTERED,
                       f"{what} by {code} is made with {serial}, not the certificate {code} registered here")
