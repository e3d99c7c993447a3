"""Idempotency keys of the local API: the first answer to a request made under a client key.

A row is written in the same transaction as what the call committed (an envelope queued, a
status reported), so either both are stored or neither: a retry after a lost answer finds the
row and gets the same answer back, and a call that failed left no row to find. Rows live until
`expires_ms` (at least the message lifetime); the sweep prunes them after that. Keys are per
client program (api.tokens, node/api/clients.py): each has a key space of its own.
"""
from __future__ import annotations

from dataclasses import dataclass

from .database import Database, Transaction

PRUNE_BATCH = 500  # rows removed per sweep, so a sweep never holds the database long


@dataclass(frozen=True)
class StoredAnswer:
    method: str
    request_sha256: bytes
    response: bytes


def _answer(row) -> StoredAnswer | None:
    return None if row is None else StoredAnswer(row[0], bytes(row[1]), bytes(row[2]))


_GET = ("SELECT method, request_sha256, response FROM client_keys WHERE client = ? AND client_key = ?"
        " AND expires_ms > ?")


def get(db: Database, client: str, key: str, now_ms: int) -> StoredAnswer | None:
    row = db.query_one(_GET, (client, key, now_ms))
    return None if row is None else _answer((row["method"], row["request_sha256"], row["response"]))


def get_in(tx: Transaction, client: str, key: str, now_ms: int) -> StoredAnswer | None:
    """The answer stored under `client`'s `key`, unless it has expired (an expired key is free again)."""
    return _answer(tx.execute(_GET, (client, key, now_ms)).fetchone())


def put_in(tx: Transaction, client: str, key: str, method: str, request_sha256: bytes, response: bytes, now_ms: int,
           expires_ms: int) -> None:
    """Record the answer (replacing an expired row the sweep has not removed yet)."""
    tx.execute(
        "INSERT OR REPLACE INTO client_keys (client, client_key, method, request_sha256, response, created_ms,"
        " expires_ms) VALUES (?,?,?,?,?,?,?)", (client, key, method, request_sha256, response, now_ms, expires_ms))


def prune(db: Database, now_ms: int, limit: int = PRUNE_BATCH) -> int:
    """Remove up to `limit` expired keys; how many went. When none has expired (most sweeps), only a read on
    a reader (the expiry index's first entry): no write transaction, no wait for the writer."""
    if db.query_one("SELECT 1 AS due FROM client_keys WHERE expires_ms <= ? LIMIT 1", (now_ms,)) is None:
        return 0
    with db.transaction(durable=False) as tx:
        return tx.execute(
            "DELETE FROM client_keys WHERE rowid IN"
            " (SELECT rowid FROM client_keys WHERE expires_ms <= ? ORDER BY expires_ms LIMIT ?)",
            (now_ms, limit)).rowcount
