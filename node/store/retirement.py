"""Whether this node is retiring into its successor, and what it still holds (docs/restructuring.md)."""
from __future__ import annotations

from dataclasses import dataclass

from ..pb import envelope_pb2 as pb
from . import audit
from .database import Database


@dataclass(frozen=True)
class Left:
    """What a retiring node still holds: its outbox not handed over, the documents in its inbox not fetched
    (statuses and notices about its documents keep coming after it is drained: they hold nothing up)."""
    queued: int
    parked: int
    unfetched: int

    @property
    def drained(self) -> bool:
        return not (self.queued or self.unfetched)


def successor(db: Database) -> tuple[str, int] | None:
    """(successor, started_ms) when this node is retiring, else None."""
    row = db.query_one("SELECT successor, started_ms FROM retirement WHERE id = 1")
    return (row["successor"], row["started_ms"]) if row else None


def start(db: Database, to: str, now_ms: int) -> tuple[str, int]:
    """Durable and once: a restart keeps refusing new mail; a second call keeps the first start time."""
    with db.transaction() as conn:
        if conn.execute("INSERT OR IGNORE INTO retirement (id, successor, started_ms) VALUES (1, ?, ?)",
                        (to, now_ms)).rowcount:
            audit.append(conn, now_ms, audit.RETIRING, "", to, f"retiring into {to}")
    return successor(db)


def left(db: Database) -> Left:
    out = db.query_one("SELECT count(*) AS queued, count(parked_by) AS parked FROM outbox WHERE state = 'pending'")
    inbox = db.query_one("SELECT count(*) AS n FROM inbox WHERE acked_ms IS NULL AND kind = ?", (pb.DOCUMENT,))
    return Left(out["queued"], out["parked"], inbox["n"])
