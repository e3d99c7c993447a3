"""One SQLite file per node, in WAL mode with synchronous=FULL: a commit is on disk when it returns.

One writer connection, behind a lock, serves every transaction. Writes are short and
grouped (a whole delivery batch is one transaction, so one fsync), which is what keeps
the write path fast. Reads outside a transaction go to a small pool of read-only
connections (node.store.readers) and never wait for the writer's commit and fsync: they
see every transaction committed before they began. A read made by the thread that holds
the open transaction stays on the writer's connection, so it sees that transaction's own
rows and is atomic with its writes: a read-modify-write that must not interleave with
another writer reads inside `transaction()`.
"""
from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path
import logging
from typing import Any, Callable, Iterable, Iterator

import sqlite_utils

from .readers import Readers
from .schema import MIGRATIONS

log = logging.getLogger(__name__)

StoreError = sqlite3.Error  # what a failing read or write raises, for callers that must not import sqlite3


READERS = 4  # read-only connections at most: each holds three descriptors (the file, its -wal, its -shm)


class Database:
    def __init__(self, path: Path | str, readers: int = READERS) -> None:
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
        self._owner: int | None = None  # the thread holding the open transaction (its reads stay on the writer)
        with self.lock:
            MIGRATIONS.apply(self.db)
        self.readers = Readers(self.path, readers)  # opened after the migrations: they see the whole schema

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
            self._owner = threading.get_ident()
            lazy = not durable
            if lazy:
                self.db.conn.execute("PRAGMA synchronous=NORMAL")
            try:
                with self.db.atomic():
                    yield tx
            finally:
                self._current = None
                self._owner = None
                if lazy:
                    self.db.conn.execute("PRAGMA synchronous=FULL")
        tx.run_hooks()  # reached only after a commit: an exception above skips it

    def query(self, sql: str, params: Any = ()) -> list[dict]:
        """Rows as dicts: on the writer inside this thread's transaction, else on a reader (no waiting
        for a commit in progress; what it sees is every transaction committed before it began)."""
        if self._owner == threading.get_ident():  # only this thread sets it to its own id
            with self.lock:
                return _rows(self.db.conn.execute(sql, params))
        with self.readers.connection() as conn:
            return _rows(conn.execute(sql, params))

    def query_one(self, sql: str, params: Any = ()) -> dict | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def schema_version(self) -> int:
        """How many migrations the mailbox has had applied."""
        return self.query_one("SELECT count(*) AS n FROM _sqlite_migrations")["n"]

    def healthy(self) -> bool:
        try:
            self.query_one("SELECT count(*) AS n FROM _sqlite_migrations")
            return True
        except sqlite3.Error:
            return False

    def close(self) -> None:
        self.readers.close()
        with self.lock:
            self.db.conn.close()


def _rows(cur: sqlite3.Cursor) -> list[dict]:
    """Every row fetched (which also ends a reader's read transaction)."""
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


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
