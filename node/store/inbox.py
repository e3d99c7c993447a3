"""The mailbox of envelopes addressed to this node's agency."""
from __future__ import annotations

from .database import Database, in_chunks

COLUMNS = ("inbox.seq, inbox.message_id, inbox.sender, kind, priority, subject, received_ms, acked_ms, ref_message_id,"
           " business_doc_type, coalesce(p.state, '') AS state, coalesce(p.changed_by, '') AS changed_by,"
           " coalesce(p.status, '') AS status, coalesce(p.pending_request, '') AS pending_request,"
           " coalesce(inbox.held_for, '') AS held_for")
FROM = "inbox LEFT JOIN doc_progress p ON p.message_id = inbox.message_id"


def add_in(conn, header, *, subject: str, now_ms: int, envelope: bytes, business_doc_type: int = 0) -> None:
    """Put an envelope into the mailbox: one received, or one the node made for itself (a notice)."""
    conn.execute(
        "INSERT INTO inbox (message_id, sender, kind, priority, subject, received_ms, ref_message_id, business_doc_type)"
        " VALUES (?,?,?,?,?,?,?,?)",
        (header.message_id, header.sender, header.kind, header.priority, subject, now_ms, header.ref_message_id,
         business_doc_type),
    )
    conn.execute("INSERT INTO inbox_envelope (message_id, raw) VALUES (?,?)", (header.message_id, envelope))


def list_entries(db: Database, *, only_new: bool = False, after_seq: int = 0, limit: int = 100,
                 kinds: tuple[int, ...] = ()) -> list[dict]:
    """Entries after `after_seq`, oldest first; `kinds`: only those (empty: all)."""
    where = "inbox.seq > ?" + (" AND acked_ms IS NULL" if only_new else "")
    params: list = [after_seq]
    if kinds:
        where += f" AND kind IN ({','.join('?' * len(kinds))})"
        params += kinds
    return db.query(f"SELECT {COLUMNS} FROM {FROM} WHERE {where} ORDER BY inbox.seq LIMIT ?", (*params, limit))


def count_new_by_kind(db: Database) -> dict[int, int]:
    """Entries not yet acknowledged, per kind."""
    return {r["kind"]: r["n"] for r in db.query("SELECT kind, count(*) AS n FROM inbox WHERE acked_ms IS NULL GROUP BY kind")}


def get(db: Database, message_id: str) -> dict | None:
    return db.query_one(f"SELECT {COLUMNS}, e.raw AS envelope FROM {FROM} JOIN inbox_envelope e"
                        " ON e.message_id = inbox.message_id WHERE inbox.message_id = ?", (message_id,))


def seq_in(conn, message_id: str) -> int:
    """The entry's seq (what ListInbox pages by), inside a transaction; 0 if there is none."""
    row = conn.execute("SELECT seq FROM inbox WHERE message_id = ?", (message_id,)).fetchone()
    return row[0] if row else 0


def seqs_of(db: Database, message_ids: list[str]) -> dict[str, int]:
    """message id -> its entry's seq (what ListInbox pages by), for the ones in the mailbox."""
    out: dict[str, int] = {}
    for chunk, marks in in_chunks(message_ids):
        out.update((r["message_id"], r["seq"]) for r in db.query(
            f"SELECT message_id, seq FROM inbox WHERE message_id IN ({marks})", chunk))
    return out


def envelope(db: Database, message_id: str) -> bytes | None:
    row = db.query_one("SELECT raw FROM inbox_envelope WHERE message_id = ?", (message_id,))
    return row["raw"] if row else None


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
