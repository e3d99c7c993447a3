"""SIGHUP: read node.yaml and the files it names again, and take what can change in a running node.

What can change live is taken (node/config_changes.py: the key, certificate, trust anchors and
CRL, `peers`, `limits`, `retry`, `log_level`, `sealing`, `metrics`); every other changed key is
named in the log with "restart to apply", and the node keeps running on its old value. The new
config is checked first as at start-up (the schema, then the files: key, certificate, anchors,
CRL, seal keys, the parent's address, the metrics address bound): anything wrong and nothing is
taken, the log says why, and the node goes on with everything it had.

Calls in flight finish on what they started with: the peer server hands new TLS material to new
handshakes only, and channels to peers made before are kept until their calls' deadlines have
passed while new calls get new channels. A new certificate or seal key is registered with the
parent again (co-signed by the previous key, when kept).

Under systemd the reload is announced as the notify protocol asks (RELOADING=1, then READY=1 with
the outcome as STATUS=), so `systemctl reload` can wait for it and `systemctl status` shows it."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import config_changes, preflight, sdnotify
from .api.running import LastReload
from .config import ConfigError, Settings, load_config
from .errors import Rejected, bounded
from .exchange.hop import RetryPolicy
from .transport.grpc_peers import TlsMaterial
from .identity import keys, renewal
from .identity.trust import TrustStore

if TYPE_CHECKING:
    from .envelope import Signer
    from .runtime import Node

log = logging.getLogger("lienthong")


class Refused(Exception):
    """The new config cannot be taken; the message names the key."""


@dataclass
class Checked:
    """Everything the new config needs, loaded and checked before anything is changed."""
    settings: Settings
    fixed: list[str]       # changed keys that only a restart takes
    live: list[str]        # changed keys taken now
    trust: TrustStore
    file_crl: object       # revocation.Revoked from tls.crl, or None
    signer: "Signer"
    seal_key: object
    previous_seal_keys: list
    metrics_server: object = None  # a new metrics endpoint, already bound (None: no change to it)


def reload(node: "Node", settings: Settings | None = None) -> bool:
    """Read the config again and take what can change live; False (nothing changed) when refused.
    `settings`: the new config already read (a host reads its agencies' files itself; node/host/)."""
    if node.shared is None:
        sdnotify.notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
    try:
        checked = _check(node, settings)
    except Refused as e:
        why = bounded(str(e), 2000)  # it may quote the file: one printable line, bounded
        log.error("reload refused, keeping the config, key, certificate and trust anchors in use: %s", why)
        _done(node, f"refused: {why}")
        return False
    for key in checked.fixed:
        log.warning("reload (SIGHUP): %s changed in %s: restart to apply (running on the old value until then)",
                    key, node.settings.source)
    try:
        _apply(node, checked)
    except Exception as e:  # noqa: BLE001 - a bug here must not stop a serving node; the traceback says where
        log.exception("reload (SIGHUP) failed part way: restart the node to be sure what it runs on")
        _done(node, f"failed part way ({type(e).__name__}): restart to be sure")
        return False
    _done(node, "reloaded" + (f"; restart to apply: {', '.join(checked.fixed)}" if checked.fixed else ""))
    return True


def _done(node: "Node", outcome: str) -> None:
    """Kept for Admin.Running (doctor), and told to systemd, which waits for READY=1 after RELOADING=1."""
    node.last_reload = LastReload(node.clock.now_ms(), outcome)
    if node.shared is not None:  # the host tells systemd once for all its agencies
        return
    sdnotify.notify("READY=1", f"STATUS={outcome}"[:1000])


def _check(node: "Node", given: Settings | None = None) -> Checked:
    running = node.settings
    if given is not None:
        new = given
    elif running.source is None:  # built from a dict (in-process tests): the files it names are read again
        new = running
    else:
        try:
            new = load_config(running.source)
        except ConfigError as e:
            raise Refused("; ".join(f"{x.path}: {x.message}" if x.path else x.message for x in (e, *e.more))) from None
    changed = config_changes.changed(config_changes.flat(running), config_changes.flat(new))
    fixed = [k for k in changed if not config_changes.is_live(k)]
    live = [k for k in changed if config_changes.is_live(k)]
    try:
        s = config_changes.merged(running, new)
    except ConfigError as e:
        raise Refused(f"{e.path}: {e.message}") from None
    try:
        trust = TrustStore.from_files(list(s.tls.trust_anchors), node.clock)
    except (ValueError, OSError) as e:
        raise Refused(f"tls.trust_anchors: {e}") from None
    if s.tls.crl is not None:
        try:
            trust.use_crl(Path(s.tls.crl).read_bytes())
        except (ValueError, OSError) as e:
            raise Refused(f"tls.crl: {s.tls.crl}: {e}") from None
    file_crl = trust.revoked
    if node.trust.revoked is not None:  # the list we hold (from the parent) checks the new pair too
        trust.adopt(node.trust.revoked)
    try:
        signer = preflight.load_identity(s, trust, node.clock)
        seal_key = preflight.load_seal_key(s)
        previous = preflight.load_previous_seal_keys(s)
        preflight.check_parent(s)  # peers that lose the parent's address are refused; node.parent is fixed
    except ConfigError as e:
        raise Refused(f"{e.path}: {e.message}") from None
    except OSError as e:
        raise Refused(f"{e.strerror or e}: {e.filename or ''}") from None
    checked = Checked(s, fixed, live, trust, file_crl, signer, seal_key, previous)
    listen = s.metrics.listen
    if node.shared is None and listen and (listen != running.metrics.listen or node.metrics_server is None):  # last: nothing can fail after
        try:
            checked.metrics_server = node.serve_metrics(listen)
        except OSError as e:
            raise Refused(f"metrics.listen: cannot listen on {listen} ({e.strerror or e})") from None
    return checked


def _apply(node: "Node", c: Checked) -> None:
    old, old_cert = node.settings, node.signer.cert_der
    s = node.settings = c.settings
    reregister = _identity(node, c)
    if c.file_crl is not None:  # tls.crl: taken (and passed down) if newer than the one we hold
        try:
            node.crl.offer(c.file_crl.der, "tls.crl")
        except Rejected as r:
            log.info("reload (SIGHUP): tls.crl not taken: %s", r.public_text)
    node.crl.grace_ms = int(s.tls.crl_grace * 1000)
    if s.peers != old.peers:
        _peers(node, old, s)
    if s.limits != old.limits:
        node.use_limits(s.limits)
    if s.retry != old.retry:
        r = s.retry
        node.dispatcher.use(policy=RetryPolicy(r.first_delay, r.multiplier, r.max_delay, tuple(r.jitter)))
    seal_public = c.seal_key.public_der
    node.maker.opening_keys = [k for k in (c.seal_key, *c.previous_seal_keys) if k is not None]
    node.maker.seal_key, node.maker.seal_mode = c.seal_key, s.sealing.mode
    if seal_public != node.directory.seal_key:
        node.directory.seal_key = seal_public
        log.info("reload (SIGHUP): seal key replaced (%s): it is published with our record", s.seal_key_path)
        reregister = True
    if node.shared is None and (s.metrics != old.metrics or c.metrics_server is not None):
        node.use_metrics(s.metrics, c.metrics_server)
    for key in c.live:
        log.info("reload (SIGHUP): %s taken", key)
    if not c.live and not c.fixed:
        log.info("reload (SIGHUP): config unchanged")
    if reregister:
        node.register_again("the new certificate" if c.signer.cert_der != old_cert else "our record (new seal key)")
    node.health.check()
    node.dispatcher.wake_all_due()
    if s.log_level != old.log_level:  # last: what this reload did is logged at the level it was asked under
        logging.getLogger().setLevel(s.log_level)


def _identity(node: "Node", c: Checked) -> bool:
    """Key, certificate and trust anchors; True when the parent must be given our record again."""
    s, signer, trust = c.settings, c.signer, c.trust
    old_signer, old_anchors = node.signer, node.trust.anchors
    changes = _identity_changes(old_signer, signer, old_anchors, trust.anchors)
    if not changes:
        log.info("reload (SIGHUP): key, certificate and trust anchors unchanged")
        return False
    node.trust.replace_anchors(trust)
    node.tls = TlsMaterial(key_pem=keys.key_pem(signer.key), cert_pem=Path(s.tls.cert).read_bytes(),
                           anchors_pem=node.trust.anchors_pem, insecure=s.tls.insecure_plaintext)
    node.transport.reload(node.tls)
    node.signer = signer
    for holder in (node.directory, node.maker, node.lifecycle, node.intake, node.health, node.checkpointer):
        holder.signer = signer  # one reference each: a signature never mixes old and new
    node.cert_not_after_ms = not_after_ms(signer.cert_der)
    for line in changes:
        log.info("reload (SIGHUP): %s", line)
    if signer.cert_der != old_signer.cert_der:
        node.directory.previous = renewal.previous_signer(s, signer)
        return True
    return False


def _peers(node: "Node", old: Settings, s: Settings) -> None:
    before = {p.code: p.address for p in old.peers}
    after = {p.code: p.address for p in s.peers}
    node.router.peers = dict(after)
    node.directory.peer_addresses = dict(after)
    if node.directory.parent:
        node.directory.parent_address = s.peer_address(node.directory.parent)
    words = [f"+ {c} {a}" for c, a in after.items() if c not in before]
    words += [f"- {c}" for c in before if c not in after]
    words += [f"{c} {before[c]} -> {a}" for c, a in after.items() if c in before and before[c] != a]
    log.info("reload (SIGHUP): peers: %s", ", ".join(words))


def not_after_ms(cert_der: bytes) -> int:
    from cryptography import x509
    return int(x509.load_der_x509_certificate(cert_der).not_valid_after_utc.timestamp() * 1000)


def _identity_changes(old: "Signer", new: "Signer", old_anchors: list, new_anchors: list) -> list[str]:
    """What a reload changes, in words for the log."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    out = []
    if old.cert_der != new.cert_der:
        a, b = (x509.load_der_x509_certificate(d) for d in (old.cert_der, new.cert_der))
        out.append(f"certificate: serial {a.serial_number:x} -> {b.serial_number:x}, valid until "
                   f"{a.not_valid_after_utc:%Y-%m-%d} -> {b.not_valid_after_utc:%Y-%m-%d}")
    if keys.key_pem(old.key) != keys.key_pem(new.key):
        out.append("key: replaced")
    fp = lambda c: c.fingerprint(hashes.SHA256())  # noqa: E731
    before, after = {fp(c): c for c in old_anchors}, {fp(c): c for c in new_anchors}
    added = [after[f].subject.rfc4514_string() for f in after if f not in before]
    removed = [before[f].subject.rfc4514_string() for f in before if f not in after]
    if added or removed:
        out.append("trust anchors: " + ", ".join([f"+ {n}" for n in added] + [f"- {n}" for n in removed]))
    return out
