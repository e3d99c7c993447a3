"""Certificate renewal: a new key and request for the same code, while the old key is kept to vouch for it.

A parent accepts a second certificate for a registered code only on a record that the
registered certificate's key signed too (`renewal_signature`, node.registry.records). So:

1. `lienthong renew --config node.yaml` makes `renew/node.key` (0600) and `renew/node.csr`
   next to `tls.key`; the running node is not touched.
2. The CA issues `renew/node.pem` (`lienthong ca sign --ca CA renew/node.csr`).
3. `lienthong renew --config node.yaml --install` checks the new pair (key matches, same code,
   chains to the trust anchors, valid now), keeps the current pair as `<tls.key>.previous` and
   `<tls.cert>.previous`, and puts the new pair in place (`--ca DIR` does 1-3 at once).
4. On its next start (or SIGHUP) the node registers with the new certificate, the record also
   signed by the previous key.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from ..config import Settings
from ..envelope import Signer
from ..errors import Rejected
from . import certs, keys
from .trust import TrustStore

RENEW_DIR = "renew"
PREVIOUS = ".previous"


class RenewalError(Exception):
    pass


@dataclass(frozen=True)
class Pending:
    key: Path
    csr: Path
    cert: Path


def pending(s: Settings) -> Pending:
    d = Path(s.tls.key).parent / RENEW_DIR
    return Pending(d / "node.key", d / "node.csr", d / "node.pem")


def previous_paths(s: Settings) -> tuple[Path, Path]:
    key, cert = Path(s.tls.key), Path(s.tls.cert)
    return key.with_name(key.name + PREVIOUS), cert.with_name(cert.name + PREVIOUS)


def start(s: Settings, force: bool = False) -> Pending:
    """Step 1: a new key and request for this node's code."""
    p = pending(s)
    if not force:
        for f in (p.key, p.cert):
            if f.exists():
                raise RenewalError(f"{f} exists: a renewal is already under way (finish it with --install, "
                                   "or pass --force to start over with a new key)")
    p.key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    p.cert.unlink(missing_ok=True)
    key = keys.generate_key()
    keys.write_private_key(p.key, key)
    p.csr.write_bytes(certs.make_csr(key, s.node.code, s.node.name).public_bytes(serialization.Encoding.PEM))
    return p


def install(s: Settings, now: dt.datetime | None = None) -> tuple[Path, Path]:
    """Step 3: the issued certificate and its key replace the current pair, which is kept as *.previous."""
    p = pending(s)
    for f in (p.key, p.cert):
        if not f.is_file():
            raise RenewalError(f"{f}: no such file (make the request with `lienthong renew`, "
                               f"have it signed into {p.cert} with `lienthong ca sign`)")
    try:
        new = Signer.from_files(p.key, p.cert)
    except ValueError as e:
        raise RenewalError(str(e)) from None
    if new.code != s.node.code:
        raise RenewalError(f"{p.cert} is for {new.code}, but node.code is {s.node.code}")
    trust = TrustStore.from_files(list(s.tls.trust_anchors))
    try:
        trust.identify(new.cert_der)
    except Rejected as r:
        raise RenewalError(f"{p.cert}: {r.public_detail} (tls.trust_anchors)") from None
    prev_key, prev_cert = previous_paths(s)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for f in (prev_key, prev_cert):  # an older retired pair is archived, never overwritten
        if f.exists():
            os.replace(f, f.with_name(f"{f.name}-{stamp}"))
    os.replace(s.tls.key, prev_key)
    os.replace(s.tls.cert, prev_cert)
    os.replace(p.key, s.tls.key)
    os.replace(p.cert, s.tls.cert)
    p.csr.unlink(missing_ok=True)
    return Path(s.tls.key), Path(s.tls.cert)


def previous_signer(s: Settings, current: Signer) -> Signer | None:
    """The retired identity that vouches for the current one on registration, if it is kept."""
    prev_key, prev_cert = previous_paths(s)
    if not (prev_key.is_file() and prev_cert.is_file()):
        return None
    try:
        prev = Signer.from_files(prev_key, prev_cert)
    except ValueError:
        return None
    if prev.code != current.code or prev.cert_der == current.cert_der:
        return None
    return prev
