"""`lienthong doctor`: check a node's config, files, certificate, the running node and every peer,
and print what to fix. Exit 0 when nothing is wrong (warnings allowed), 1 when something is.

With the node running, it also asks it what it holds (Admin.Running) and holds that against the
files: the config it runs on against node.yaml on disk (the keys that differ, and whether SIGHUP or
only a restart applies them), the CRL in use (and a newer one on disk not yet taken), its own
certificate (revoked? the one on disk not yet in use?).

Each peer is checked for reachability *and identity*: a TLS handshake with this node's own
certificate shows which certificate the peer answers with (a peer address that reaches
another agency is named as such), then the gRPC health check runs over mutual TLS pinned to
the code we expect, exactly as deliveries connect; a peer refusing us with CERT_REVOKED is named as
refusing our revoked certificate.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import ssl
import stat
from dataclasses import dataclass, field
from typing import Callable
from pathlib import Path

import grpc
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .clock import SYSTEM
from .config import ConfigError, Settings
from .errors import Reason, Rejected
from .identity import certs, keys
from .identity.trust import TrustStore
from .terminal import shown
from . import preflight

EXPIRY_WARNING_DAYS = 30
CONNECT_TIMEOUT_S = 3.0

OK, WARN, PROBLEM = "ok", "warning", "PROBLEM"


_KEY = re.compile(r"[a-z_]+(\[\d+\])?(\.[a-z_]+(\[\d+\])?)*")  # a config key path (node.data_dir, peers[0])


@dataclass
class Report:
    lines: list[tuple[str, str, str]] = field(default_factory=list)  # (level, what, detail / what to fix)
    # how a config key is found in the file it is written in (`agencies[i].KEY` for an agency inline in the
    # host file: node.host.config.HostConfig.key_name); applied to a line's first word when it is a key
    key_name: Callable[[str], str] = lambda key: key

    def add(self, level: str, what: str, detail: str) -> None:
        first, _, rest = what.partition(" ")
        if _KEY.fullmatch(first):
            what = self.key_name(first) + (f" {rest}" if rest else "")
        self.lines.append((level, what, detail))

    @property
    def problems(self) -> int:
        return sum(1 for lv, _, _ in self.lines if lv == PROBLEM)

    @property
    def warnings(self) -> int:
        return sum(1 for lv, _, _ in self.lines if lv == WARN)

    def render(self) -> str:
        out = [f"{lv:8} {shown(what)}: {shown(detail)}" for lv, what, detail in self.lines]  # peers' words too
        if self.problems:
            out.append(f"{self.problems} problem(s) to fix, {self.warnings} warning(s)")
        else:
            out.append("healthy" + (f", {self.warnings} warning(s)" if self.warnings else ": nothing to fix"))
        return "\n".join(out)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _days_left(cert: x509.Certificate) -> float:
    return (cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc)).total_seconds() / 86400


def diagnose(config: str, agency: str | None = None) -> Report:
    """`agency`: on a host serving several, the one to diagnose (default: the only one)."""
    r = Report()
    try:
        from .host.config import load_host
        host = load_host(config)  # a plain node.yaml too: one agency (as settings_for reads it)
        s = host.agency(agency)
    except ConfigError as e:
        r.add(PROBLEM, "config", f"{e} (expected {e.expected})" if e.expected else str(e))
        return r
    r.key_name = lambda key: host.key_name(s.node.code, key)
    r.add(OK, "config", f"{config} loads: node {s.node.code} ({s.node.name})")
    _files(s, r)
    trust = _identity(s, r)
    on_disk = _crl(s, r, trust) if trust is not None else None
    _running(s, r, on_disk)
    if trust is not None:
        for i, peer in enumerate(s.peers):
            _peer(s, r, i, peer.code, peer.address)
    return r


def _files(s: Settings, r: Report) -> None:
    src = Path(s.source) if s.source else None
    if src is not None and s.api.token_file is None and _mode(src) & 0o077:
        r.add(WARN, "config", f"{src} holds api.token and others may read it (mode {_mode(src):04o}): "
                              f"`chmod 600 {src}`, or move the token to api.token_file")
    files = [("api.token_file", s.api.token_file)] + [(f"api.tokens[{i}].token_file", c.token_file)
                                                      for i, c in enumerate(s.api.tokens)]
    for key, path in files:
        if path is not None and _mode(path) & 0o077:
            r.add(PROBLEM, key, f"{path} is readable by others (mode {_mode(path):04o}): `chmod 600 {path}`")
    data = Path(s.node.data_dir)
    if not data.exists():
        r.add(WARN, "node.data_dir", f"{data} does not exist yet (the node makes it on its first start)")
    else:
        if _mode(data) & 0o077:
            r.add(PROBLEM, "node.data_dir", f"{data} is open to others (mode {_mode(data):04o}): `chmod 700 {data}`")
        if not os.access(data, os.W_OK | os.X_OK):
            r.add(PROBLEM, "node.data_dir", f"cannot write in {data}: fix its owner (the node's user)")
        mailbox = data / preflight.MAILBOX_FILE
        if mailbox.exists() and _mode(mailbox) & 0o077:
            r.add(PROBLEM, "node.data_dir", f"{mailbox} is readable by others (mode {_mode(mailbox):04o}): "
                                            f"`chmod 600 {mailbox}`")
        if not any(lv == PROBLEM and what == r.key_name("node.data_dir") for lv, what, _ in r.lines):
            r.add(OK, "node.data_dir", f"{data} (mode {_mode(data):04o})")


def _identity(s: Settings, r: Report) -> TrustStore | None:
    try:
        trust = TrustStore.from_files(list(s.tls.trust_anchors))
    except (ValueError, OSError) as e:
        r.add(PROBLEM, "tls.trust_anchors", f"{e}: give the CA certificates (PEM) peers' certificates chain to")
        return None
    for anchor in s.tls.trust_anchors:
        try:
            ca = x509.load_pem_x509_certificate(Path(anchor).read_bytes())
        except ValueError:
            continue
        left = _days_left(ca)
        if left < EXPIRY_WARNING_DAYS:
            r.add(WARN if left > 0 else PROBLEM, "tls.trust_anchors",
                  f"{anchor} {'expires in %.0f days' % left if left > 0 else 'has expired'}: get the CA's new certificate")
    try:
        signer = preflight.load_identity(s, trust, SYSTEM)
    except ConfigError as e:
        r.add(PROBLEM, e.path, e.message)
        try:  # peers can still be checked if the pair loads at all (e.g. a key that is only too open)
            keys.load_private_key(Path(s.tls.key))
            certs.load_cert(Path(s.tls.cert))
        except (ValueError, TypeError, OSError):
            return None
        return trust
    cert = x509.load_der_x509_certificate(signer.cert_der)
    left = _days_left(cert)
    until = cert.not_valid_after_utc.strftime("%Y-%m-%d")
    if left < EXPIRY_WARNING_DAYS:
        r.add(WARN, "tls.cert", f"{s.tls.cert} expires on {until}, in {left:.0f} days: renew it now "
                                f"(`lienthong renew --config ...`, then SIGHUP the node)")
    else:
        r.add(OK, "tls.cert", f"{s.tls.cert} for {signer.code}, valid until {until} ({left:.0f} days left)")
    r.add(OK, "tls.key", f"{s.tls.key} (mode {_mode(Path(s.tls.key)):04o}) matches the certificate")
    return trust


def _crl(s: Settings, r: Report, trust: TrustStore):
    """The CRL the node would hold (the newer of tls.crl and the one it kept from its parent), and whether
    it is past its next update plus tls.crl_grace: then the node refuses peers and holds its queue; and
    whether it revokes our own certificate. Returns it (None: no CRL on disk)."""
    from .identity import crl_holder, revocation
    held, source = None, ""
    for path in [p for p in (s.tls.crl, Path(s.node.data_dir) / crl_holder.FILE) if p is not None]:
        try:
            crl = revocation.load(Path(path).read_bytes(), trust.anchors)
        except FileNotFoundError:
            continue
        except (ValueError, OSError) as e:
            r.add(PROBLEM if path == s.tls.crl else WARN, "tls.crl", f"{path}: {e}")
            continue
        if held is None or crl.number > held.number:
            held, source = crl, str(path)
    if held is None:
        return None
    try:
        own = certs.load_cert(Path(s.tls.cert)).serial_number
    except (ValueError, OSError):
        own = None
    if own in held.serials:
        r.add(PROBLEM, "tls.cert", f"{s.tls.cert} (serial {own:x}) is REVOKED on CRL number {held.number} "
                                   f"(from {source}): every peer refuses this node (CERT_REVOKED). Get a new "
                                   "certificate (`lienthong renew`), then SIGHUP the node")
    now_ms = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000)
    until = dt.datetime.fromtimestamp(held.next_update_ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    what = f"on disk: CRL number {held.number} ({len(held.serials)} revoked, from {source})"
    if held.next_update_ms and now_ms > held.next_update_ms + s.tls.crl_grace * 1000:
        r.add(PROBLEM, "tls.crl", f"{what} is past its next update ({until}) plus tls.crl_grace: the node refuses "
                                  "peers' envelopes (CRL_STALE) and holds its queue. At the root: `lienthong ca crl`, "
                                  "copy ca.crl to tls.crl, SIGHUP; elsewhere: the parent passes it down (is the "
                                  "parent link up, does the parent hold a fresh one?)")
    elif held.next_update_ms and now_ms > held.next_update_ms:
        r.add(WARN, "tls.crl", f"{what} is past its next update ({until}), within tls.crl_grace: publish a fresh "
                               "one at the root now")
    else:
        r.add(OK, "tls.crl", f"{what}, next update {until}")
    return held


def _running(s: Settings, r: Report, on_disk=None) -> None:
    from .client import MailboxClient, api_address
    address = api_address(s)
    info = Path(s.node.data_dir) / "runtime.json"
    pid = json.loads(info.read_text()).get("pid") if info.exists() else None
    client = MailboxClient(address, s.api.token, timeout=CONNECT_TIMEOUT_S)
    try:
        try:
            resp = health_pb2_grpc.HealthStub(client.channel).Check(health_pb2.HealthCheckRequest(),
                                                                    timeout=CONNECT_TIMEOUT_S)
        except grpc.RpcError as e:
            r.add(PROBLEM, "node", f"no node answers on its local API at {address} ({e.code().name}): start it "
                                   "(`systemctl start lienthong`, or `lienthong run`), and see its log if it stops")
            return
        if resp.status == health_pb2.HealthCheckResponse.SERVING:
            r.add(OK, "node", f"running (pid {pid}), health SERVING")
        else:
            r.add(PROBLEM, "node", f"running (pid {pid}) but NOT_SERVING: its log says why "
                                   "(`journalctl -u lienthong | grep health`)")
        try:
            held = client.admin.running()
        except grpc.RpcError as e:
            r.add(WARN, "node", f"cannot ask it what it holds (Admin.Running: {e.code().name}): an older version, "
                                "or another token")
            return
    finally:
        client.close()
    _held(s, r, held, on_disk)


def _held(s: Settings, r: Report, held, on_disk) -> None:
    """What the running node holds (Admin.Running) against the files: the config, the CRL, the certificate."""
    from .config_changes import changed, flat, is_live
    source = Path(s.source) if s.source else None
    if held.config_file and source is not None and Path(held.config_file) != source.resolve():
        r.add(WARN, "node config", f"the node runs on {held.config_file}, not {source}: compared with {source} below")
    diff = changed(dict(held.config), flat(s))
    live = [k for k in diff if is_live(k)]
    fixed = [k for k in diff if not is_live(k)]
    if live:
        r.add(WARN, "node config", f"{source} differs from what the node runs on in {', '.join(live)}: "
                                   "SIGHUP applies them (`systemctl reload lienthong`)")
    if fixed:
        r.add(WARN, "node config", f"{source} differs from what the node runs on in {', '.join(fixed)}: only a "
                                   "restart applies them (`systemctl restart lienthong`)")
    if not diff:
        r.add(OK, "node config", f"the node runs on {source} as it is on disk")
    if held.last_reload.startswith(("refused", "failed")):
        r.add(WARN, "node config", f"the last SIGHUP was {held.last_reload} (the node kept what it had; its log "
                                   "says more)")
    crl = held.crl
    if crl.held:
        until = dt.datetime.fromtimestamp(crl.next_update_ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        what = f"CRL number {crl.number} ({crl.revoked} revoked, from {crl.source}), next update {until}"
        if crl.stale:
            r.add(PROBLEM, "node crl", f"in use: {what}, past it plus tls.crl_grace: the node refuses peers and "
                                       "holds its queue until a fresh one arrives")
        else:
            r.add(OK, "node crl", f"in use: {what}")
    else:
        r.add(OK, "node crl", "none in use (no tls.crl, none passed down by the parent)")
    if on_disk is not None and on_disk.number > (crl.number if crl.held else -1):
        r.add(WARN, "node crl", f"a newer CRL is on disk (number {on_disk.number}) than the node uses: SIGHUP "
                                "puts it in use (`systemctl reload lienthong`)")
    cert = held.certificate
    if cert.revoked:
        r.add(PROBLEM, "node certificate", f"serial {cert.serial} ({cert.code}) is REVOKED on the CRL the node "
                                           "holds: every peer refuses it (CERT_REVOKED). Get a new certificate "
                                           "(`lienthong renew`), then SIGHUP the node")
    try:
        on_file = f"{certs.load_cert(Path(s.tls.cert)).serial_number:x}"
    except (ValueError, OSError):
        on_file = None
    if on_file is not None and on_file != cert.serial:
        r.add(WARN, "node certificate", f"in use: serial {cert.serial}; {s.tls.cert} holds serial {on_file}: SIGHUP "
                                        "puts it in use (`systemctl reload lienthong`)")
    elif not cert.revoked:
        r.add(OK, "node certificate", f"in use: serial {cert.serial} ({cert.code}), not revoked")


def peer_certificate(s: Settings, address: str, timeout: float = CONNECT_TIMEOUT_S) -> bytes:
    """The certificate a peer answers with, from a TLS handshake presenting our own (DER)."""
    from .transport.peer_check import peer_certificate as answered
    return answered(Path(s.tls.cert), Path(s.tls.key), address, timeout)


def _peer(s: Settings, r: Report, i: int, code: str, address: str) -> None:
    check_peer(s, r, f"peers[{i}] {code}", code, address, fix=r.key_name(f"peers[{i}].address"))


def check_peer(s: Settings, r: Report, what: str, code: str, address: str, *, fix: str = "its address in peers",
               timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Reach `code` at `address` as deliveries do, and say on one line of `r` what answers (each step
    bounded by `timeout`)."""
    from .transport.grpc_peers import GrpcTransport, TlsMaterial
    from .transport.interface import Peer
    if s.tls.insecure_plaintext:
        tls = TlsMaterial(b"", b"", b"", insecure=True)
    else:
        try:
            der = peer_certificate(s, address, timeout)
        except (ConnectionRefusedError, socket.timeout, TimeoutError, socket.gaierror, OSError) as e:
            if isinstance(e, ssl.SSLError):
                r.add(PROBLEM, what, f"{address} refused the TLS handshake ({e.reason or e}): does its "
                                     "tls.trust_anchors hold our CA?")
            else:
                r.add(PROBLEM, what, f"nothing answers at {address} ({e.strerror or e}): is the node running, "
                                     f"is the address right ({fix}), does a firewall let it through?")
            return
        cert = x509.load_der_x509_certificate(der)
        got = certs.agency_code(cert)
        try:
            TrustStore.from_files(list(s.tls.trust_anchors)).identify(der)
        except Rejected as e:
            r.add(PROBLEM, what, f"{address} answers with a certificate for {got or 'no agency code'} that is not "
                                 f"trusted here ({e.public_detail}): check its CA against tls.trust_anchors")
            return
        if got != code:
            name = cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
            who = f"{got} ({name[0].value})" if name else str(got)
            r.add(PROBLEM, what, f"{address} answers with the certificate of another agency, {who}, not {code}: "
                                 f"fix {fix} (or that machine's config)")
            return
        tls = TlsMaterial(keys.key_pem(keys.load_private_key(Path(s.tls.key))), Path(s.tls.cert).read_bytes(),
                          b"".join(Path(a).read_bytes() for a in s.tls.trust_anchors))
    transport = GrpcTransport(tls, s.messages.max_size)
    try:
        serving = transport.probe([Peer(code, address)], timeout)[code]
    finally:
        transport.close()
    if not isinstance(serving, bool):
        if serving.refused is not None and serving.refused.reason is Reason.CERT_REVOKED:
            r.add(PROBLEM, what, f"{address} is {code} and refuses us: our certificate ({s.tls.cert}) is REVOKED "
                                 "on the CA's list it holds (CERT_REVOKED): get a new one (`lienthong renew`), "
                                 "then SIGHUP the node")
        else:
            r.add(PROBLEM, what, f"{address} is {code} but its health check fails over mutual TLS "
                                 f"({serving.what}): does it trust our certificate (its tls.trust_anchors)?")
        return
    if not serving:
        r.add(PROBLEM, what, f"{address} is {code} but NOT_SERVING: its log says why")
    else:
        r.add(OK, what, f"{address} is {code}, reachable over mutual TLS, SERVING")
