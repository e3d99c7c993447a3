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
from .schema import migrate

log = logging.getLogger(__name__)

StoreError = sqlite3.Error  # what a failing read or write raises, for callers that must not import sqlite3


READERS = 4  # read-only connections at most: each holds three descriptors (the file, its -wal, its -shm)
MAX_GROUP = 32  # callers' transactions committed together at most: bounds how long a finished one waits


IN_CHUNK = 500  # values bound in one `IN (...)`: well under SQLite's limit on bound parameters


def in_chunks(values: list) -> Iterator[tuple[list, str]]:
    """`values` in slices small enough to bind in one `IN (...)`, each with its placeholders ("?,?,...")."""
    for start in range(0, len(values), IN_CHUNK):
        chunk = values[start:start + IN_CHUNK]
        yield chunk, ",".join("?" * len(chunk))


def open_read_only(path: Path | str, timeout: float = 30, **options) -> sqlite3.Connection:
    """A read-only connection of its own to the mailbox at `path`, for a reader outside the node that owns it
    (WAL lets that node go on); the path is made a proper file: URI, so `?`, `#` or `%` in it mean nothing.
    `options`: sqlite3.connect's others (isolation_level, check_same_thread)."""
    return sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=timeout, **options)


class _Group:
    """The callers' transactions sharing one SQLite transaction, and so one commit and one fsync."""

    __slots__ = ("durable", "members", "broken", "error", "done")

    def __init__(self, durable: bool) -> None:
        self.durable = durable
        self.members = 0
        self.broken: BaseException | None = None  # a part could not be undone alone: the group is lost
        self.error: BaseException | None = None   # why the commit failed (None: committed)
        self.done = threading.Event()             # set once committed or rolled back


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
        self._group: _Group | None = None  # the SQLite transaction open for callers' parts; the lock's holder's
        self._gate = threading.Lock()  # guards _waiting
        self._waiting = 0  # callers queued for the writer: while any, a finished part hands over, not commits
        self.commits = 0  # commits so far, counted after each: what was read at count k is still true while it is k
        with self.lock:
            migrate(self.db)
            # the pages the migrations touched would stay in the writer's cache (~0.3 MB on a fresh mailbox, per
            # agency of a host) until pushed out; what a running node reads is cached again as it needs it
            conn.execute("PRAGMA shrink_memory")
        self.readers = Readers(self.path, readers)  # opened after the migrations: they see the whole schema

    @contextlib.contextmanager
    def transaction(self, durable: bool = True) -> Iterator["Transaction"]:
        """One atomic unit of work; nested calls join the outer transaction.

        Group commit: the transactions of callers that queue for the writer while one runs are
        run one after another inside one SQLite transaction, each in a savepoint of its own (one
        that fails is rolled back alone), and committed together, with one fsync. A caller
        returns only after the commit that holds its rows, so nothing is promised (a receipt,
        an API answer) before it is on disk; a crash before that commit loses the whole group
        and answers nobody. A group commits as soon as nobody is queued, or at MAX_GROUP.
        A transaction's body must never wait for another thread's transaction.

        Actions given to `tx.on_commit` run once, after the commit that holds this
        transaction, in the caller's thread, with the lock released; a rollback drops them
        (as Django's `transaction.on_commit`), so nobody hears of a row that was never stored.

        durable=False skips the commit's fsync (synchronous=NORMAL): for bookkeeping whose
        loss a restart repairs, such as marking an envelope delivered (it is re-sent, and the
        peer's dedup answers with the stored receipt). It may ride in a durable group (then it
        is durable too); a durable caller never rides in a group without fsync. The next
        durable commit, or a checkpoint, makes it durable too. Every custody promise (a
        receipt, an API answer) stays behind a durable commit."""
        if self._owner == threading.get_ident():  # nested: this thread holds the writer
            outer = self._current
            assert outer is not None
            mark = len(outer._hooks)
            conn = outer.conn
            # a savepoint: an error inside rolls back this part only. Named by its depth, not at random (as
            # sqlite_utils' atomic does): the same few statements, prepared once, for every part (one per
            # envelope in custody's transaction); an inner savepoint of the same name is released first
            outer.depth += 1
            name = f"part{outer.depth}"
            try:
                conn.execute(f"SAVEPOINT {name}")
                try:
                    yield outer
                except BaseException:
                    del outer._hooks[mark:]  # what the rolled-back part queued goes with it
                    outer.audit_head = None  # and the audit rows it appended: the head is read again
                    if conn.in_transaction:  # an error (a RAISE(ROLLBACK) trigger) may have ended it all
                        conn.execute(f"ROLLBACK TO {name}")
                        conn.execute(f"RELEASE {name}")
                    raise
                conn.execute(f"RELEASE {name}")
            finally:
                outer.depth -= 1
            return
        group, tx, savepoint = self._join(durable)
        try:
            yield tx
        except BaseException:
            self._leave(group, savepoint, ok=False)
            raise
        self._leave(group, savepoint, ok=True)
        tx.run_hooks()  # reached only after the commit: an exception above skips it

    def _join(self, durable: bool) -> tuple["_Group", "Transaction", str]:
        """Take the writer and open this caller's part of the current group (a new group if none)."""
        with self._gate:
            self._waiting += 1
        self.lock.acquire()
        with self._gate:
            self._waiting -= 1
        conn = self.db.conn
        try:
            group = self._group
            if group is not None and durable and not group.durable:
                self._commit(group)  # its members wait for it: a durable caller needs a commit with an fsync
                group = None
            if group is None:
                if not durable:
                    conn.execute("PRAGMA synchronous=NORMAL")  # may not change inside a transaction
                try:
                    conn.execute("BEGIN")
                except BaseException:
                    if not durable:
                        conn.execute("PRAGMA synchronous=FULL")
                    raise
                group = self._group = _Group(durable)
            group.members += 1
            savepoint = f"member{group.members}"
            conn.execute(f"SAVEPOINT {savepoint}")
        except BaseException:
            if self._group is not None and not self._waiting:
                self._commit(self._group)  # whoever handed over to us must not wait for ever
            self.lock.release()
            raise
        tx = self._current = Transaction(conn)
        self._owner = threading.get_ident()
        return group, tx, savepoint

    def _leave(self, group: "_Group", savepoint: str, ok: bool) -> None:
        """End this caller's part; commit the group if nobody is queued to join it, else hand the writer
        over; either way return after the group's commit. Raises if the commit that was to hold a
        successful part failed (a failed part's caller raises its own error)."""
        conn = self.db.conn
        try:
            self._current = None
            self._owner = None
            if group.broken is None:
                try:
                    if ok:
                        conn.execute(f"RELEASE {savepoint}")
                    elif conn.in_transaction:
                        conn.execute(f"ROLLBACK TO {savepoint}")
                        conn.execute(f"RELEASE {savepoint}")
                    else:  # the error took the whole transaction with it: the group is lost
                        group.broken = sqlite3.OperationalError("the transaction was rolled back")
                except BaseException as e:
                    group.broken = e
            if self._group is group and (group.broken is not None or group.members >= MAX_GROUP or not self._waiting):
                self._commit(group)
        finally:
            self.lock.release()
        # a part that failed waits too: it may have failed on rows an earlier part of the group wrote
        # (a client key taken, an envelope received), and its caller reads them next, off the writer
        group.done.wait()
        if ok and group.error is not None:
            raise sqlite3.OperationalError(f"the commit failed: {group.error}") from group.error

    def _commit(self, group: "_Group") -> None:
        """Commit (or, when broken, roll back) the open group and release its members. Lock held."""
        conn = self.db.conn
        self._group = None
        try:
            if group.broken is not None:
                raise group.broken
            conn.execute("COMMIT")
            self.commits += 1
        except BaseException as e:
            group.error = e
            try:
                conn.rollback()  # a no-op if the error already ended the transaction
            except sqlite3.Error:
                log.exception("rolling back a failed group commit")
        finally:
            if not group.durable:
                try:
                    conn.execute("PRAGMA synchronous=FULL")
                except sqlite3.Error:
                    log.exception("restoring synchronous=FULL")
            group.done.set()

    def query(self, sql: str, params: Any = ()) -> list[dict]:
        """Rows as dicts: on the writer inside this thread's transaction, else on a reader (no waiting
        for a commit in progress; what it sees is every transaction committed before it began)."""
        if self._owner == threading.get_ident():  # only this thread sets it to its own id
            with self.lock:
                return _rows(self.db.conn.execute(sql, params))
        with self.readers.connection() as conn:
            return _rows(conn.execute(sql, params))

    def in_own_transaction(self) -> bool:
        """This thread holds the open transaction (its reads see its own uncommitted rows)."""
        return self._owner == threading.get_ident()

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
            if self._group is not None:  # parts handed over and waiting: committed, not lost
                self._commit(self._group)
            self.db.conn.close()


def _rows(cur: sqlite3.Cursor) -> list[dict]:
    """Every row fetched (which also ends a reader's read transaction)."""
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


class Transaction:
    """An open transaction: run statements on it, and queue what must wait for its commit."""

    __slots__ = ("conn", "_hooks", "audit_head", "depth")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._hooks: list[Callable[[], None]] = []
        # (seq, hash) of the audit chain's last row as this transaction left it (node.store.audit): read once,
        # not once per append; None until read, and again after a savepoint of it is rolled back
        self.audit_head: tuple[int, bytes] | None = None
        self.depth = 0  # savepoints of nested transactions open inside this one

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
