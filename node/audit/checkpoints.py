"""Signed checkpoints of the audit chain head, anchored at the parent.

A node signs {code, seq, head hash, time} with its agency key on a schedule
(`audit.checkpoint_every`), keeps it, and hands it to its parent (registry `Checkpoint`).
The parent checks the signature against the certificate the child registered with and
keeps each child's checkpoints, one per seq, never replaced (the newest 10,000; one below
the latest is not stored): a second one at a seq it holds with another head is refused
(CHECKPOINT_CONFLICT) and logged. A restore checkpoint (node/audit/restore.py) starts a new
branch of them: the history the restore gave up is kept, the restore recorded. Whoever
holds a node's file can rewrite its chain and its own checkpoints, but not the copy at
its parent, nor sign for a head it never had without the node's key: `lienthong audit
verify` compares the chain with both (as X-Road's signed message log, anchored in the
tree instead of a timestamping authority).
"""
from __future__ import annotations

import logging
from typing import Callable

from google.protobuf.message import DecodeError

from .. import events, logs
from ..clock import Clock
from ..codes import is_identifier
from ..envelope import MAX_CLOCK_SKEW_MS, Signer
from ..errors import Reason, Rejected, bounded, too_large
from ..events import EventSink, NoEvents
from ..identity import signed as signed_
from ..identity.trust import TrustStore
from ..pb import registry_pb2 as rpb
from ..store import audit as store
from ..store import registry as registry_store
from ..store.database import Database

log = logging.getLogger(__name__)

HASH_SIZE = 32
MAX_RESTORES_SHOWN = 20  # the latest restores a child is told of (each ~1.6 KB)
MAX_SIGNED = 8192  # a signed checkpoint is ~0.8 KB with its certificate; a peer's bigger one is refused unread


MAX_BACKUP_NAME = 300  # what a restore checkpoint says of its backup: a file name and a SHA-256


def make(signer: Signer, seq: int, head: bytes, now_ms: int, *, restored_from: tuple[int, bytes] | None = None,
         backup: str = "") -> rpb.SignedCheckpoint:
    """A checkpoint of the head (seq, head); `restored_from` (the backup's last seq and hash) makes it the
    restore checkpoint of the `restored` row at `seq` (node/audit/restore.py)."""
    body = rpb.CheckpointBody(code=signer.code, seq=seq, head=head, time_ms=now_ms)
    if restored_from is not None:
        body.restored_from_seq, body.restored_from_head = restored_from
        body.backup = backup[:MAX_BACKUP_NAME]
    raw = body.SerializeToString()
    mark = signed_.sign(signer, raw)
    return rpb.SignedCheckpoint(body=raw, signature=mark.signature, cert_der=mark.cert_der)


def is_restore(body: rpb.CheckpointBody) -> bool:
    """A restore checkpoint names the backup's last hash (32 bytes, zeros for an empty backup)."""
    return bool(body.restored_from_head)


def verify(signed: rpb.SignedCheckpoint, trust: TrustStore, *, code: str, check_validity: bool = True,
           cert_der: bytes | None = None) -> rpb.CheckpointBody:
    """The body of a checkpoint `code` signed (with `cert_der`, when given: the certificate it registered)."""
    if signed.ByteSize() > MAX_SIGNED:
        raise too_large("checkpoint", signed.ByteSize(), MAX_SIGNED)
    if cert_der is not None and signed.cert_der != cert_der:
        raise Rejected(Reason.BAD_SIGNATURE, f"checkpoint is not signed with the certificate {code} registered")
    signed_.check(trust, signed.cert_der, signed.signature, signed.body, signer=code, check_validity=check_validity,
                  wrong_signer=lambda i: Rejected(Reason.SENDER_MISMATCH, f"checkpoint for {code} signed by {i.code}"),
                  bad_signature=lambda: Rejected(Reason.BAD_SIGNATURE, "checkpoint signature does not verify"))
    try:
        body = rpb.CheckpointBody.FromString(signed.body)
    except DecodeError:
        raise Rejected(Reason.MALFORMED, "checkpoint body does not parse") from None
    if body.code != code:
        raise Rejected(Reason.SENDER_MISMATCH, f"checkpoint body is for {body.code[:40]!r}, not {code}")
    if body.seq < 1 or len(body.head) != HASH_SIZE:
        raise Rejected(Reason.INVALID_REQUEST, "checkpoint needs a seq >= 1 and a 32-byte head",
                       field="body.seq" if body.seq < 1 else "body.head")
    if is_restore(body) or body.restored_from_seq or body.backup:
        if body.restored_from_seq + 1 != body.seq or len(body.restored_from_head) != HASH_SIZE:
            raise Rejected(Reason.INVALID_REQUEST, "a restore checkpoint covers the row right after the backup's "
                                                   "last (seq = restored_from_seq + 1) and names its 32-byte hash",
                           field="body.restored_from_seq")
        if len(body.backup) > MAX_BACKUP_NAME or not body.backup.isprintable():
            raise Rejected(Reason.INVALID_REQUEST, f"a restore checkpoint names its backup in at most "
                                                   f"{MAX_BACKUP_NAME} printable characters", field="body.backup",
                           metadata={"limit": str(MAX_BACKUP_NAME)})
    return body


class Checkpointer:
    """This node's side: sign the head when it moved, keep it, hand the latest to the parent until it took it."""

    def __init__(self, db: Database, signer: Signer, clock: Clock,
                 send: Callable[[rpb.SignedCheckpoint], None] | None = None, events_: EventSink = NoEvents(),
                 parent: str = "") -> None:
        self.db, self.signer, self.clock, self.send, self.events, self.parent = db, signer, clock, send, events_, parent

    def tick(self) -> int:
        """Checkpoint the head if it moved since the last one; return the seq of the latest checkpoint (0: none).

        A restore checkpoint the parent has not taken goes first: until the parent has it, a later checkpoint
        of the restored chain would contradict what it kept of the history before the restore."""
        seq, head = store.head(self.db)
        latest = store.latest_checkpoint(self.db)
        if seq and (latest is None or latest["seq"] < seq):
            now = self.clock.now_ms()
            signed = make(self.signer, seq, head, now)
            store.add_checkpoint(self.db, seq, head, now, signed.SerializeToString())
            latest = store.latest_checkpoint(self.db)
        if latest is None:
            return 0
        if self.send is not None:
            for row in [*store.unsent_restores(self.db), latest]:
                if row["parent_ms"] is None and not self._hand_over(row):
                    break
        return latest["seq"]

    def _hand_over(self, row: dict) -> bool:
        try:
            self.send(rpb.SignedCheckpoint.FromString(row["signed"]))
        except Rejected as r:
            log.log(logging.WARNING if r.reason.permanent else logging.INFO,
                    "audit checkpoint at seq %d not taken by the parent: %s", row["seq"], r.public_text,
                    extra=logs.fields(agency=self.parent, reason=r.reason))
            return False
        store.mark_checkpoint_sent(self.db, row["seq"], self.clock.now_ms())
        self.events.emit(events.CHECKPOINT, peer=self.parent, seq=row["seq"], time_ms=self.clock.now_ms())
        return True


class Keeper:
    """The parent's side: children's checkpoints, checked against their registered certificates."""

    def __init__(self, db: Database, trust: TrustStore, clock: Clock, events_: EventSink = NoEvents()) -> None:
        self.db, self.trust, self.clock, self.events = db, trust, clock, events_

    def take(self, signed: rpb.SignedCheckpoint, peer: str | None) -> rpb.CheckpointResponse:
        code = _claimed_code(signed)
        if peer is not None and peer != code:
            raise Rejected(Reason.SENDER_MISMATCH, f"connection is from {peer}, checkpoint is for {code}")
        child = registry_store.get(self.db, code)
        if child is None:
            raise Rejected(Reason.UNKNOWN_RECIPIENT, f"{code} is not registered here")
        registered_cert = rpb.AgencyRecord.FromString(child.record).cert_der
        body = verify(signed, self.trust, code=code, cert_der=registered_cert)
        if body.time_ms > self.clock.now_ms() + MAX_CLOCK_SKEW_MS:
            raise Rejected(Reason.BAD_TIME, f"checkpoint time {body.time_ms} is ahead of this node's clock")
        if is_restore(body):
            return self._take_restore(code, body, signed)
        earlier = store.keep_child_checkpoint(self.db, code, body.seq, body.head, body.time_ms,
                                              signed.SerializeToString(), self.clock.now_ms())
        if earlier is not None and earlier["head"] != body.head:
            log.warning("audit checkpoint of %s at seq %d refused: another head was checkpointed at that seq "
                        "before (%s, now %s)", code, body.seq, earlier["head"].hex()[:16], body.head.hex()[:16],
                        extra=logs.fields(agency=code, reason=Reason.CHECKPOINT_CONFLICT))
            raise Rejected(Reason.CHECKPOINT_CONFLICT,
                           f"{code} checkpointed seq {body.seq} before with another head")
        if earlier is None:
            self.events.emit(events.CHECKPOINT_KEPT, peer=code, seq=body.seq, time_ms=self.clock.now_ms())
        return self._response(code, 0)

    def _take_restore(self, code: str, body: rpb.CheckpointBody, signed: rpb.SignedCheckpoint):
        """The child was restored from a backup and says so under its key: from here on its checkpoints are
        held against the restored chain (a new branch), and what the parent kept of the history the restore
        gave up stays, with the restore recorded. The restore must agree with what the parent holds at the
        backup's last seq: a backup of a history the parent never saw is a conflict, not a restore."""
        outcome, row = store.keep_child_restore(self.db, code, body.seq, body.head, body.restored_from_seq,
                                                body.restored_from_head, body.time_ms, signed.SerializeToString(),
                                                self.clock.now_ms())
        if outcome == "conflict":
            log.warning("audit restore of %s refused: it names seq %d with head %s, the checkpoint kept at that seq "
                        "says %s", code, body.restored_from_seq, body.restored_from_head.hex()[:16],
                        row["head"].hex()[:16], extra=logs.fields(agency=code, reason=Reason.CHECKPOINT_CONFLICT))
            raise Rejected(Reason.CHECKPOINT_CONFLICT, f"{code}'s restore names seq {body.restored_from_seq} with "
                                                       "another head than the checkpoint kept at that seq")
        if outcome == "over":
            raise Rejected(Reason.OVER_LIMIT, f"{code} declared {store.MAX_RESTORES_PER_CHILD} restores already",
                           field="restored_from_seq", metadata={"limit": str(store.MAX_RESTORES_PER_CHILD),
                                                              "count": str(store.MAX_RESTORES_PER_CHILD + 1)})
        if outcome == "taken":
            lost = (f"its checkpoint at seq {row['seq']} of the history before (kept) covers rows "
                    f"{body.restored_from_seq + 1}..{row['seq']} that the restore gave up"
                    if row and row["seq"] > body.restored_from_seq else "no checkpoint kept here is past the backup")
            log.warning("audit: %s was restored from a backup (%s): its chain goes on from seq %d; %s", code,
                        bounded(body.backup, MAX_BACKUP_NAME), body.restored_from_seq, lost,
                        extra=logs.fields(agency=code))
            self.events.emit(events.CHECKPOINT_KEPT, peer=code, seq=body.seq, time_ms=self.clock.now_ms())
        return self._response(code, 0)

    def latest_for(self, code: str, peer: str | None, seq: int) -> rpb.CheckpointResponse:
        """Only the child itself may ask (over mutual TLS, or plain text in tests)."""
        if not is_identifier(code):
            raise Rejected(Reason.INVALID_REQUEST, f"{code[:40]!r} is not an agency code", field="code")
        if peer is not None and peer != code:
            raise Rejected(Reason.SENDER_MISMATCH, f"connection is from {peer}, asking for {code}'s checkpoints")
        return self._response(code, seq)

    def _response(self, code: str, seq: int) -> rpb.CheckpointResponse:
        out = rpb.CheckpointResponse()
        for r in store.child_restores(self.db, code, MAX_RESTORES_SHOWN):
            record = out.restores.add(received_ms=r["received_ms"])
            record.restore.ParseFromString(r["signed"])
            if r["superseded"] is not None:
                record.superseded.ParseFromString(r["superseded"])
        latest = store.child_checkpoint(self.db, code)
        if latest is not None:
            out.latest.ParseFromString(latest["signed"])
        if seq:
            at = store.child_checkpoint(self.db, code, seq)
            if at is not None:
                out.at_seq.ParseFromString(at["signed"])
        return out


def _claimed_code(signed: rpb.SignedCheckpoint) -> str:
    if signed.ByteSize() > MAX_SIGNED:
        raise too_large("checkpoint", signed.ByteSize(), MAX_SIGNED)
    try:
        code = rpb.CheckpointBody.FromString(signed.body).code
    except DecodeError:
        raise Rejected(Reason.MALFORMED, "checkpoint body does not parse") from None
    if not is_identifier(code):
        raise Rejected(Reason.MALFORMED, "checkpoint body names no agency code", field="body.code")
    return code
