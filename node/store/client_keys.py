"""Idempotency keys of the local API: the first answer to a request made under a client key.

A row is written in the same transaction as what the call committed (an envelope queued, a
status reported), so either both are stored or neither: a retry after a lost answer finds the
row and gets the same answer back, and a call that failed left no row to find. Rows live until
`expires_ms` (at least the message lifetime); the sweep prunes them after that. Keys are per
client program (api.tokens, node/api/clients.py): each has a key space of its own.
"""
from __future__ import annotations

import weakref
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
    """Remove up to `limit` expired keys; how many went. When none has expired (most sweeps), no write
    transaction and no wait for the writer: the first expiry is read (the index's first entry), and kept
    until the next commit, so an idle mailbox's sweeps ask nothing before that time."""
    if _nothing_due(db, now_ms):
        return 0
    with db.transaction(durable=False) as tx:
        return tx.execute(
            "DELETE FROM client_keys WHERE rowid IN"
            " (SELECT rowid FROM client_keys WHERE expires_ms <= ? ORDER BY expires_ms LIMIT ?)",
            (now_ms, limit)).rowcount


_FIRST_EXPIRY: "weakref.WeakKeyDictionary[Database, tuple[int, int | None]]" = weakref.WeakKeyDictionary()


def _nothing_due(db: Database, now_ms: int) -> bool:
    """No key has expired by now_ms: from the first expiry read as of the last commit (keys are only added by
    commits), else from one read."""
    seen = db.commits  # read first: a commit after this makes the memo stale, never wrong
    kept = _FIRST_EXPIRY.get(db)
    if kept is None or kept[0] != seen:
        first = db.query_one("SELECT min(expires_ms) AS first FROM client_keys")["first"]
        kept = _FIRST_EXPIRY[db] = (seen, first)
    return kept[1] is None or kept[1] > now_ms
