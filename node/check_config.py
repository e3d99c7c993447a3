"""`lienthong check-config`: everything `run` checks before it binds, every error in one run.

`run` stops at the first problem (it must not start); an admin fixing a config wants the whole
list at once: pydantic reports every schema error of the file, and each check of the files the
config names (keys, certificate, CRL, seal keys, parent, data directory) runs on its own, so one
failing does not hide the next. What needs the network (does the parent answer?) is not checked
unless asked (`--reach`), and the output says so."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .clock import SYSTEM
from .config import ConfigError, Settings
from . import preflight

REACH_TIMEOUT_S = 3.0  # the TLS handshake and the health check each (node/doctor.py CONNECT_TIMEOUT_S)


@dataclass
class Checked:
    settings: Settings | None = None
    errors: list[ConfigError] = field(default_factory=list)
    code: str = ""  # of the certificate, when it loads
    agencies: list[str] = field(default_factory=list)  # a host file's agencies (empty: a node.yaml)


def check(config: str) -> Checked:
    """Load `config` and check the files it names; every error found, in the order to fix them. A host
    file (docs/hosting.md): the host file and every agency file, each agency's files checked in turn."""
    from .host.config import load_host
    out = Checked()
    try:
        host = load_host(config)
    except ConfigError as e:
        out.errors = [e, *e.more]
        return out
    out.agencies = [a.node.code for a in host.agencies] if host.several else []
    for s in host.agencies:
        _check_agency(out, s)
    out.settings = host.agencies[0]
    return out


def _check_agency(out: Checked, s: Settings) -> None:
    out.settings = s
    source = str(s.source)
    trust = _step(out, lambda: _trust(s, source))
    if trust is not None:
        signer = _step(out, lambda: preflight.load_identity(s, trust, SYSTEM))
        out.code = signer.code if signer is not None else ""
    if s.seal_key_path.exists():  # a missing one is made by `run`; check-config writes nothing
        _step(out, lambda: preflight.load_seal_key(s, create=False))
    _step(out, lambda: preflight.load_previous_seal_keys(s))
    _step(out, lambda: preflight.check_parent(s))
    _step(out, lambda: _data_dir(s, source))


def _step(out: Checked, check_one):
    try:
        return check_one()
    except ConfigError as e:
        out.errors.append(e)
    except OSError as e:  # a file that vanished or cannot be read between the schema check and this one
        out.errors.append(ConfigError(f"{e.strerror or e}: {e.filename or ''}", file=str(out.settings.source)))
    return None


def _trust(s: Settings, source: str):
    from .identity.trust import TrustStore
    try:
        trust = TrustStore.from_files(list(s.tls.trust_anchors))
    except ValueError as e:
        raise ConfigError(str(e), path="tls.trust_anchors", expected="PEM CA certificates", file=source) from None
    if s.tls.crl is not None:  # as Node does: a CRL no anchor signed stops start-up
        try:
            trust.use_crl(Path(s.tls.crl).read_bytes())
        except ValueError as e:
            raise ConfigError(f"{s.tls.crl}: {e}", path="tls.crl", expected="a CRL signed by a trust anchor",
                              file=source) from None
    return trust


def _data_dir(s: Settings, source: str) -> None:
    data = Path(s.node.data_dir)
    probe = data if data.exists() else next(p for p in data.parents if p.exists())
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot {'write in' if probe == data else 'create'} {data} (permission denied)",
                          path="node.data_dir", expected="a directory this user can create and write", file=source)


def parent_of(s: Settings) -> tuple[str, str] | None:
    """The parent this node registers with, and its address (None at the top of a tree)."""
    from .runtime import Node
    code = Node._parent_code(s)
    address = s.peer_address(code) if code else None
    return (code, address) if code and address else None


def reach_parent(s: Settings) -> tuple[bool, str]:
    """Dial the parent as the node would (mutual TLS pinned to its code, then gRPC health), each step
    bounded by REACH_TIMEOUT_S: (answers SERVING, what was seen)."""
    from . import doctor
    parent = parent_of(s)
    if parent is None:
        return True, "no parent to reach (the top of its tree)"
    report = doctor.Report()
    doctor.check_peer(s, report, f"parent {parent[0]}", *parent, timeout=REACH_TIMEOUT_S)
    [(level, what, detail)] = report.lines
    return level == doctor.OK, f"{what}: {detail}"
