"""The custody log: append-only by trigger, and tamper-evident by a hash chain (node/audit/chain.py).

Each row carries its seq, the previous row's hash and its own; rows are appended inside the
transaction that did what they record, under the database lock, so reading the head and
appending after it cannot interleave with another writer. The triggers stop a slip, not an
admin with the file: the chain and the signed checkpoints (below) make an edit show.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..audit.chain import GENESIS, Row, chain
from ..escaping import escape
from .database import Database, StoreError, Transaction, open_read_only  # noqa: F401 - StoreError: what ReadOnly raises, for callers

SENT = "sent"
DELIVERED = "delivered"
RECEIVED = "received"
DUPLICATE = "duplicate"
REJECTED_IN = "rejected_in"      # we refused an envelope
REJECTED_OUT = "rejected_out"    # a peer refused ours (permanent)
EXPIRED = "expired"
RETRY = "retry"
PURGED = "purged"                # an operator removed a queued envelope (detail: their reason)
HELD = "held"                    # an operator held a next hop (peer), or released it ("released")
RELEASED = "released"
RESTORED = "restored"            # the mailbox was restored from a backup (detail: which, and the last row it
                                 # holds); a signed restore checkpoint at this row declares it (node/audit/restore.py)
RETIRING = "retiring"            # the operator began retiring this node into its successor (peer: the successor)
TAKEOVER = "takeover"            # this node took over a retired predecessor's mailbox (peer: the predecessor;
                                 # detail: what it took, from which backup)


MAX_ID, MAX_DETAIL = 128, 1000  # what a row keeps of a message id and a detail a peer chose (a refused
                                # envelope's id is whatever its bytes say; a peer's refusal text is its own)

COLUMNS = "seq, time_ms, event, message_id, peer, detail, prev_hash, hash"


def _row(time_ms: int, event: str, message_id: str, peer: str, detail: str) -> tuple[int, str, str, str, str]:
    """Bounded, and escaped (node.escaping): whoever reads the audit table reads no one's control characters."""
    return (time_ms, event, escape((message_id or "")[:MAX_ID])[:MAX_ID], escape((peer or "")[:MAX_ID])[:MAX_ID],
            escape((detail or "")[:MAX_DETAIL])[:MAX_DETAIL])


def _head(conn) -> tuple[int, bytes]:
    row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else (0, GENESIS)


def append(conn, time_ms: int, event: str, message_id: str = "", peer: str = "", detail: str = "") -> None:
    append_many(conn, [(time_ms, event, message_id, peer, detail)])


def append_many(conn, rows: list[tuple[int, str, str, str, str]]) -> None:
    """(time_ms, event, message_id, peer, detail) rows, chained after the head, in one statement.
    Call inside a transaction (every caller does): the head read and the insert must be one unit."""
    if not rows:
        return
    kept = isinstance(conn, Transaction)  # a Transaction keeps the head it wrote (node.store.database)
    seq, head = (conn.audit_head if kept else None) or _head(conn)
    chained = list(chain((_row(*r) for r in rows), seq, head))
    if kept:
        conn.audit_head = None  # until these rows are in: a statement failing part-way leaves it to be read again
    conn.executemany(f"INSERT INTO audit ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?)", chained)
    if kept:
        conn.audit_head = (chained[-1][0], chained[-1][-1])


def head(db: Database) -> tuple[int, bytes]:
    """(seq, hash) of the last row; (0, GENESIS) for an empty log."""
    row = db.query_one("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
    return (row["seq"], row["hash"]) if row else (0, GENESIS)


def recent(db: Database, limit: int = 100, event: str | None = None) -> list[dict]:
    if event:
        return db.query("SELECT * FROM audit WHERE event = ? ORDER BY seq DESC LIMIT ?", (event, limit))
    return db.query("SELECT * FROM audit ORDER BY seq DESC LIMIT ?", (limit,))


# ---- this node's own signed checkpoints ------------------------------------------------

def add_checkpoint(db: Database, seq: int, head_hash: bytes, time_ms: int, signed: bytes) -> None:
    with db.transaction() as tx:
        tx.execute("INSERT OR IGNORE INTO audit_checkpoint (seq, head, time_ms, signed) VALUES (?,?,?,?)",
                   (seq, head_hash, time_ms, signed))


def mark_checkpoint_sent(db: Database, seq: int, now_ms: int) -> None:
    with db.transaction(durable=False) as tx:
        tx.execute("UPDATE audit_checkpoint SET parent_ms = ? WHERE seq = ?", (now_ms, seq))


def latest_checkpoint(db: Database) -> dict | None:
    return db.query_one("SELECT * FROM audit_checkpoint ORDER BY seq DESC LIMIT 1")


def add_restore_checkpoint(conn, seq: int, head_hash: bytes, time_ms: int, signed: bytes, restored_from: int) -> None:
    """The signed checkpoint of a restore row, in the transaction that appended it."""
    conn.execute("INSERT INTO audit_checkpoint (seq, head, time_ms, signed, restored_from) VALUES (?,?,?,?,?)",
                 (seq, head_hash, time_ms, signed, restored_from))


def unsent_restores(db: Database) -> list[dict]:
    """Restore checkpoints the parent has not taken yet, oldest first: they go before any later checkpoint."""
    return db.query("SELECT * FROM audit_checkpoint WHERE restored_from IS NOT NULL AND parent_ms IS NULL"
                    " ORDER BY seq")


# ---- children's checkpoints, kept by their parent ----------------------------------------

# A child's checkpoints are kept per branch: 0 until its first restore, then one more per restore it declared
# (child_restore); the latest branch is the child's chain as it stands, the earlier ones what it gave up.
_BRANCH = "coalesce((SELECT max(branch) FROM child_restore WHERE code = ?), 0)"


def child_checkpoint(db: Database, code: str, seq: int | None = None) -> dict | None:
    """The child's checkpoint at `seq`, or its latest (highest seq), in its current branch."""
    if seq is None:
        return db.query_one(f"SELECT * FROM child_checkpoint WHERE code = ? AND branch = {_BRANCH}"
                            " ORDER BY seq DESC LIMIT 1", (code, code))
    return db.query_one(f"SELECT * FROM child_checkpoint WHERE code = ? AND branch = {_BRANCH} AND seq = ?",
                        (code, code, seq))


MAX_KEPT_PER_CHILD = 10_000  # a child that sends checkpoints in a loop fills no disk: the oldest go first
MAX_RESTORES_PER_CHILD = 1000  # nor one that declares restores in a loop


PRUNE_BATCH = 100  # rows past MAX_KEPT_PER_CHILD deleted with one checkpoint taken: the work of one is bounded


def _prune(tx, code: str) -> None:
    """The child's oldest checkpoints past MAX_KEPT_PER_CHILD go, PRUNE_BATCH at most with each one taken: a backlog
    (a lower bound, rows kept by an older version) shrinks over the next checkpoints, never in one long write
    under the database lock. Each take adds one row and removes up to PRUNE_BATCH, so the backlog only shrinks."""
    over = tx.execute("SELECT count(*) FROM child_checkpoint WHERE code = ?", (code,)).fetchone()[0] - MAX_KEPT_PER_CHILD
    if over > 0:
        tx.execute("DELETE FROM child_checkpoint WHERE rowid IN (SELECT rowid FROM child_checkpoint WHERE code = ?"
                   " ORDER BY branch, seq LIMIT ?)", (code, min(over, PRUNE_BATCH)))


def keep_child_checkpoint(db: Database, code: str, seq: int, head_hash: bytes, time_ms: int, signed: bytes,
                          now_ms: int) -> dict | None:
    """Store a child's checkpoint if its seq is above the latest kept (in its current branch); return the one
    kept before at that seq (the caller compares them), or None. A lower seq never kept is not stored: the
    latest stays the latest."""
    with db.transaction() as tx:
        branch = tx.execute(f"SELECT {_BRANCH}", (code,)).fetchone()[0]
        row = tx.execute("SELECT head, signed FROM child_checkpoint WHERE code = ? AND branch = ? AND seq = ?",
                         (code, branch, seq)).fetchone()
        if row is not None:
            return {"head": row[0], "signed": row[1]}
        latest = tx.execute("SELECT max(seq) FROM child_checkpoint WHERE code = ? AND branch = ?",
                            (code, branch)).fetchone()[0]
        if latest is not None and seq < latest:
            return None
        tx.execute("INSERT INTO child_checkpoint (code, branch, seq, head, time_ms, signed, received_ms)"
                   " VALUES (?,?,?,?,?,?,?)", (code, branch, seq, head_hash, time_ms, signed, now_ms))
        _prune(tx, code)
        return None


def keep_child_restore(db: Database, code: str, seq: int, head_hash: bytes, from_seq: int, from_head: bytes,
                       time_ms: int, signed: bytes, now_ms: int) -> tuple[str, dict | None]:
    """A child's restore checkpoint: a new branch from it, the current one kept as it is. Returns
    ("taken", the latest checkpoint of the branch given up or None), ("again", None) for the restore already
    taken, ("conflict", the kept checkpoint at `from_seq` whose head the restore contradicts) or ("over", None)."""
    with db.transaction() as tx:
        branch = tx.execute(f"SELECT {_BRANCH}", (code,)).fetchone()[0]
        same = tx.execute("SELECT 1 FROM child_restore WHERE code = ? AND branch = ? AND seq = ? AND head = ?",
                          (code, branch, seq, head_hash)).fetchone()
        if same is not None:
            return "again", None
        # the branch whose rows the backup's head is among: the latest that started at or before it (rows
        # before a branch's restore row are its parent branch's)
        owner = tx.execute("SELECT coalesce(max(branch), 0) FROM child_restore WHERE code = ? AND seq <= ?",
                           (code, from_seq)).fetchone()[0]
        at = tx.execute("SELECT seq, head, time_ms FROM child_checkpoint WHERE code = ? AND branch = ? AND seq = ?",
                        (code, owner, from_seq)).fetchone()
        if at is not None and at[1] != from_head:
            return "conflict", {"seq": at[0], "head": at[1], "time_ms": at[2]}
        if branch >= MAX_RESTORES_PER_CHILD:
            return "over", None
        latest = tx.execute("SELECT seq, time_ms, signed FROM child_checkpoint WHERE code = ? AND branch = ?"
                            " ORDER BY seq DESC LIMIT 1", (code, branch)).fetchone()
        tx.execute("INSERT INTO child_restore (code, branch, seq, head, signed, superseded, received_ms)"
                   " VALUES (?,?,?,?,?,?,?)", (code, branch + 1, seq, head_hash, signed, latest[2] if latest else None,
                                               now_ms))
        tx.execute("INSERT INTO child_checkpoint (code, branch, seq, head, time_ms, signed, received_ms)"
                   " VALUES (?,?,?,?,?,?,?)", (code, branch + 1, seq, head_hash, time_ms, signed, now_ms))
        _prune(tx, code)
        return "taken", ({"seq": latest[0], "time_ms": latest[1]} if latest else None)


def child_restores(db: Database, code: str, latest: int = MAX_RESTORES_PER_CHILD) -> list[dict]:
    """The `latest` restores a child declared here, oldest first (with the latest checkpoint each gave up)."""
    return db.query("SELECT * FROM (SELECT * FROM child_restore WHERE code = ? ORDER BY branch DESC LIMIT ?)"
                    " ORDER BY branch", (code, latest))


# ---- reading a mailbox file from outside the node (lienthong audit verify) ----------------

class ReadOnly:
    """A read-only connection of its own to a mailbox a node may be running on (WAL lets both work);
    the whole walk is one read transaction, so it sees the log as of one commit."""

    def __init__(self, mailbox: Path) -> None:
        self.conn = open_read_only(mailbox)
        self.conn.execute("BEGIN")

    def has_chain(self) -> bool:
        cols = {r[1] for r in self.conn.execute("PRAGMA table_info(audit)")}
        tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return "hash" in cols and "audit_checkpoint" in tables

    def rows(self) -> Iterator[Row]:
        for r in self.conn.execute(f"SELECT {COLUMNS} FROM audit ORDER BY seq"):
            yield Row(*r)

    def count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM audit").fetchone()[0]

    def checkpoints(self) -> list[dict]:
        cur = self.conn.execute("SELECT seq, head, time_ms, signed, parent_ms FROM audit_checkpoint ORDER BY seq")
        return [dict(zip(("seq", "head", "time_ms", "signed", "parent_ms"), r)) for r in cur]

    def close(self) -> None:
        self.conn.close()
