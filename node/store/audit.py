"""The custody log: append-only by trigger, and tamper-evident by a hash chain (node/audit/chain.py).

Each row carries its seq, the previous row's hash and its own; rows are appended inside the
transaction that did what they record, under the database lock, so reading the head and
appending after it cannot interleave with another writer. The triggers stop a slip, not an
admin with the file: the chain and the signed checkpoints (below) make an edit show.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Iterator

from ..audit.chain import GENESIS, Row, chain
from ..escaping import escape
from .database import Database, StoreError  # noqa: F401 - StoreError: what ReadOnly raises, for callers

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
    seq, head = _head(conn)
    conn.executemany(f"INSERT INTO audit ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
                     list(chain((_row(*r) for r in rows), seq, head)))


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


# ---- children's checkpoints, kept by their parent ----------------------------------------

def child_checkpoint(db: Database, code: str, seq: int | None = None) -> dict | None:
    """The child's checkpoint at `seq`, or its latest (highest seq)."""
    if seq is None:
        return db.query_one("SELECT * FROM child_checkpoint WHERE code = ? ORDER BY seq DESC LIMIT 1", (code,))
    return db.query_one("SELECT * FROM child_checkpoint WHERE code = ? AND seq = ?", (code, seq))


MAX_KEPT_PER_CHILD = 10_000  # a child that sends checkpoints in a loop fills no disk: the oldest go first


def keep_child_checkpoint(db: Database, code: str, seq: int, head_hash: bytes, time_ms: int, signed: bytes,
                          now_ms: int) -> dict | None:
    """Store a child's checkpoint if its seq is above the latest kept; return the one kept before at that seq
    (the caller compares them), or None. A lower seq never kept is not stored: the latest stays the latest."""
    with db.transaction() as tx:
        row = tx.execute("SELECT head, signed FROM child_checkpoint WHERE code = ? AND seq = ?", (code, seq)).fetchone()
        if row is not None:
            return {"head": row[0], "signed": row[1]}
        latest = tx.execute("SELECT max(seq) FROM child_checkpoint WHERE code = ?", (code,)).fetchone()[0]
        if latest is not None and seq < latest:
            return None
        tx.execute("INSERT INTO child_checkpoint (code, seq, head, time_ms, signed, received_ms) VALUES (?,?,?,?,?,?)",
                   (code, seq, head_hash, time_ms, signed, now_ms))
        tx.execute("DELETE FROM child_checkpoint WHERE code = ? AND seq NOT IN"
                   " (SELECT seq FROM child_checkpoint WHERE code = ? ORDER BY seq DESC LIMIT ?)",
                   (code, code, MAX_KEPT_PER_CHILD))
        return None


# ---- reading a mailbox file from outside the node (lienthong audit verify) ----------------

class ReadOnly:
    """A read-only connection of its own to a mailbox a node may be running on (WAL lets both work);
    the whole walk is one read transaction, so it sees the log as of one commit."""

    def __init__(self, mailbox: Path) -> None:
        self.conn = sqlite3.connect(f"{Path(mailbox).resolve().as_uri()}?mode=ro", uri=True, timeout=30)
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
