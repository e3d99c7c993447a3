"""Where each received document stands (recipient side): its status, a pending request, its state.

`state` is `active`, or what the sender did to it (`revoked`, `updated`, `replaced`),
or `taken_back` once the agency agreed (15) to a take-back. `pending_request` holds a
take-back (13) or the change type ("1"/"2"/"3") awaiting the agency's 15 or 16. A change
takes effect when it arrives; `state_before` / `changed_by_before` keep what it replaced,
put back if the agency refuses it (16), dropped when it agrees (15). A revocation revokes
the updates received for the document too (the same change, undone together by a 16).
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
    state_before: str | None = None       # before the change still pending (restored by a 16)
    changed_by_before: str | None = None


def record_arrival(conn, message_id: str, sender: str, document_id: str) -> None:
    conn.execute("INSERT OR IGNORE INTO doc_progress (message_id, sender, document_id) VALUES (?,?,?)",
                 (message_id, sender, document_id))


_CHANGES = ("1", "2", "3")


def record_change(conn, original: str, state: str, change_message_id: str, request: str,
                  with_updates: bool = False) -> None:
    """The sender revoked, updated or replaced `original`: the agency is asked to agree (15) or refuse (16).

    What it replaces is kept for a 16, unless a change still pending already kept it (the agency never
    accepted that one either). `with_updates` (a revocation): the updates received for `original` too."""
    targets = [original]
    if with_updates:
        targets += [r[0] for r in conn.execute("SELECT message_id FROM inbox WHERE ref_message_id = ?"
                                               " AND business_doc_type = 2", (original,)).fetchall()]
    keep = f"pending_request IN ({','.join('?' * len(_CHANGES))})"
    conn.executemany(
        f"UPDATE doc_progress SET state_before = CASE WHEN {keep} THEN state_before ELSE state END,"
        f" changed_by_before = CASE WHEN {keep} THEN changed_by_before ELSE changed_by END,"
        " state = ?, changed_by = ? WHERE message_id = ?",
        [(*_CHANGES, *_CHANGES, state, change_message_id, m) for m in targets])
    conn.execute("UPDATE doc_progress SET pending_request = ? WHERE message_id = ?", (request, original))


def updates_received(conn, original: str, cap: int) -> int:
    """How many updates of `original` are stored here, counted up to `cap` + 1 at most (bounded work)."""
    return conn.execute("SELECT count(*) FROM (SELECT 1 FROM inbox WHERE ref_message_id = ? AND business_doc_type = 2"
                        " LIMIT ?)", (original, cap + 1)).fetchone()[0]


def record_request(conn, message_id: str, request: str) -> None:
    conn.execute("UPDATE doc_progress SET pending_request = ? WHERE message_id = ?", (request, message_id))


def settle_request(conn, message_id: str, new_state: str | None, refused: bool = False) -> None:
    """The agency answered the pending request; `new_state` (or None to keep it) is where that leaves the document.
    `refused` (16) a change: the document, and the updates the same change revoked, are as they were before it."""
    row = conn.execute("SELECT pending_request, changed_by FROM doc_progress WHERE message_id = ?",
                       (message_id,)).fetchone()
    if row is not None and row[0] in _CHANGES:
        undone = refused and row[1]
        conn.execute("UPDATE doc_progress SET state = CASE WHEN ? THEN coalesce(state_before, state) ELSE state END,"
                     " changed_by = CASE WHEN ? THEN changed_by_before ELSE changed_by END,"
                     " state_before = NULL, changed_by_before = NULL WHERE message_id = ? OR changed_by = ?",
                     (bool(undone), bool(undone), message_id, row[1] or message_id))
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
