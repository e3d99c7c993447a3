"""The mailbox of envelopes addressed to this node's agency."""
from __future__ import annotations

from .database import Database

COLUMNS = "seq, message_id, sender, kind, priority, subject, received_ms, acked_ms"


def add_in(conn, header, *, subject: str, now_ms: int, envelope: bytes) -> None:
    """Put an envelope into the mailbox: one received, or one the node made for itself (a notice)."""
    conn.execute(
        "INSERT INTO inbox (message_id, sender, kind, priority, subject, received_ms) VALUES (?,?,?,?,?,?)",
        (header.message_id, header.sender, header.kind, header.priority, subject, now_ms),
    )
    conn.execute("INSERT INTO inbox_envelope (message_id, raw) VALUES (?,?)", (header.message_id, envelope))


def list_entries(db: Database, *, only_new: bool = False, after_seq: int = 0, limit: int = 100) -> list[dict]:
    where = "seq > ?" + (" AND acked_ms IS NULL" if only_new else "")
    return db.query(f"SELECT {COLUMNS} FROM inbox WHERE {where} ORDER BY seq LIMIT ?", (after_seq, limit))


def get(db: Database, message_id: str) -> dict | None:
    return db.query_one(f"SELECT {COLUMNS}, raw AS envelope FROM inbox JOIN inbox_envelope USING (message_id)"
                        " WHERE message_id = ?", (message_id,))


def ack(db: Database, message_id: str, now_ms: int) -> bool | None:
    """Mark downloaded. True if it was new, False if already acked, None if unknown."""
    with db.transaction() as conn:
        row = conn.execute("SELECT acked_ms FROM inbox WHERE message_id = ?", (message_id,)).fetchone()
        if row is None:
            return None
        if row[0] is not None:
            return False
        conn.execute("UPDATE inbox SET acked_ms = ? WHERE message_id = ?", (now_ms, message_id))
        return True


def count(db: Database, only_new: bool = False) -> int:
    where = " WHERE acked_ms IS NULL" if only_new else ""
    return db.query_one(f"SELECT count(*) AS n FROM inbox{where}")["n"]
