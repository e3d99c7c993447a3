"""`lienthong takeover --from-backup FILE` (Admin.Takeover): the successor takes over a retired predecessor's mailbox.

Statuses, changes and evidence about documents exchanged before a succession belong to the predecessor's
history; once its node is revoked and stopped that history would be lost. The successor imports it from the
predecessor's signed backup (node/backup.py, format 2), which the operator of both holds, after checking,
each with its own reason and before anything is written:

- the manifest is signed (BACKUP_UNSIGNED) by a certificate that chains to our trust anchors (UNTRUSTED_CERT),
  names the code the manifest names (BACKUP_FOREIGN_KEY), and whose key verifies the signature
  (BACKUP_BAD_SIGNATURE); the database is the one the manifest digests (BACKUP_BAD_SIGNATURE), SQLite finds it
  sound and its row counts are the manifest's (MALFORMED);
- that certificate is not revoked, or revoked because its agency ended (cessation_of_operation, superseded:
  the ordinary end of a retired node); any other reason (key_compromise...) refuses it (TAKEOVER_REVOKED);
- a succession this node holds, in effect, retires that code into this node, directly or through a chain
  (TAKEOVER_NOT_PREDECESSOR);
- sizes, from the signed manifest before the database is read, then from the copy: MAX_DATABASE_BYTES,
  MAX_ROWS inbox rows and sent envelopes, no envelope over messages.max_size (TAKEOVER_TOO_LARGE);
- nothing still waiting to leave it (TAKEOVER_NOT_DRAINED): what is queued there would be sent by nobody,
  or twice;
- each envelope parses, is the one its row names, and is addressed to (received) or sent by (sent) the
  predecessor or an agency retired into it (MALFORMED);
- with `--seal-key`, the predecessor's own seal key: it must open what was sealed to the predecessor
  (the wraps its senders signed name its key id; its own sealed sends carry its published key, signed by
  it) (TAKEOVER_SEAL_KEY). Each content key it opens is wrapped again for our own seal key and kept beside
  the envelope (node.identity.sealing.rewrap): the envelope keeps the bytes its sender signed, so its
  signature, receipts and evidence still verify, and our agency reads it with its own key. Without the key,
  sealed envelopes are kept sealed: listed, tracked and proven, never opened here.

Then one transaction imports it (node/store/takeover.py): every row marked with the predecessor's code, a
message id already here left alone (a second takeover writes nothing), one `takeover` audit row, one row
in `takeovers`. A refusal anywhere, or a crash, leaves the mailbox as it was.
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
import secrets
import shutil
import tarfile
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import serialization
from google.protobuf.message import DecodeError

from . import backup
from .clock import Clock
from .errors import Reason, Rejected
from .identity import revocation, sealing, signed
from .identity.sealing import SealKey
from .identity.trust import TrustStore
from .pb import envelope_pb2 as pb
from .pb import registry_pb2 as rpb
from .store import backup as backup_store
from .store import retirement
from .store import takeover as store
from .store.database import Database

log = logging.getLogger(__name__)

MAX_DATABASE_BYTES = 8 << 30   # a commune's years of mail are a few hundred MB; a province's a few GB
MAX_ROWS = 2_000_000           # inbox rows, and sent envelopes, each
MAX_SEAL_KEY_BYTES = 16 << 10  # a PEM P-256 key is ~250 bytes
HELD_KEYS = "handover-keys.pb"  # beside a backup handed over: content keys wrapped for the successor (HeldKeys)
MAX_HELD_KEYS_BYTES = 256 << 20  # ~1,300,000 keys of ~200 bytes
ENDED = ("cessation_of_operation", "superseded")  # a retired node's certificate is revoked for these


@dataclass(frozen=True)
class Result:
    predecessor: str
    imported: store.Imported
    kept_sealed: int      # envelopes sealed to the predecessor left sealed (no --seal-key, or another key)
    backup_sha256: str


def _too_large(what: str, count: int, limit: int) -> Rejected:
    return Rejected(Reason.TAKEOVER_TOO_LARGE, f"{what}: {count}, at most {limit}",
                    metadata={"limit": str(limit), "count": str(count)})


def load_seal_key(path: Path) -> SealKey:
    """The predecessor's seal key from its keys directory; TAKEOVER_SEAL_KEY if it is not a P-256 private key."""
    try:
        if path.stat().st_size > MAX_SEAL_KEY_BYTES:
            raise ValueError("too large for a key")
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise Rejected(Reason.TAKEOVER_SEAL_KEY, f"{path.name}: not a P-256 private key ({e.__class__.__name__})",
                       field="seal_key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise Rejected(Reason.TAKEOVER_SEAL_KEY, f"{path.name}: not a P-256 private key", field="seal_key")
    return SealKey.of(key)


class Takeovers:
    """Takeovers into one node, one at a time (each holds the writer for its import)."""

    def __init__(self, code: str, db: Database, trust: TrustStore, clock: Clock,
                 successor_of: Callable[[str], str | None], seal_key: Callable[[], SealKey | None],
                 max_envelope: int, data_dir: Path) -> None:
        self.code, self.db, self.trust, self.clock = code, db, trust, clock
        self.successor_of = successor_of  # a held succession's chain, in effect (node.registry.successions)
        self.seal_key = seal_key          # our own, current: what imported content keys are wrapped for
        self.max_envelope, self.data_dir = max_envelope, data_dir
        self._lock = threading.Lock()
        for left in Path(data_dir).glob(".takeover-*.sqlite3*"):  # a crash's copy (and its journal): never read
            left.unlink(missing_ok=True)

    def take(self, source: Path, seal_key: Path | None = None, expect: str | None = None) -> Result:
        """`expect`: the predecessor that handed the file over itself (its backup only)."""
        with self._lock:
            return self._take(source, seal_key, expect)

    # ---- the checks on the signed manifest --------------------------------------------------

    def _manifest(self, source: Path, expect: str | None = None) -> tuple[backup.Manifest, bytes]:
        try:
            manifest, data, signature = backup.read_manifest(source)
        except backup.BackupError as e:
            raise Rejected(Reason.MALFORMED, str(e)[:300], field="backup") from None
        if not signature:
            raise Rejected(Reason.BACKUP_UNSIGNED, f"{source.name} has no {backup.SIGNATURE}: its content cannot be "
                           "trusted", field="backup")
        cert = backup.signer_of(manifest)
        if cert is None:
            raise Rejected(Reason.UNTRUSTED_CERT, f"{source.name}: its manifest names no signing certificate",
                           field="backup")
        # the chain only: revocation is judged below, by its reason; a retired node's certificate may have expired
        ident = signed.check(
            TrustStore(self.trust.anchors, self.clock), cert.public_bytes(serialization.Encoding.DER), signature,
            backup.SIGNED + data, signer=manifest.node, check_validity=False,
            wrong_signer=lambda other: Rejected(
                Reason.BACKUP_FOREIGN_KEY, f"{source.name} says it is a backup of {manifest.node} but is signed by "
                f"the certificate of {other.code}", field="backup"),
            bad_signature=lambda: Rejected(
                Reason.BACKUP_BAD_SIGNATURE, f"{source.name}: the manifest's signature does not verify with "
                f"{manifest.node}'s certificate: the backup was changed after it was made", field="backup"))
        if expect is not None and manifest.node != expect:
            raise Rejected(Reason.TAKEOVER_NOT_PREDECESSOR, f"{expect} handed over a backup of {manifest.node}: a "
                           "node hands over its own mailbox only", metadata={"successor": ""})
        crl = self.trust.revoked
        why = revocation.reason_of(crl, ident.serial) if crl is not None and ident.issuer == crl.issuer else None
        if why is not None and why not in ENDED:
            raise Rejected(Reason.TAKEOVER_REVOKED, f"the certificate that signed {source.name} ({ident.code}, "
                           f"serial {ident.serial:x}) is revoked for {why}", metadata={"revocation": why})
        if manifest.node == self.code:
            raise Rejected(Reason.INVALID_REQUEST, f"{source.name} is this node's own backup: restore it "
                           "(lienthong restore), do not take it over", field="backup")
        successor = self.successor_of(manifest.node)
        if successor != self.code:
            held = f"the successions held name {successor}" if successor else "no succession held retires it"
            raise Rejected(Reason.TAKEOVER_NOT_PREDECESSOR, f"{manifest.node} is not a predecessor of {self.code}: "
                           f"{held}", metadata={"successor": successor or ""})
        if manifest.size > MAX_DATABASE_BYTES:
            raise _too_large("bytes of the mailbox", manifest.size, MAX_DATABASE_BYTES)
        for table in ("inbox", "outbox"):
            if manifest.rows.get(table, 0) > MAX_ROWS:
                raise _too_large(f"rows of its {table}", manifest.rows[table], MAX_ROWS)
        known = backup_store.known_migrations()
        if manifest.migrations != known[:len(manifest.migrations)]:
            raise Rejected(Reason.INVALID_REQUEST, f"{source.name} was made by lienthong {manifest.lienthong[:40]} "
                           "with a schema this version does not know: upgrade this node first", field="backup")
        return manifest, data

    # ---- the copy ----------------------------------------------------------------------------

    def _extract(self, source: Path, manifest: backup.Manifest, to: Path) -> dict[str, bytes]:
        """The database member into `to`, no more than the manifest's size read, its digest checked; the content
        keys handed over beside it (HELD_KEYS: message id -> a wrap for our seal key), if any."""
        h, done = hashlib.sha256(), 0
        with backup.open_backup(source) as tar:
            offered = _held_keys(tar, source)
            try:
                member = tar.getmember(backup.DATABASE)
            except KeyError:
                raise Rejected(Reason.MALFORMED, f"{source.name}: no {backup.DATABASE} in it", field="backup") from None
            f = tar.extractfile(member) if member.isfile() else None
            if f is None or member.size != manifest.size:
                raise Rejected(Reason.BACKUP_BAD_SIGNATURE, f"{source.name}: {backup.DATABASE} is not the "
                               f"{manifest.size} bytes its signed manifest says", field="backup")
            fd = os.open(to, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                while chunk := f.read(backup.CHUNK):
                    done += len(chunk)
                    if done > manifest.size:
                        break
                    h.update(chunk)
                    out.write(chunk)
        if done != manifest.size or h.hexdigest() != manifest.sha256:
            raise Rejected(Reason.BACKUP_BAD_SIGNATURE, f"{source.name}: the database is not the one its signed "
                           "manifest digests: it was changed after it was made", field="backup")
        contents, check = backup_store.inspect(to)
        if check != "ok" or contents.rows != manifest.rows:
            raise Rejected(Reason.MALFORMED, f"{source.name}: the database "
                           + ("fails SQLite's integrity check" if check != "ok" else
                              "holds other row counts than its manifest"), field="backup")
        return offered

    def _take(self, source: Path, seal_key_path: Path | None, expect: str | None) -> Result:
        manifest, _ = self._manifest(source, expect)
        theirs = load_seal_key(seal_key_path) if seal_key_path is not None else None
        copy = self.data_dir / f".takeover-{manifest.sha256[:16]}.sqlite3"
        copy.unlink(missing_ok=True)  # a crash's leftover: never read
        try:
            offered = self._extract(source, manifest, copy)
            try:
                pred = store.Predecessor(copy)
            except store.NotAMailbox as e:
                raise Rejected(Reason.MALFORMED, f"{source.name}: {e}", field="backup") from None
            try:
                return self._import(pred, manifest, theirs, offered)
            finally:
                pred.close()
        finally:
            for leftover in (copy, *(Path(f"{copy}-{end}") for end in ("journal", "wal", "shm"))):
                leftover.unlink(missing_ok=True)

    def _import(self, pred: store.Predecessor, manifest: backup.Manifest, theirs: SealKey | None,
                offered: dict[str, bytes]) -> Result:
        size = pred.size()
        if size.pending:
            raise Rejected(Reason.TAKEOVER_NOT_DRAINED, f"{manifest.node}'s backup still holds {size.pending} envelopes "
                           "waiting to leave it: let it drain (lienthong retire --status), then back it up again",
                           metadata={"count": str(size.pending)})
        for what, n in (("inbox rows", size.inbox), ("sent envelopes", size.sent)):
            if n > MAX_ROWS:
                raise _too_large(what, n, MAX_ROWS)
        if size.largest > self.max_envelope:
            raise _too_large("bytes of one envelope (messages.max_size)", size.largest, self.max_envelope)
        # every envelope checked and every content key opened before the writer is taken: the import's
        # transaction only writes rows, so the node's own mail waits for inserts, not for key agreements
        check = _Check(manifest.node, self.code, self.successor_of, theirs, self.seal_key(), offered)
        wraps: dict[str, bytes] = {}
        for e in pred.envelopes():
            wrap = check(e)
            if wrap is not None:
                wraps[e.message_id] = wrap
        check.key_matched()
        with self.db.transaction() as tx:
            imported = store.import_in(tx, manifest.node, pred, lambda e: wraps.get(e.message_id),
                                       self.clock.now_ms(), manifest.sha256)
        log.info("took over %s's mailbox from backup sha256 %s: %d received, %d sent (%d resealed), %d here already",
                 manifest.node, manifest.sha256, imported.inbox, imported.sent, imported.resealed, imported.already)
        return Result(manifest.node, imported, check.kept_sealed, manifest.sha256)


def _held_keys(tar: tarfile.TarFile, source: Path) -> dict[str, bytes]:
    try:
        member = tar.getmember(HELD_KEYS)
    except KeyError:
        return {}
    if not member.isfile():
        raise Rejected(Reason.MALFORMED, f"{source.name}: {HELD_KEYS} is not a file", field="backup")
    if member.size > MAX_HELD_KEYS_BYTES:
        raise _too_large(f"bytes of {HELD_KEYS}", member.size, MAX_HELD_KEYS_BYTES)
    f = tar.extractfile(member)
    try:
        held = rpb.HeldKeys.FromString(f.read(MAX_HELD_KEYS_BYTES + 1) if f is not None else b"")
    except DecodeError:
        raise Rejected(Reason.MALFORMED, f"{source.name}: {HELD_KEYS} does not parse", field="backup") from None
    return {k.message_id: k.wrap for k in held.keys}


class _Check:
    """Each envelope of the predecessor's history before it is written; its content key wrapped for us."""

    def __init__(self, predecessor: str, own: str, successor_of: Callable[[str], str | None],
                 theirs: SealKey | None, ours: SealKey | None, offered: dict[str, bytes]) -> None:
        self.predecessor, self.own, self.successor_of = predecessor, own, successor_of
        self.theirs, self.ours = theirs, ours
        self.offered = offered  # content keys the predecessor wrapped for us itself (a hand-over)
        self.sealed_to_them = self.opened = self.kept_sealed = 0
        self.their_published: set[bytes] = set()  # the seal key its own sealed sends carry (signed by it)

    def _theirs(self, code: str) -> bool:
        """The predecessor, or an agency retired into it (a takeover it made itself)."""
        return code == self.predecessor or (code != self.own and self.successor_of(code) == self.own)

    def __call__(self, e: store.Envelope) -> bytes | None:
        try:
            env = pb.Envelope.FromString(e.raw)
            header = pb.Header.FromString(env.header)
        except DecodeError:
            raise Rejected(Reason.MALFORMED, f"{e.role} envelope {e.message_id[:64]!r} of the backup does not parse",
                           field="backup") from None
        party = header.recipient if e.role == "received" else header.sender
        if header.message_id != e.message_id or not self._theirs(party):
            raise Rejected(Reason.MALFORMED, f"{e.role} envelope {e.message_id[:64]!r} of the backup is not "
                           f"{'addressed to' if e.role == 'received' else 'sent by'} {self.predecessor}",
                           field="backup")
        if header.seal != pb.SEALED_P256_AES256GCM:
            return None
        try:
            sealed = sealing.parse(env.payload)
        except Rejected:
            raise Rejected(Reason.MALFORMED, f"{e.role} envelope {e.message_id[:64]!r} of the backup: its sealed "
                           "payload does not parse", field="backup") from None
        if e.role == "sent" and sealed.sender_key:
            self.their_published.add(sealed.sender_key)
        self.sealed_to_them += 1
        handed = self.offered.get(e.message_id)
        if handed is not None and self.ours is not None:
            try:  # it opens the content its sender signed, or it is no key of this envelope's
                sealing.held_content_key(env.payload, header, handed, [self.ours])
                return handed
            except Rejected:
                pass
        if self.theirs is None or self.ours is None or \
                self.theirs.key_id not in {w.key_id for w in sealed.wraps}:
            self.kept_sealed += 1
            return None
        try:
            key = sealing.content_key(env.payload, header, self.theirs)
        except Rejected:
            self.kept_sealed += 1  # its wrap names the key but does not open: kept as it came, sealed
            return None
        self.opened += 1
        return sealing.rewrap(env.payload, header, key, self.ours)

    def key_matched(self) -> None:
        if self.theirs is None:
            return
        published = self.their_published and self.theirs.public_der not in self.their_published
        if published or (self.sealed_to_them and not self.opened):
            raise Rejected(Reason.TAKEOVER_SEAL_KEY, f"the seal key given is not {self.predecessor}'s: it opens none "
                           f"of the {self.sealed_to_them} envelopes sealed to it" if not published else
                           f"the seal key given is not the one {self.predecessor} published in its sealed sends",
                           field="seal_key")


# ---- over the network: the retiring node hands its mailbox over (lienthong retire --hand-over) -------------

CHUNK = 1 << 20                  # bytes of the file per HandOver call
LAST_CHUNK_TIMEOUT_S = 3000.0    # the last call waits for the successor's takeover (checks, keys, one transaction),
                                 # within the hour `lienthong retire --hand-over` waits (cli.LONG_CALL_S)
CHUNK_TIMEOUT_S = 30.0


def held_keys_for(mailbox: Path, opening: list[SealKey], successor_der: bytes) -> bytes:
    """HeldKeys for our own history: each envelope sealed to us (or by us, for ourselves), its content key opened
    with our keys and wrapped for the successor's published seal key. What we cannot open is left out (the
    successor keeps it sealed)."""
    pred = store.Predecessor(mailbox)
    out = rpb.HeldKeys()
    try:
        for e in pred.envelopes():
            env = pb.Envelope.FromString(e.raw)
            header = pb.Header.FromString(env.header)
            if header.seal != pb.SEALED_P256_AES256GCM:
                continue
            try:
                key = sealing.content_key(env.payload, header, sealing.key_for(env.payload, opening))
            except Rejected:
                continue
            out.keys.add(message_id=e.message_id, wrap=sealing.wrap_for(env.payload, header, key, successor_der))
    finally:
        pred.close()
    return out.SerializeToString()


def with_held_keys(path: Path, keys_pb: bytes) -> None:
    """Add the content keys to a backup file, beside its signed members (a restore reads none of it)."""
    with tarfile.open(path, mode="a", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(HELD_KEYS)
        info.size, info.mode = len(keys_pb), 0o600
        tar.addfile(info, io.BytesIO(keys_pb))


def send(call: Callable[[rpb.HandOverChunk, float], rpb.HandOverResponse], path: Path) -> rpb.HandOverResponse:
    """The file, chunk by chunk, in order, through `call` (one HandOver to the successor); the last answer."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    total, digest, offset = path.stat().st_size, h.hexdigest(), 0
    answer = rpb.HandOverResponse()
    with open(path, "rb") as f:
        while offset < total or total == 0:
            data = f.read(CHUNK)
            last = offset + len(data) >= total
            answer = call(rpb.HandOverChunk(backup_sha256=digest, offset=offset, data=data, total=total),
                          LAST_CHUNK_TIMEOUT_S if last else CHUNK_TIMEOUT_S)
            offset += len(data)
            if answer.received != offset and not answer.done:
                raise Rejected(Reason.UNREACHABLE, f"the successor holds {answer.received} bytes of the file, {offset} "
                               "were sent: hand it over again")
            if last:
                break
    return answer


HANDOVER_IDLE_S = 3600  # a transfer that has had no chunk for this long is dropped, its file removed


@dataclass
class _Transfer:
    """One predecessor's transfer in progress: what it said it sends, what came, its digest so far."""
    sha256: str
    total: int
    received: int
    digest: "hashlib._Hash"  # of the bytes received: checked at the last chunk without reading the file again
    last_ms: int


class HandOvers:
    """The successor's side: files handed over by predecessors, one transfer per predecessor at a time, kept in
    the data directory until the last chunk, then taken over with the same checks as a backup file.

    A transfer lives in memory (a restart drops it: the predecessor starts again at offset 0), so a file left by an
    earlier run is removed at start; one a predecessor abandoned is removed once it has been idle for
    HANDOVER_IDLE_S, when any other chunk comes (only predecessors send any)."""

    PATTERN = ".handover-*.tar"

    def __init__(self, code: str, takeovers: Takeovers, successor_of: Callable[[str], str | None],
                 data_dir: Path) -> None:
        self.code, self.takeovers, self.successor_of, self.data_dir = code, takeovers, successor_of, data_dir
        self._lock = threading.Lock()
        self._open: dict[str, _Transfer] = {}  # predecessor -> its transfer in progress
        for left in Path(data_dir).glob(".handover-*"):  # an earlier run's: no transfer holds it now
            if left.is_dir():  # a retiring node's work directory (hand_over), left by a crash
                shutil.rmtree(left, ignore_errors=True)
            else:
                left.unlink(missing_ok=True)

    def _path(self, caller: str) -> Path:
        return self.data_dir / f".handover-{hashlib.sha256(caller.encode()).hexdigest()[:16]}.tar"

    def _drop_idle(self, now_ms: int) -> None:
        """Transfers abandoned by their predecessor: forgotten and their files removed (lock held)."""
        for caller, t in list(self._open.items()):
            if now_ms - t.last_ms > HANDOVER_IDLE_S * 1000:
                del self._open[caller]
                self._path(caller).unlink(missing_ok=True)
                log.info("dropped %s's hand-over: no chunk for %d s (%d of %d bytes came)", caller,
                         HANDOVER_IDLE_S, t.received, t.total)

    def take(self, caller: str | None, chunk: rpb.HandOverChunk) -> rpb.HandOverResponse:
        successor = self.successor_of(caller) if caller else None
        if successor != self.code:  # before a byte is kept: only our predecessors hand anything over
            raise Rejected(Reason.TAKEOVER_NOT_PREDECESSOR, f"{caller or 'a plain-text peer'} is not a predecessor of "
                           f"{self.code}", metadata={"successor": successor or ""})
        assert caller is not None
        limit = MAX_DATABASE_BYTES + MAX_HELD_KEYS_BYTES + (4 << 20)
        if chunk.total > limit:
            raise _too_large("bytes handed over", chunk.total, limit)
        if len(chunk.data) > CHUNK:
            raise _too_large("bytes in one chunk", len(chunk.data), CHUNK)
        if len(chunk.backup_sha256) != 64 or any(c not in "0123456789abcdef" for c in chunk.backup_sha256):
            raise Rejected(Reason.INVALID_REQUEST, "a SHA-256 in lower-case hex", field="backup_sha256")
        path = self._path(caller)
        now = self.takeovers.clock.now_ms()
        with self._lock:
            self._drop_idle(now)
            held = self._open.get(caller)
            if chunk.offset == 0:
                held = _Transfer(chunk.backup_sha256, chunk.total, 0, hashlib.sha256(), now)
                path.unlink(missing_ok=True)
            elif held is None or (held.sha256, held.total) != (chunk.backup_sha256, chunk.total) \
                    or held.received != chunk.offset:
                raise Rejected(Reason.INVALID_REQUEST, f"offset {chunk.offset}: this node holds "
                               f"{held.received if held else 0} bytes of that transfer; start again at 0",
                               field="offset")
            if held.received + len(chunk.data) > chunk.total:
                raise _too_large("bytes handed over", held.received + len(chunk.data), chunk.total)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                with os.fdopen(fd, "ab") as f:
                    f.write(chunk.data)
            except OSError:  # part of it may be in the file: the transfer starts again at 0
                self._open.pop(caller, None)
                path.unlink(missing_ok=True)
                raise
            held.digest.update(chunk.data)
            held.received += len(chunk.data)
            held.last_ms = now
            self._open[caller] = held
            if held.received < chunk.total:
                return rpb.HandOverResponse(received=held.received)
            del self._open[caller]
            # the whole file, under a name of its own: the predecessor may start again at 0 while this is taken
            # over (its last call timed out), and that must neither cut this file nor lose its own
            whole = path.with_name(f"{path.stem}-{secrets.token_hex(4)}.tar")
            path.rename(whole)
        try:
            if held.digest.hexdigest() != chunk.backup_sha256:
                raise Rejected(Reason.INVALID_REQUEST, "the file handed over is not the one its SHA-256 names: "
                               "start again at 0", field="backup_sha256")
            done = self.takeovers.take(whole, None, expect=caller)
        finally:
            whole.unlink(missing_ok=True)
        i = done.imported
        return rpb.HandOverResponse(received=chunk.total, done=True, inbox=i.inbox, sent=i.sent, resealed=i.resealed,
                                    kept_sealed=done.kept_sealed, already=i.already)


def hand_over(settings, db: Database, mailbox: Path, directory, transport, opening: list[SealKey],
              work_dir: Path) -> tuple[str, rpb.HandOverResponse]:
    """On a retiring, drained node: back its mailbox up, add the content keys wrapped for the successor's published
    seal key, and send it to the successor (HandOver), which takes it over. (successor, its last answer)."""
    from .transport.interface import Peer, TransportError  # the transport is this function's alone here
    retiring = retirement.successor(db)
    if retiring is None:
        raise Rejected(Reason.NOT_RETIRING, "this node is not retiring (lienthong retire --to CODE): it hands its "
                       "mailbox over to the successor it retires into")
    left = retirement.left(db)
    if left.queued:
        raise Rejected(Reason.TAKEOVER_NOT_DRAINED, f"{left.queued} envelopes still wait to leave this node: hand "
                       "its mailbox over once drained (lienthong retire --status)", metadata={"count": str(left.queued)})
    successor = retiring[0]
    entry = directory.lookup(successor)
    record = rpb.AgencyRecord.FromString(entry.record.record) if entry.HasField("record") else None
    if record is None or not record.endpoint:
        raise Rejected(Reason.UNREACHABLE, f"{successor} publishes no endpoint to hand the mailbox over to")
    work = Path(tempfile.mkdtemp(prefix=".handover-", dir=work_dir))
    try:
        path, _, _ = backup.backup(settings, work)
        if record.seal_key:
            with_held_keys(path, held_keys_for(mailbox, opening, record.seal_key))
        peer = Peer(successor, record.endpoint)

        def call(chunk: rpb.HandOverChunk, timeout: float) -> rpb.HandOverResponse:
            try:
                return transport.hand_over(peer, chunk, timeout)
            except TransportError as e:
                if e.refused is not None:
                    raise e.refused from None
                raise Rejected(Reason.UNREACHABLE, f"{successor} at {record.endpoint}: {e.what}") from None
        answer = send(call, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("handed this node's mailbox over to %s: %d received and %d sent envelopes new there", successor,
             answer.inbox, answer.sent)
    return successor, answer
