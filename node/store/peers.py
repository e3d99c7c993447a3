"""Per-next-hop retry state, persisted so backoff survives a restart."""
from __future__ import annotations

from dataclasses import dataclass

from .database import Database
from .quiet import no_pending_mail


@dataclass(frozen=True)
class PeerState:
    code: str
    failures: int = 0
    next_attempt_ms: int = 0
    last_error: str | None = None
    last_success_ms: int | None = None
    held: int = 0


def get(db: Database, code: str) -> PeerState:
    row = db.query_one("SELECT * FROM peer_state WHERE code = ?", (code,))
    return PeerState(**row) if row else PeerState(code)


def record_failure(conn, code: str, failures: int, next_attempt_ms: int, error: str) -> None:
    conn.execute(
        "INSERT INTO peer_state (code, failures, next_attempt_ms, last_error) VALUES (?,?,?,?)"
        " ON CONFLICT(code) DO UPDATE SET failures = excluded.failures,"
        " next_attempt_ms = excluded.next_attempt_ms, last_error = excluded.last_error",
        (code, failures, next_attempt_ms, error),
    )


def record_success(conn, code: str, now_ms: int) -> None:
    conn.execute(
        "INSERT INTO peer_state (code, failures, next_attempt_ms, last_success_ms) VALUES (?,0,0,?)"
        " ON CONFLICT(code) DO UPDATE SET failures = 0, next_attempt_ms = 0, last_error = NULL,"
        " last_success_ms = excluded.last_success_ms",
        (code, now_ms),
    )



def reset(conn, code: str) -> bool:
    """The peer is back: no failures, due now (True if it was backing off)."""
    return conn.execute(
        "UPDATE peer_state SET failures = 0, next_attempt_ms = 0 WHERE code = ? AND (failures > 0 OR next_attempt_ms > 0)",
        (code,)).rowcount > 0


def backing_off(db: Database) -> list[PeerState]:
    """Next hops that failed and still have mail waiting."""
    if no_pending_mail(db):
        return []
    return [PeerState(**r) for r in db.query(
        "SELECT * FROM peer_state WHERE failures > 0 AND code IN (SELECT DISTINCT next_hop FROM outbox WHERE state = 'pending')")]


def all_states(db: Database) -> list[PeerState]:
    return [PeerState(**r) for r in db.query("SELECT * FROM peer_state ORDER BY code")]


def set_held(conn, code: str, held: bool) -> None:
    conn.execute("INSERT INTO peer_state (code, held) VALUES (?,?) ON CONFLICT(code) DO UPDATE SET held = excluded.held",
                 (code, int(held)))


def held_codes(db: Database) -> set[str]:
    return {r["code"] for r in db.query("SELECT code FROM peer_state WHERE held = 1")}


def recorded(db: Database, code: str) -> bool:
    """Whether `code` has retry state worth showing: held, or failing."""
    return db.query_one("SELECT 1 AS x FROM peer_state WHERE code = ? AND (held = 1 OR failures > 0)", (code,)) is not None
