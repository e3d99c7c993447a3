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
import logging
from typing import Any, Callable, Iterable, Iterator

import sqlite_utils

from .schema import MIGRATIONS

log = logging.getLogger(__name__)

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
        self._current: Transaction | None = None  # the open transaction; only the lock's holder touches it
        with self.lock:
            MIGRATIONS.apply(self.db)

    @contextlib.contextmanager
    def transaction(self, durable: bool = True) -> Iterator["Transaction"]:
        """One atomic unit of work; nested calls join the outer transaction.

        Actions given to `tx.on_commit` run once, after the outermost transaction has
        committed and the lock is released; a rollback drops them (as Django's
        `transaction.on_commit`), so nobody hears of a row that was never stored.

        durable=False skips the commit's fsync (synchronous=NORMAL for this commit only):
        for bookkeeping whose loss a restart repairs, such as marking an envelope
        delivered (it is re-sent, and the peer's dedup answers with the stored receipt).
        The next durable commit, or a checkpoint, makes it durable too. Every custody
        promise (a receipt, an API answer) stays behind a durable commit."""
        with self.lock:
            outer = self._current
            if outer is not None:
                mark = len(outer._hooks)
                try:
                    with self.db.atomic():  # a savepoint: an error inside rolls back this part only
                        yield outer
                except BaseException:
                    del outer._hooks[mark:]  # what the rolled-back part queued goes with it
                    raise
                return
            tx = self._current = Transaction(self.db.conn)
            lazy = not durable
            if lazy:
                self.db.conn.execute("PRAGMA synchronous=NORMAL")
            try:
                with self.db.atomic():
                    yield tx
            finally:
                self._current = None
                if lazy:
                    self.db.conn.execute("PRAGMA synchronous=FULL")
        tx.run_hooks()  # reached only after a commit: an exception above skips it

    def query(self, sql: str, params: Any = ()) -> list[dict]:
        with self.lock:
            cur = self.db.conn.execute(sql, params)
            cols = [c[0] for c in cur.description]
            return [dict(zip(cols, row)) for row in cur.fetchall()]

    def query_one(self, sql: str, params: Any = ()) -> dict | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def schema_version(self) -> int:
        """How many migrations the mailbox has had applied."""
        with self.lock:
            return self.db.conn.execute("SELECT count(*) FROM _sqlite_migrations").fetchone()[0]

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


class Transaction:
    """An open transaction: run statements on it, and queue what must wait for its commit."""

    __slots__ = ("conn", "_hooks")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._hooks: list[Callable[[], None]] = []

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Any]) -> sqlite3.Cursor:
        return self.conn.executemany(sql, rows)

    def on_commit(self, action: Callable[[], None]) -> None:
        """Run `action` once this transaction has committed; never if it rolls back."""
        self._hooks.append(action)

    def run_hooks(self) -> None:
        hooks, self._hooks = self._hooks, []
        for action in hooks:
            try:
                action()
            except Exception:  # the commit stands; one failing listener must not stop the others
                log.exception("after-commit action failed")
