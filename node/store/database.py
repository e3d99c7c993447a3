"""One SQLite file per node, in WAL mode with synchronous=FULL: a commit is on disk when it returns.

A single connection guarded by a lock serves every thread. Writes are short and
grouped (a whole delivery batch is one transaction, so one fsync), which is what keeps
the write path fast; readers share the lock, which keeps the code simple and is cheap
next to an fsync.
"""
from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterator

import sqlite_utils

from .schema import MIGRATIONS

StoreError = sqlite3.Error  # what a failing read or write raises, for callers that must not import sqlite3


class Database:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        # checkpoint less often than the default 1,000 pages: fewer stalls under document-sized rows
        conn.execute("PRAGMA wal_autocheckpoint=8000")
        self.db = sqlite_utils.Database(conn)
        self.lock = threading.RLock()
        with self.lock:
            MIGRATIONS.apply(self.db)

    @contextlib.contextmanager
    def transaction(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work; nested calls join the outer transaction.

        durable=False skips the commit's fsync (synchronous=NORMAL for this commit only):
        for bookkeeping whose loss a restart repairs, such as marking an envelope
        delivered (it is re-sent, and the peer's dedup answers with the stored receipt).
        The next durable commit, or a checkpoint, makes it durable too. Every custody
        promise (a receipt, an API answer) stays behind a durable commit."""
        with self.lock:
            lazy = not durable and not self.db.conn.in_transaction
            if lazy:
                self.db.conn.execute("PRAGMA synchronous=NORMAL")
            try:
                with self.db.atomic():
                    yield self.db.conn
            finally:
                if lazy:
                    self.db.conn.execute("PRAGMA synchronous=FULL")

    def query(self, sql: str, params: Any = ()) -> list[dict]:
        with self.lock:
            cur = self.db.conn.execute(sql, params)
            cols = [c[0] for c in cur.description]
            return [dict(zip(cols, row)) for row in cur.fetchall()]

    def query_one(self, sql: str, params: Any = ()) -> dict | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def healthy(self) -> bool:
        try:
            with self.lock:
                self.db.conn.execute("SELECT count(*) FROM _sqlite_migrations").fetchone()
            return True
        except sqlite3.Error:
            return False

    def close(self) -> None:
        with self.lock:
            self.db.conn.close()
