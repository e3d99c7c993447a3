"""Statuses on both sides of a document.

`status_in` (sender side): statuses recipients returned on our documents, with the time
the recipient's node signed them, so they list in their true order whatever order they
arrived in. `status_out` (recipient side): the statuses this agency reported.
"""
from __future__ import annotations

from dataclasses import dataclass

from .database import Database


@dataclass(frozen=True)
class ReturnedStatus:
    seq: int
    status_message_id: str
    doc_message_id: str
    recipient: str
    status_code: str
    issued_ms: int
    status: bytes     # the serialized pb.Status
    received_ms: int
    answered_by: str = ""  # the retired recipient's successor, which sent it
    held_for: str | None = None  # returned to a predecessor whose history this node took over (node.takeover)



def record_returned(conn, status_message_id: str, doc_message_id: str, recipient: str, code: str, issued_ms: int,
                    status: bytes, received_ms: int, answered_by: str = "") -> None:
    conn.execute(
        "INSERT OR IGNORE INTO status_in (status_message_id, doc_message_id, recipient, status_code, issued_ms, status,"
        " received_ms, answered_by) VALUES (?,?,?,?,?,?,?,?)",
        (status_message_id, doc_message_id, recipient, code, issued_ms, status, received_ms, answered_by))


def returned_on(db: Database, doc_message_id: str) -> list[ReturnedStatus]:
    """In the order the recipient's node signed them."""
    return [ReturnedStatus(**r) for r in db.query(
        "SELECT * FROM status_in WHERE doc_message_id = ? ORDER BY issued_ms, status_code, seq", (doc_message_id,))]


def reported(db: Database, doc_message_id: str, code: str, last: bool = False) -> str | None:
    """Message id of the first (`last`: the latest) status `code` this agency reported on a received document."""
    row = db.query_one("SELECT status_message_id FROM status_out WHERE doc_message_id = ? AND status_code = ?"
                       f" ORDER BY seq {'DESC' if last else ''} LIMIT 1", (doc_message_id, code))
    return row["status_message_id"] if row else None


def count_reported(db: Database, doc_message_id: str, code: str) -> int:
    """How many statuses `code` this agency reported on a received document."""
    return db.query_one("SELECT count(*) AS n FROM status_out WHERE doc_message_id = ? AND status_code = ?",
                        (doc_message_id, code))["n"]


def record_reported(conn, doc_message_id: str, code: str, status_message_id: str, issued_ms: int) -> None:
    conn.execute("INSERT INTO status_out (doc_message_id, status_code, status_message_id, issued_ms) VALUES (?,?,?,?)",
                 (doc_message_id, code, status_message_id, issued_ms))


def counts_by_code(db: Database) -> dict[str, dict[str, int]]:
    """Statuses per code: "returned" by this agency (status_out), "received" on its documents (status_in); a
    predecessor's taken over with its history (held_for) are its own, counted under its code, not here."""
    return {
        "returned": {r["status_code"]: r["n"] for r in db.query(
            "SELECT status_code, count(*) AS n FROM status_out WHERE held_for IS NULL GROUP BY status_code")},
        "received": {r["status_code"]: r["n"] for r in db.query(
            "SELECT status_code, count(*) AS n FROM status_in WHERE held_for IS NULL GROUP BY status_code")},
    }
