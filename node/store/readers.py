"""A small, bounded pool of read-only connections to the mailbox, so reads never wait for a commit.

In WAL mode a reader sees the database as of the last commit that finished before its statement
began, while the writer goes on (and fsyncs) on its own connection. Each connection runs in
autocommit: a statement is its own read transaction, ended when its rows are fetched, so no
reader pins an old snapshot (or holds back a checkpoint) between calls. The pool is bounded
(`size` connections, each holding the database file, its -wal and -shm open): a caller beyond it
waits for one to come back rather than opening more descriptors.

Connections are opened when first needed and closed once idle for `idle_s`: each holds its own
copy of the parsed schema and a page cache (~150 KB) and three descriptors, which a host with a
thousand mostly idle mailboxes would otherwise keep for ever after one burst of reads. The most
recently used connection is handed out first, so a steady trickle of reads (health checks) keeps
one connection warm while the others age out.
"""
from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

IDLE_S = 30.0  # a connection unused this long is closed (reopened transparently when next needed)


class Readers:
    def __init__(self, path: Path, size: int, idle_s: float = IDLE_S, now: Callable[[], float] = time.monotonic) -> None:
        if size < 1:
            raise ValueError("a reader pool needs at least one connection")
        self._uri = f"{path.resolve().as_uri()}?mode=ro"
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[tuple[sqlite3.Connection, float]] = []  # with when each came back; the last is the freshest
        self._opened: list[sqlite3.Connection] = []  # every connection open now, to close them all
        self._idle_s, self._now = idle_s, now
        self.made = 0  # connections opened over the pool's life (reopened ones included)
        self._lock = threading.Lock()
        self._closed = False

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A connection of the pool for one read; the caller must fetch every row before giving it back."""
        with self._slots:
            self._close_stale()  # first: a connection idle too long is not handed out again
            conn = self._take()
            try:
                yield conn
            finally:
                with self._lock:
                    if self._closed:
                        conn.close()
                    else:
                        self._idle.append((conn, self._now()))
                self._close_stale()

    def _take(self) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
            if self._idle:
                return self._idle.pop()[0]
        conn = sqlite3.connect(self._uri, uri=True, timeout=30, isolation_level=None, check_same_thread=False)
        with self._lock:
            self._opened.append(conn)
            self.made += 1
        return conn

    def _close_stale(self) -> None:
        """Close the connections idle for longer than idle_s (the oldest are first in the list)."""
        cutoff = self._now() - self._idle_s
        with self._lock:
            stale = [conn for conn, since in self._idle if since < cutoff]
            if not stale:
                return
            self._idle = [(conn, since) for conn, since in self._idle if since >= cutoff]
            for conn in stale:
                self._opened.remove(conn)
        for conn in stale:
            conn.close()

    def open_count(self) -> int:
        """How many connections the pool holds open now (at most its size)."""
        with self._lock:
            return len(self._opened)

    def close(self) -> None:
        """Close the idle connections now; one in use is closed when it comes back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.close()
