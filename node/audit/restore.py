"""A restore from a backup, declared in the audit chain instead of looking like tampering.

The rows a node wrote after its backup was taken are gone once the backup is restored; its
parent may hold checkpoints that cover some of them. Without a word, `audit verify` could
only call that a log cut short, and the parent would refuse the restored chain's
checkpoints at the seqs it holds. So `lienthong restore` appends a `restored` row naming the
backup (file, SHA-256, when it was made) and the last row it holds (seq and hash), and signs a
restore checkpoint of that row with the node's key (CheckpointBody.restored_from_seq/head,
backup). The parent takes it as the start of a new branch of the child's checkpoints, keeping
what it held of the history given up and recording the restore (node/audit/checkpoints.py);
`audit verify` reports the rows lost with the restore as such (node/audit/verify.py).

What stops "restore" from rewriting history: the restore checkpoint needs the node's key (one
written with the file alone does not verify and the gap is reported as tampering); it names
the backup's head, which must agree with any checkpoint the parent kept at that seq and with
every checkpoint of the chain before it; the parent never drops the checkpoints of the
history given up, and logs the restore. Someone holding the key could declare a restore to
drop rows, but not silently: the restore, its time and the rows it gave up are on record at
the parent.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..envelope import Signer
from ..store import audit as store
from ..store.database import Database
from . import checkpoints


@dataclass(frozen=True)
class Recorded:
    backup_seq: int   # the last row the backup holds
    seq: int          # the `restored` row


def record(mailbox: Path, signer: Signer, now_ms: int, backup: str) -> Recorded:
    """Append the `restored` row to the mailbox at `mailbox` (not yet in use by a node) and sign its restore
    checkpoint. `backup`: what names the backup (file name, SHA-256, when made)."""
    db = Database(mailbox)
    try:
        with db.transaction() as tx:
            backup_seq, backup_head = store.head(db)
            store.append(tx, now_ms, store.RESTORED, "", "", f"from backup {backup}; it holds the chain up to seq "
                                                             f"{backup_seq} (hash {backup_head.hex()})")
            seq, head = store.head(db)
            signed = checkpoints.make(signer, seq, head, now_ms, restored_from=(backup_seq, backup_head), backup=backup)
            store.add_restore_checkpoint(tx, seq, head, now_ms, signed.SerializeToString(), backup_seq)
    finally:
        db.close()
    return Recorded(backup_seq, seq)
