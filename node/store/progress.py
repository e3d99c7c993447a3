"""Where each received document stands (recipient side): its status, a pending request, its state.

`state` is `active`, or what the sender did to it (`revoked`, `updated`, `replaced`),
or `taken_back` once the agency agreed (15) to a take-back. `pending_request` holds a
take-back (13) or the change type ("1"/"2"/"3") awaiting the agency's 15 or 16.
"""
from __future__ import annotations

from dataclasses import dataclass

from .database import Database


@dataclass(frozen=True)
class Progress:
    message_id: str
    sender: str
    status: str                   # the latest status reported on it, "" before the automatic 01
    pending_request: str | None
    state: str
    changed_by: str | None        # message id of the change that set `state`
    document_id: str


def record_arrival(conn, message_id: str, sender: str, document_id: str) -> None:
    conn.execute("INSERT OR IGNORE INTO doc_progress (message_id, sender, document_id) VALUES (?,?,?)",
                 (message_id, sender, document_id))


def record_change(conn, original: str, state: str, change_message_id: str, request: str) -> None:
    """The sender revoked, updated or replaced `original`: the agency is asked to agree (15) or refuse (16)."""
    conn.execute("UPDATE doc_progress SET state = ?, changed_by = ?, pending_request = ? WHERE message_id = ?",
                 (state, change_message_id, request, original))


def record_request(conn, message_id: str, request: str) -> None:
    conn.execute("UPDATE doc_progress SET pending_request = ? WHERE message_id = ?", (request, message_id))


def settle_request(conn, message_id: str, new_state: str | None) -> None:
    """The agency answered the pending request; `new_state` (or None to keep it) is where that leaves the document."""
    conn.execute("UPDATE doc_progress SET pending_request = NULL, state = coalesce(?, state) WHERE message_id = ?",
                 (new_state, message_id))


def record_status(conn, message_id: str, code: str) -> None:
    conn.execute("UPDATE doc_progress SET status = ? WHERE message_id = ?", (code, message_id))


def get(db: Database, message_id: str) -> Progress | None:
    row = db.query_one("SELECT * FROM doc_progress WHERE message_id = ?", (message_id,))
    return Progress(**row) if row else None


def originals(db: Database, document_id: str, limit: int = 2, sender: str = "") -> list[str]:
    """Message ids of the original documents received with this DocumentId, newest first (changes are not targets);
    `sender`: only those from that agency."""
    rows = db.query(
        "SELECT p.message_id FROM doc_progress p JOIN inbox USING (message_id)"
        " WHERE p.document_id = ? AND inbox.business_doc_type = 0 AND (? = '' OR inbox.sender = ?)"
        " ORDER BY inbox.seq DESC LIMIT ?",
        (document_id, sender, sender, limit))
    return [r["message_id"] for r in rows]
