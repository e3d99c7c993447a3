"""The bare hop's inbox (node.harness.bare_hop): the least a durable receiver can store, with the
mailbox's durability (WAL, synchronous=FULL, one transaction per batch) and none of its rules.
It lives here because all SQL does; only the benchmark's floor uses it."""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class BareInbox:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("CREATE TABLE IF NOT EXISTS inbox (message_id TEXT PRIMARY KEY, sender TEXT, header BLOB,"
                          " payload BLOB, received_ms INTEGER)")
        self._lock = threading.Lock()  # one writer, as SQLite has

    def store_batch(self, rows: list[tuple[str, str, bytes, bytes, int]]) -> None:
        """One transaction, one fsync, for a whole batch: (message_id, sender, header, payload, received_ms)."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany("INSERT OR IGNORE INTO inbox VALUES (?, ?, ?, ?, ?)", rows)
            self.conn.execute("COMMIT")

    def counts(self) -> tuple[int, int, str]:
        """(rows, distinct message ids, journal mode): what the bare hop's test checks."""
        rows, distinct = self.conn.execute("SELECT count(*), count(DISTINCT message_id) FROM inbox").fetchone()
        return rows, distinct, self.conn.execute("PRAGMA journal_mode").fetchone()[0]
