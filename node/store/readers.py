"""A small, bounded pool of read-only connections to the mailbox, so reads never wait for a commit.

In WAL mode a reader sees the database as of the last commit that finished before its statement
began, while the writer goes on (and fsyncs) on its own connection. Each connection runs in
autocommit: a statement is its own read transaction, ended when its rows are fetched, so no
reader pins an old snapshot (or holds back a checkpoint) between calls. The pool is bounded
(`size` connections, each holding the database file, its -wal and -shm open): a caller beyond it
waits for one to come back rather than opening more descriptors.
"""
from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path
from typing import Iterator


class Readers:
    def __init__(self, path: Path, size: int) -> None:
        if size < 1:
            raise ValueError("a reader pool needs at least one connection")
        self._uri = f"{path.resolve().as_uri()}?mode=ro"
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[sqlite3.Connection] = []
        self._opened: list[sqlite3.Connection] = []  # every connection made, to close them all
        self._lock = threading.Lock()
        self._closed = False

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A connection of the pool for one read; the caller must fetch every row before giving it back."""
        with self._slots:
            conn = self._take()
            try:
                yield conn
            finally:
                with self._lock:
                    if self._closed:
                        conn.close()
                    else:
                        self._idle.append(conn)

    def _take(self) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
            if self._idle:
                return self._idle.pop()
        conn = sqlite3.connect(self._uri, uri=True, timeout=30, isolation_level=None, check_same_thread=False)
        with self._lock:
            self._opened.append(conn)
        return conn

    def open_count(self) -> int:
        """How many connections the pool has made (at most its size)."""
        with self._lock:
            return len(self._opened)

    def close(self) -> None:
        """Close the idle connections now; one in use is closed when it comes back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
