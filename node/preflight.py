"""What start-up refuses, before anything binds: each refusal is a ConfigError naming the key to fix.

- the node's own identity (`load_identity`): a key file that is not a private key (tls.key),
  a private key readable by others (tls.key), a certificate that does not parse, binds no or
  another code, does not chain to the trust anchors, is expired or not yet valid (tls.cert),
  a key that does not match the certificate (tls.key);
- the data directory (`DataDir.open`): one it cannot create or write, a mailbox it cannot
  write, and one another node is using: an exclusive `fcntl.flock` on `lienthong.lock`, held
  for the node's life, with the holder's pid written in it (the kernel drops the lock when the
  process dies, so a kill -9 leaves nothing to clean up);
- a parent the node needs but has no address for in `peers`: node.parent, or, without it, the
  parent the code rule gives its code (unless `node.root` says the node is the top of its tree).

Files the node creates are 0600 and directories 0700.
"""
from __future__ import annotations

import datetime as dt
import errno
import fcntl
import logging
import os
import stat
from pathlib import Path

from cryptography import x509

from .clock import Clock
from .config import ConfigError, Settings
from .envelope import Signer
from .errors import Reason, Rejected
from .identity import certs, keys, sealing
from .identity.trust import TrustStore
from .files import write_atomically

log = logging.getLogger(__name__)

LOCK_FILE = "lienthong.lock"
MAILBOX_FILE = "mailbox.sqlite3"
KEY_MODE_MASK = 0o037  # group write/exec and anything for others: a key must be 0600, 0400, 0640 or 0440


def _source(s: Settings) -> str | None:
    return str(s.source) if s.source else None


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def key_mode_problem(path: Path) -> str | None:
    """Why a private key file's mode is unsafe, or None."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & KEY_MODE_MASK:
        return f"{path} is readable or writable by others (mode {mode:04o}): run `chmod 600 {path}`"
    return None


def load_identity(s: Settings, trust: TrustStore, clock: Clock) -> Signer:
    """The node's signer, or a ConfigError naming tls.key or tls.cert and what is wrong."""
    src = _source(s)
    key_path, cert_path = Path(s.tls.key), Path(s.tls.cert)
    problem = key_mode_problem(key_path)
    if problem:
        raise ConfigError(problem, path="tls.key", expected="a private key readable by its owner only", file=src)
    try:
        key = keys.load_private_key(key_path)
    except (ValueError, TypeError) as e:
        why = str(e) if str(e).startswith(str(key_path)) else f"{key_path} is not a PEM private key without a password"
        raise ConfigError(why, path="tls.key", expected="the node's PEM private key (from `lienthong init`)",
                          file=src) from None
    try:
        cert = certs.load_cert(cert_path)
    except ValueError:
        raise ConfigError(f"{cert_path} is not a PEM certificate", path="tls.cert",
                          expected="the node's PEM certificate", file=src) from None
    code = certs.agency_code(cert)
    if code is None:
        raise ConfigError(f"{cert_path}: certificate binds no agency code", path="tls.cert",
                          expected="a certificate issued for this node's code", file=src)
    if cert.public_key().public_numbers() != key.public_key().public_numbers():
        raise ConfigError(f"{key_path}: key does not match certificate {cert_path}", path="tls.key",
                          expected="the key the certificate was issued for", file=src)
    if code != s.node.code:
        raise ConfigError(f"certificate is for {code}, but node.code is {s.node.code}", path="tls.cert",
                          expected=f"a certificate for {s.node.code}", file=src)
    signer = Signer(code, key, certs.der(cert))
    check_certificate(s, trust, signer.cert_der, clock)
    return signer


def load_previous_seal_keys(s: Settings) -> list[sealing.SealKey]:
    """sealing.previous_keys: retired seal keys, each held like the current one (0600, P-256)."""
    src, out = _source(s), []
    for i, path in enumerate(s.sealing.previous_keys):
        where = f"sealing.previous_keys[{i}]"
        problem = key_mode_problem(path)
        if problem:
            raise ConfigError(problem, path=where, expected="a private key readable by its owner only", file=src)
        try:
            out.append(sealing.load_or_create(path, create=False)[0])
        except (ValueError, TypeError):
            raise ConfigError(f"{path} is not a PEM P-256 private key without a password", path=where,
                              expected="a retired seal key", file=src) from None
    return out


def load_seal_key(s: Settings, *, create: bool = True) -> sealing.SealKey:
    """The node's seal key (sealing.key), made (0600) when missing, or a ConfigError naming sealing.key.

    Made at start-up when missing so that a node set up before sealing needs no manual step to
    publish a key; an existing file is never replaced (mail already sealed to it would be lost)."""
    src, path = _source(s), s.seal_key_path
    if path.exists():
        problem = key_mode_problem(path)
        if problem:
            raise ConfigError(problem, path="sealing.key", expected="a private key readable by its owner only",
                              file=src)
    try:
        key, made = sealing.load_or_create(path, create=create)
    except (ValueError, TypeError):
        raise ConfigError(f"{path} is not a PEM P-256 private key without a password", path="sealing.key",
                          expected="the node's seal key (from `lienthong init`)", file=src) from None
    except OSError as e:
        raise ConfigError(f"cannot make {path}: {e.strerror or e}", path="sealing.key",
                          expected="a file path this user can write", file=src) from None
    if made:
        log.warning("made a seal key at %s (0600): back it up with tls.key; it is published in this node's "
                    "registry record", path)
    return key


def check_certificate(s: Settings, trust: TrustStore, cert_der: bytes, clock: Clock) -> None:
    """The node's own certificate chains to the anchors and is valid now (by the trust store's clock)."""
    try:
        trust.identify(cert_der)
    except Rejected as r:
        cert = x509.load_der_x509_certificate(cert_der)
        now = clock.now_ms()
        if r.reason is Reason.CERT_EXPIRED:
            start, end = (int(cert.not_valid_before_utc.timestamp() * 1000),
                          int(cert.not_valid_after_utc.timestamp() * 1000))
            why = (f"{s.tls.cert} expired on {_when(end)}: renew it (`lienthong renew`)" if now > end
                   else f"{s.tls.cert} is not valid until {_when(start)}: check this machine's clock")
        else:
            why = (f"{s.tls.cert} does not chain to tls.trust_anchors ({r.public_detail}): "
                   "use the certificate your CA issued, or add its CA to tls.trust_anchors")
        raise ConfigError(why, path="tls.cert", expected="a certificate valid now, issued by a trust anchor",
                          file=_source(s)) from None


def check_parent(s: Settings) -> None:
    """A node that must register (it is not the top of its tree) needs its parent's address: without it,
    it would serve, never registered and unreachable from the tree, saying nothing."""
    if s.node.root and s.node.parent:
        raise ConfigError(f"node.root says {s.node.code} is the top of its tree, node.parent names {s.node.parent}",
                          path="node.root", expected="either node.root: true or a node.parent", file=_source(s))
    if s.node.parent and not s.peer_address(s.node.parent):
        raise ConfigError(f"parent {s.node.parent} has no address: add it to peers (code and host:port)",
                          path="node.parent", expected="a parent listed in peers", file=_source(s))
    if (parent := unplaced_parent(s)) is not None:
        raise ConfigError(f"the code rule places {s.node.code} under {parent}, which has no address here: add "
                          f"{parent} to peers (code and host:port), or set node.root: true if {s.node.code} is the "
                          "top of its tree", path="peers",
                          expected=f"the parent {parent} listed in peers, or node.root: true", file=_source(s))


class DataDir:
    """The node's data directory, created 0700 and held with an exclusive lock while the node runs."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self._fd = path, fd

    @classmethod
    def open(cls, s: Settings) -> "DataDir":
        path = Path(s.node.data_dir)
        src = _source(s)

        def refuse(why: str, expected: str = "a directory this user can create and write") -> ConfigError:
            return ConfigError(why, path="node.data_dir", expected=expected, file=src)

        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise refuse(f"cannot create {path}: {e.strerror}") from None
        if not os.access(path, os.W_OK | os.X_OK):
            raise refuse(f"cannot write in {path} (permission denied; owner uid {path.stat().st_uid})")
        mailbox = path / MAILBOX_FILE
        for f in (mailbox, mailbox.with_name(MAILBOX_FILE + "-wal")):
            if f.exists() and not os.access(f, os.R_OK | os.W_OK):
                raise refuse(f"cannot write {f} (read-only): fix its owner or mode", "a writable mailbox")
        try:
            fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise refuse(f"cannot create {path / LOCK_FILE}: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise refuse(f"{path} is in use by another lienthong node (pid {holder}): stop it first, "
                             "or give this node its own data_dir", "a data directory no running node uses") from None
            raise refuse(f"cannot lock {path / LOCK_FILE}: {e.strerror}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    @property
    def mailbox(self) -> Path:
        """The mailbox file, created 0600 before SQLite opens it (its -wal and -shm files take that mode)."""
        p = self.path / MAILBOX_FILE
        if not p.exists():
            os.close(os.open(p, os.O_RDWR | os.O_CREAT, 0o600))
        return p

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = -1


def write_private(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only, atomically (a temporary file renamed over it)."""
    write_atomically(path, data, 0o600)


def unplaced_parent(s: Settings) -> str | None:
    """The parent the code rule gives this node when it has no address for it (None: it has one, node.parent
    names one, or node.root says there is none)."""
    from .codes import ROOT, CodeError, Hierarchy
    if s.node.parent or s.node.root:
        return None
    try:
        parent = Hierarchy(dict(s.parents_of)).parent(s.node.code)
    except CodeError:
        return None
    return parent if parent and parent != ROOT and not s.peer_address(parent) else None
