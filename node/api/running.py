"""Admin.Running: what a running node holds, for `lienthong doctor` to hold against the files on disk.

The config is the one the node runs on (after reloads: the keys it took live, the old values of the
keys only a restart takes), flattened as node/config_changes.py compares it; the API token only as a
digest. The CRL and certificate are the ones in use, not the ones the files would give."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509

from .. import config_changes
from ..pb import admin_pb2 as apb
from .. import version as _version

if TYPE_CHECKING:
    from ..runtime import Node


@dataclass
class LastReload:
    time_ms: int = 0
    outcome: str = ""  # "reloaded", "reloaded; restart to apply: KEYS", "refused: WHY"


def running(node: "Node") -> apb.RunningResponse:
    s = node.settings
    out = apb.RunningResponse(config_file=str(s.source or ""), version=_version(), started_ms=node.started_ms,
                              last_reload_ms=node.last_reload.time_ms, last_reload=node.last_reload.outcome)
    out.config.update(config_changes.flat(s))
    crl = node.crl.current
    if crl is not None:
        out.crl.CopyFrom(apb.CrlInUse(held=True, number=crl.number, next_update_ms=crl.next_update_ms,
                                      revoked=len(crl.serials), source=node.crl.source, stale=node.crl.stale))
    cert = x509.load_der_x509_certificate(node.signer.cert_der)
    out.certificate.CopyFrom(apb.OwnCertificate(
        code=node.signer.code, serial=f"{cert.serial_number:x}", not_after_ms=node.cert_not_after_ms,
        revoked=crl is not None and cert.serial_number in crl.serials))
    return out
