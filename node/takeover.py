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
import logging
import os
import tarfile
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
from .store import backup as backup_store
from .store import takeover as store
from .store.database import Database

log = logging.getLogger(__name__)

MAX_DATABASE_BYTES = 8 << 30   # a commune's years of mail are a few hundred MB; a province's a few GB
MAX_ROWS = 2_000_000           # inbox rows, and sent envelopes, each
MAX_SEAL_KEY_BYTES = 16 << 10  # a PEM P-256 key is ~250 bytes
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

    def take(self, source: Path, seal_key: Path | None = None) -> Result:
        with self._lock:
            return self._take(source, seal_key)

    # ---- the checks on the signed manifest --------------------------------------------------

    def _manifest(self, source: Path) -> tuple[backup.Manifest, bytes]:
        try:
            manifest, data, signature = backup.read_manifest(source)
        except backup.BackupError as e:
            raise Rejected(Reason.MALFORMED, str(e)[:300], field="backup") from None
        if not signature:
            raise Rejected(Reason.BACKUP_UNSIGNED, f"{source.name} has no {backup.SIGNATURE}: its content cannot be "
                           "trusted", field="backup")
        cert = backup._signer_of(manifest)
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

    def _extract(self, source: Path, manifest: backup.Manifest, to: Path) -> None:
        """The database member into `to`, no more than the manifest's size read, its digest checked."""
        h, done = hashlib.sha256(), 0
        with tarfile.open(source, mode="r:") as tar:
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

    def _take(self, source: Path, seal_key_path: Path | None) -> Result:
        manifest, _ = self._manifest(source)
        theirs = load_seal_key(seal_key_path) if seal_key_path is not None else None
        copy = self.data_dir / f".takeover-{manifest.sha256[:16]}.sqlite3"
        copy.unlink(missing_ok=True)  # a crash's leftover: never read
        try:
            self._extract(source, manifest, copy)
            try:
                pred = store.Predecessor(copy)
            except store.NotAMailbox as e:
                raise Rejected(Reason.MALFORMED, f"{source.name}: {e}", field="backup") from None
            try:
                return self._import(pred, manifest, theirs)
            finally:
                pred.close()
        finally:
            for leftover in (copy, Path(f"{copy}-journal")):
                leftover.unlink(missing_ok=True)

    def _import(self, pred: store.Predecessor, manifest: backup.Manifest, theirs: SealKey | None) -> Result:
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
        check = _Check(manifest.node, self.code, self.successor_of, theirs, self.seal_key())
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


class _Check:
    """Each envelope of the predecessor's history before it is written; its content key wrapped for us."""

    def __init__(self, predecessor: str, own: str, successor_of: Callable[[str], str | None],
                 theirs: SealKey | None, ours: SealKey | None) -> None:
        self.predecessor, self.own, self.successor_of = predecessor, own, successor_of
        self.theirs, self.ours = theirs, ours
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
