"""`lienthong backup` and `lienthong restore`: a node's mailbox as one file, taken while the node runs.

A backup is a plain tar file (readable with `tar -xf`) of three members:

- `manifest.json`: format, node code and name, when (UTC), the lienthong version, the schema
  version (the last migration applied, and the whole list), rows per table, the SHA-256
  and size of the database member, and the certificate of the key that signs it;
- `manifest.sig`: the node's signature (tls.key) over the manifest. A digest alone proves
  nothing against someone who edits the database and writes the new digest in; the signature
  binds the digest, so the database, to the node's key;
- `mailbox.sqlite3`: a consistent copy of the mailbox, taken with SQLite's online backup API
  from a read-only connection of its own (node/store/backup.py): the running node is not
  stopped, paused or locked out, and the copy holds every transaction committed before it
  began, none after.

Restore goes only into an empty data directory (it never merges into or replaces a mailbox),
for the node the backup was made of, from a backup whose schema this version knows; it checks
the manifest's signature with this node's key first (unsigned: BACKUP_UNSIGNED; signed by
another key: BACKUP_FOREIGN_KEY; changed since: BACKUP_BAD_SIGNATURE), then the digest,
SQLite's integrity check and the row counts, before the mailbox is put in place,
and declares the restore in the audit chain under the node's key (node/audit/restore.py), so
that the rows written after the backup read as lost with a restore, not as tampering. A backup
made under another key (another node's, or this node's before a new key) is refused: a successor
takes a retired predecessor's mailbox over into its own (node/takeover.py, `lienthong takeover`).

What a restored node does with what the backup holds: envelopes it shows delivered are not
sent again; envelopes it shows pending are sent again, and a next hop that already took them
(after the backup) answers with the receipt it stored, storing nothing twice (dedup by message
id). What happened after the backup is not in it: keep backups frequent (docs/deploy.md).
Keys and the config are not in a backup: back them up apart (the key never leaves its machine
in a mailbox backup).
"""
from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from cryptography import x509

from . import version as _version
from .audit import restore as audit_restore
from .config import ConfigError, Settings
from .envelope import Signer
from .errors import Reason, Rejected
from .identity import certs, keys, signed
from .preflight import LOCK_FILE, MAILBOX_FILE, DataDir
from .progress import MB, SILENT, Progress
from .store import backup as store

FORMAT = "lienthong-backup/2"
UNSIGNED_FORMATS = ("lienthong-backup/1",)  # made before backups were signed
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
SIGNED = b"lienthong backup manifest\0"  # in front of the manifest's bytes: this signature means nothing else
MAX_MANIFEST = 1 << 20  # a manifest is a few KiB; a bigger member is not read into memory
DATABASE = "mailbox.sqlite3"
SUFFIX = ".tar"
CHUNK = 1 << 20


MAX_MEMBERS = 8  # a backup holds a manifest, its signature, the database and the keys handed over


@contextlib.contextmanager
def open_backup(path: Path) -> Iterator[tarfile.TarFile]:
    """The backup tar, its member headers read first, at most MAX_MEMBERS of them: tarfile reads every header
    before finding one member, and a file of millions of empty members (a peer's hand-over can be 8 GiB) would
    be that many objects in memory before any signature is checked."""
    with tarfile.open(path, mode="r:") as tar:
        for _ in range(MAX_MEMBERS):
            if tar.next() is None:
                break
        else:
            if tar.next() is not None:
                raise BackupError(f"{path}: more than {MAX_MEMBERS} members: not a lienthong backup")
        yield tar


class BackupError(Exception):
    """The backup or restore cannot be done; the message says what to fix."""


@dataclass(frozen=True)
class Manifest:
    format: str
    node: str
    name: str
    created: str          # ISO 8601, UTC
    lienthong: str        # version that made it
    schema_version: str   # the last migration applied
    migrations: list[str]
    rows: dict[str, int]  # per table
    sha256: str           # of the database member
    size: int
    signer_cert: str      # base64 DER of the certificate whose key signs the manifest (manifest.sig)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> "Manifest":
        try:
            raw = json.loads(data)
            if raw.get("format") in UNSIGNED_FORMATS:
                raise Rejected(Reason.BACKUP_UNSIGNED, f"{where} was made by lienthong {raw.get('lienthong')}, "
                                                       "before backups were signed: its content cannot be trusted")
            if raw.get("format") != FORMAT:
                raise BackupError(f"{where}: not a {FORMAT} backup (format {raw.get('format')!r})")
            return cls(**{k: raw[k] for k in cls.__dataclass_fields__})
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise BackupError(f"{where}: {MANIFEST} is damaged ({e.__class__.__name__}: {e})") from None


def _digest(path: Path, progress: Progress = SILENT) -> str:
    h, total, done = hashlib.sha256(), path.stat().st_size, 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            done += len(chunk)
            progress.amount("SHA-256 of the copy", done, total, unit="MB")
    return h.hexdigest()


def node_signer(settings: Settings) -> Signer:
    """The node's own signing identity (tls.key, tls.cert): what signs its backups and checks them on restore."""
    try:
        return Signer.from_files(Path(settings.tls.key), Path(settings.tls.cert))
    except ValueError as e:
        raise BackupError(f"the node's key cannot sign or check a backup: {e}") from None


def sign_manifest(signer: Signer, data: bytes) -> bytes:
    return signed.sign(signer, SIGNED + data).signature


def check_signature(signer: Signer, manifest: Manifest, data: bytes, signature: bytes | None, where: str) -> None:
    """The manifest was signed by this node's key, as it is: else refused, with the reason that says why."""
    if not signature:
        raise Rejected(Reason.BACKUP_UNSIGNED, f"{where} has no {SIGNATURE}: its content cannot be trusted")
    own = x509.load_der_x509_certificate(signer.cert_der).public_key()
    if keys.verify(own, signature, SIGNED + data):
        return
    other = signer_of(manifest)
    if other is None or other.public_key().public_numbers() != own.public_numbers():
        who = certs.agency_code(other) if other is not None else None
        raise Rejected(Reason.BACKUP_FOREIGN_KEY,
                       f"{where} is signed by another key than this node's (tls.key)"
                       f"{f', the key of {who}' if who else ''}: a node restores only its own backups")
    raise Rejected(Reason.BACKUP_BAD_SIGNATURE, f"{where}: the manifest's signature does not verify with this node's "
                                                "key: the backup was changed after it was made; use another backup")


def signer_of(manifest: Manifest) -> x509.Certificate | None:
    """The certificate the manifest names as its signer's (None when it names none that parses)."""
    try:
        return x509.load_der_x509_certificate(base64.b64decode(manifest.signer_cert, validate=True))
    except (ValueError, TypeError):
        return None


class _Reading:
    """A file read by tarfile, its progress shown as it goes."""

    def __init__(self, f, total: int, progress: Progress, text: str) -> None:
        self.f, self.total, self.progress, self.text, self.done = f, total, progress, text, 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.done += len(data)
        self.progress.amount(self.text, self.done, self.total, unit="MB")
        return data


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def target_file(settings: Settings, to: Path, now: dt.datetime) -> Path:
    """`to` itself, or a file named after the node and the time in `to` when that is a directory."""
    if to.is_dir():
        stamp = now.strftime("%Y%m%dT%H%M%S.") + f"{now.microsecond // 1000:03d}Z"  # names sort by time
        return to / f"lienthong-{settings.node.code}-{stamp}{SUFFIX}"
    return to


def backup(settings: Settings, to: Path, keep: int | None = None,
           progress: Progress = SILENT) -> tuple[Path, Manifest, list[Path]]:
    """Back up the node's mailbox (running or not) into `to` (a new file, or a directory to put one in).
    With `keep`, the oldest backups of this node in that directory beyond the `keep` newest are removed.
    Returns the file written, its manifest and the files removed."""
    mailbox = Path(settings.node.data_dir) / MAILBOX_FILE
    if not mailbox.is_file():
        raise BackupError(f"no mailbox at {mailbox} (node.data_dir): has this node run yet?")
    now = dt.datetime.now(dt.timezone.utc)
    out = target_file(settings, to, now)
    if out.exists():
        raise BackupError(f"{out} exists: a backup never overwrites one (give another file, or a directory)")
    if not out.parent.is_dir():
        raise BackupError(f"{out.parent} is not a directory: create it first (mode 0700)")
    signer = node_signer(settings)
    work = Path(tempfile.mkdtemp(prefix=".lienthong-backup-", dir=out.parent))  # same disk: one rename at the end
    try:
        copy = work / DATABASE
        # one step (one read transaction: a consistent copy), so this stage has no figures of its own
        progress.stage(f"copying the mailbox ({mailbox.stat().st_size / MB:.1f} MB)")
        contents = store.snapshot(mailbox, copy)
        manifest = Manifest(FORMAT, settings.node.code, settings.node.name, now.isoformat(timespec="seconds"),
                            _version(), contents.schema_version, contents.migrations, contents.rows,
                            _digest(copy, progress), copy.stat().st_size, base64.b64encode(signer.cert_der).decode())
        partial = work / (out.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
                data = manifest.to_json()
                for name, member in ((MANIFEST, data), (SIGNATURE, sign_manifest(signer, data))):
                    info = tarfile.TarInfo(name)
                    info.size, info.mode, info.mtime = len(member), 0o600, int(now.timestamp())
                    tar.addfile(info, io.BytesIO(member))
                info = tarfile.TarInfo(DATABASE)
                info.size, info.mode, info.mtime = manifest.size, 0o600, int(now.timestamp())
                with open(copy, "rb") as db:
                    tar.addfile(info, _Reading(db, manifest.size, progress, f"writing {out.name}"))
            f.flush()
            os.fsync(f.fileno())
        os.link(partial, out)  # fails rather than replace a file that appeared meanwhile
        _fsync_dir(out.parent)
    except FileExistsError:
        raise BackupError(f"{out} exists: a backup never overwrites one") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    removed = prune(settings, out.parent, keep) if keep else []
    return out, manifest, removed


def prune(settings: Settings, directory: Path, keep: int) -> list[Path]:
    """Remove the oldest `lienthong-<code>-*.tar` in `directory` beyond the `keep` newest (names sort by time)."""
    mine = sorted(directory.glob(f"lienthong-{settings.node.code}-*{SUFFIX}"))
    old = mine[:-keep] if keep > 0 else []
    for p in old:
        p.unlink(missing_ok=True)
    return old


def read_manifest(path: Path) -> tuple[Manifest, bytes, bytes | None]:
    """The manifest, its bytes as signed, and its signature (None when the backup has none)."""
    try:
        with open_backup(path) as tar:
            data = _member(tar, MANIFEST)
            if data is None:
                raise KeyError(MANIFEST)
            manifest = Manifest.from_json(data, str(path))
            return manifest, data, _member(tar, SIGNATURE)
    except FileNotFoundError:
        raise BackupError(f"{path}: no such file") from None
    except (tarfile.TarError, KeyError):
        raise BackupError(f"{path}: not a lienthong backup (no {MANIFEST} in a tar file)") from None


def _member(tar: tarfile.TarFile, name: str) -> bytes | None:
    try:
        member = tar.getmember(name)
    except KeyError:
        return None
    if not member.isfile() or member.size > MAX_MANIFEST:
        raise BackupError(f"{tar.name}: {name} is not a file of at most {MAX_MANIFEST} bytes")
    f = tar.extractfile(member)
    return f.read() if f is not None else None


@dataclass(frozen=True)
class Restored:
    manifest: Manifest
    backup_seq: int   # the last audit row the backup holds
    restore_seq: int  # the `restored` row appended after it


def restore(settings: Settings, source: Path, signer: Signer, now_ms: int,
            progress: Progress = SILENT) -> Restored:
    """Put the mailbox from backup `source` into the node's empty data directory, after every check, with the
    restore declared in its audit chain (a `restored` row and its restore checkpoint, signed by `signer`,
    the node's key: node/audit/restore.py) before it is put in place. Raises Rejected (BACKUP_*) for a backup
    `signer` did not sign as it is, BackupError or ConfigError for the rest; in every case nothing is left in
    the data directory."""
    manifest, signed, signature = read_manifest(source)
    check_signature(signer, manifest, signed, signature, str(source))
    src = str(settings.source) if settings.source else None
    if manifest.node != settings.node.code:
        raise ConfigError(f"{source} is a backup of {manifest.node}, but this config is for {settings.node.code}",
                          path="node.code", expected=f"the config of {manifest.node}", file=src)
    known = store.known_migrations()
    if manifest.migrations != known[:len(manifest.migrations)]:
        unknown = [m for m in manifest.migrations if m not in known] or manifest.migrations
        raise BackupError(f"{source} was made by lienthong {manifest.lienthong} with a schema this version does not "
                          f"know ({unknown[-1]}): restore it with that version or a newer one")
    data = Path(settings.node.data_dir)
    if data.exists() and any(p.name != LOCK_FILE for p in data.iterdir()):  # a failed restore leaves the lock only
        raise ConfigError(f"{data} is not empty: restore only into an empty data directory (move this one aside, "
                          "or point node.data_dir at a new one)", path="node.data_dir",
                          expected="an empty or missing directory", file=src)
    lock = DataDir.open(settings)  # made 0700, and no node can start on it while we work
    try:
        partial = data / (MAILBOX_FILE + ".restoring")
        h = hashlib.sha256()
        with open_backup(source) as tar:
            try:
                member = tar.getmember(DATABASE)
            except KeyError:
                raise BackupError(f"{source}: no {DATABASE} in it") from None
            f = tar.extractfile(member)
            if f is None:
                raise BackupError(f"{source}: {DATABASE} is not a file")
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    progress.amount("reading the mailbox", out.tell(), member.size, unit="MB")
                out.flush()
                os.fsync(out.fileno())
        try:
            if h.hexdigest() != manifest.sha256:
                raise BackupError(f"{source} is damaged: the database's SHA-256 is {h.hexdigest()}, the manifest "
                                  f"says {manifest.sha256}; use another backup")
            progress.stage("SQLite's integrity check and row counts")
            contents, check = store.inspect(partial)
            if check != "ok":
                raise BackupError(f"{source}: the database fails SQLite's integrity check ({check}); use another backup")
            if contents.rows != manifest.rows:
                raise BackupError(f"{source}: row counts differ from the manifest ({contents.rows} != "
                                  f"{manifest.rows}); use another backup")
            recorded = audit_restore.record(partial, signer, now_ms, f"{source.name} sha256 {manifest.sha256} made "
                                                                     f"{manifest.created}")
            os.replace(partial, data / MAILBOX_FILE)
            _fsync_dir(data)
        finally:
            for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
                leftover.unlink(missing_ok=True)
    finally:
        lock.release()
    return Restored(manifest, recorded.backup_seq, recorded.seq)
