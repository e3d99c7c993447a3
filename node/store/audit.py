"""The append-only audit log (the database refuses updates and deletes)."""
from __future__ import annotations

import sqlite3

from .database import Database

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


def _row(time_ms: int, event: str, message_id: str, peer: str, detail: str) -> tuple[int, str, str, str, str]:
    return time_ms, event, message_id[:MAX_ID], peer[:MAX_ID], detail[:MAX_DETAIL]


def append(conn: sqlite3.Connection, time_ms: int, event: str, message_id: str = "", peer: str = "", detail: str = "") -> None:
    conn.execute(
        "INSERT INTO audit (time_ms, event, message_id, peer, detail) VALUES (?,?,?,?,?)",
        _row(time_ms, event, message_id, peer, detail),
    )


def append_many(conn: sqlite3.Connection, rows: list[tuple[int, str, str, str, str]]) -> None:
    """(time_ms, event, message_id, peer, detail) rows in one statement: a batch writes its log at once."""
    conn.executemany("INSERT INTO audit (time_ms, event, message_id, peer, detail) VALUES (?,?,?,?,?)",
                     [_row(*r) for r in rows])


def recent(db: Database, limit: int = 100, event: str | None = None) -> list[dict]:
    if event:
        return db.query("SELECT * FROM audit WHERE event = ? ORDER BY seq DESC LIMIT ?", (event, limit))
    return db.query("SELECT * FROM audit ORDER BY seq DESC LIMIT ?", (limit,))
