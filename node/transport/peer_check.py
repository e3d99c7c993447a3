"""Client side of revocation: the certificate a next hop answers with is checked before we hand it anything.

gRPC Python does not show a client the server's certificate (nor lets it consult a CRL in the
handshake): the channel only checks the chain to our anchors and the agency code pinned in the
name. So before the first delivery to a hop, and again after every new CRL (the check is keyed by
the CRL number), `PeerCheck` opens one TLS handshake of its own to the same address, presenting
our certificate as the channel does, reads the certificate the peer answers with and asks the
trust store: a revoked one (or one for another code) is refused and nothing is handed over; the
hop backs off and its queue waits. An answer is remembered only while it was good.

What this cannot see: a channel that reconnects between two checks to a different server for the
same code (someone on the path holding that code's revoked key and passing our probe through to
the real node). Such a server still cannot give a receipt: every receipt is checked against the
trust store too (receipts.Verifier), so the batch does not count as delivered and is sent again.
"""
from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path
from typing import Callable

from ..errors import Rejected
from ..identity import certs
from ..identity.trust import TrustStore
from .interface import TransportError

CONNECT_TIMEOUT_S = 3.0


def peer_certificate(cert: Path, key: Path, address: str, timeout: float = CONNECT_TIMEOUT_S,
                     name: str | None = None) -> bytes:
    """The certificate (DER) a peer answers a TLS handshake with, presenting our own; `name`: the SNI name
    asked for (a host serving several agencies answers with that agency's certificate)."""
    host, port = address.rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the trust store checks chain, code and revocation, and says what is wrong
    ctx.load_cert_chain(str(cert), str(key))
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as sock:
        with ctx.wrap_socket(sock, server_hostname=name) as tls:
            der = tls.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError("the peer sent no certificate")
    return der


class PeerCheck:
    def __init__(self, trust: TrustStore, cert: Path, key: Path, crl_number: Callable[[], int]) -> None:
        self.trust, self.cert, self.key, self.crl_number = trust, Path(cert), Path(key), crl_number
        self._good: dict[tuple[str, str], int] = {}  # (code, address) -> CRL number it was good under
        self._lock = threading.Lock()

    def __call__(self, code: str, address: str) -> None:
        """Return if `code` at `address` answers with a certificate we trust now; TransportError otherwise."""
        number = self.crl_number()
        with self._lock:
            if self._good.get((code, address)) == number:
                return
        try:
            der = peer_certificate(self.cert, self.key, address, name=certs.tls_name(code))
        except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
            raise TransportError(f"no TLS answer from {code} at {address}: {e}") from None
        try:
            ident = self.trust.identify(der)
        except Rejected as r:
            raise TransportError(f"{code} at {address} answers with a certificate we do not trust "
                                 f"({r.public_text}); nothing handed over") from None
        if ident.code != code:
            raise TransportError(f"{address} answers as {ident.code}, not {code}; nothing handed over")
        with self._lock:
            if len(self._good) > 10_000:
                self._good.clear()
            self._good[(code, address)] = number
