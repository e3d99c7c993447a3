"""Group commit: concurrent writers share one transaction, so one fsync covers many of them.

Each piece of work runs in its own savepoint, so one that fails is rolled back alone
and reports its own exception; nobody is told "done" before the shared commit returns.
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Callable, TypeVar

from .database import Database

T = TypeVar("T")
MAX_GROUP = 256


class GroupCommit:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._queue: queue.Queue[tuple[Callable, Future] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="group-commit", daemon=True)
        self._thread.start()

    def run(self, work: Callable[..., T]) -> T:
        """Run `work(conn)` inside the next shared transaction; return once it is durable."""
        fut: Future = Future()
        self._queue.put((work, fut))
        return fut.result()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(10)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            while len(group) < MAX_GROUP:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                group.append(item)
            self._commit(group)

    def _commit(self, group: list[tuple[Callable, Future]]) -> None:
        outcomes: list[tuple[Future, bool, object]] = []
        try:
            with self.db.transaction() as conn:
                for work, fut in group:
                    try:
                        with self.db.db.atomic():  # a savepoint per piece of work
                            outcomes.append((fut, True, work(conn)))
                    except Exception as e:
                        outcomes.append((fut, False, e))
        except Exception as e:  # the commit itself failed: nothing is durable
            for _, fut in group:
                fut.set_exception(e)
            return
        for fut, ok, value in outcomes:
            fut.set_result(value) if ok else fut.set_exception(value)
