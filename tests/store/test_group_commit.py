"""Group commit: transactions queued for the writer while one runs commit with it, once, and nobody
returns before the commit that holds its rows.

The queueing is made visible by wrapping the writer's lock: a caller has counted itself as queued
(`_waiting`) before it calls `acquire`, so once the wrapper saw the call the running transaction
hands over instead of committing. Waits are on events and semaphores, bounded only so that a
broken build fails instead of hanging.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from node.store.database import Database

WAIT = 20


class QueueWatch:
    """The writer's lock, telling the test each time a caller is about to wait for it."""

    def __init__(self, inner) -> None:
        self.inner, self.queued = inner, threading.Semaphore(0)

    def acquire(self, *args, **kwargs):
        self.queued.release()
        return self.inner.acquire(*args, **kwargs)

    def release(self) -> None:
        self.inner.release()

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def codes(db: Database) -> set[str]:
    return {r["code"] for r in db.query("SELECT code FROM peer_state")}


def commits_of(db: Database) -> list[str]:
    seen: list[str] = []
    db.db.conn.set_trace_callback(lambda sql: seen.append(sql) if sql.strip().upper() == "COMMIT" else None)
    return seen


def run_grouped(db: Database, bodies: dict[str, object], durable: dict[str, bool] | None = None) -> dict[str, object]:
    """Run `first` holding the writer until every other caller is queued behind it; each body gets its tx.
    Returns per caller what its transaction raised (None: returned) and what it saw right after."""
    durable = durable or {}
    watch = db.lock = QueueWatch(db.lock)
    inside = threading.Event()
    outcome: dict[str, object] = {}
    after: dict[str, set[str]] = {}
    others = [name for name in bodies if name != "first"]

    def call(name: str) -> None:
        try:
            with db.transaction(durable=durable.get(name, True)) as tx:
                if name == "first":
                    watch.queued.acquire(timeout=WAIT)  # its own acquire
                    inside.set()
                    for _ in others:  # every other caller is queued for the writer
                        assert watch.queued.acquire(timeout=WAIT)
                bodies[name](tx)
            outcome[name] = None
            after[name] = codes(db)
        except BaseException as e:  # noqa: BLE001 - returned to the test
            outcome[name] = e

    first = threading.Thread(target=call, args=("first",))
    first.start()
    assert inside.wait(WAIT)
    threads = [threading.Thread(target=call, args=(name,)) for name in others]
    for t in threads:
        t.start()
    for t in [first, *threads]:
        t.join(WAIT)
    db.lock = watch.inner
    return {"outcome": outcome, "after": after}


def insert(code: str):
    return lambda tx: tx.execute("INSERT INTO peer_state (code) VALUES (?)", (code,))


def test_transactions_queued_behind_one_commit_with_it_once_and_return_after_that_commit(db):
    seen = commits_of(db)
    names = ["first", "b", "c", "d"]
    got = run_grouped(db, {n: insert(n) for n in names})
    assert got["outcome"] == {n: None for n in names}
    assert seen == ["COMMIT"]  # one commit (one fsync) for the four
    for n in names:  # none returned before the commit that holds every row of the group
        assert got["after"][n] == set(names)


def test_a_part_that_fails_is_undone_alone_and_hears_of_no_commit(db):
    heard: list[str] = []

    def failing(tx):
        tx.execute("INSERT INTO peer_state (code) VALUES ('b')")
        tx.on_commit(lambda: heard.append("b"))
        raise RuntimeError("b fails")

    def c(tx):
        tx.execute("INSERT INTO peer_state (code) VALUES ('c')")
        tx.on_commit(lambda: heard.append("c"))

    got = run_grouped(db, {"first": insert("first"), "b": failing, "c": c})
    assert isinstance(got["outcome"]["b"], RuntimeError)
    assert got["outcome"]["first"] is None and got["outcome"]["c"] is None
    assert codes(db) == {"first", "c"} and heard == ["c"]


class WatchedDone:
    """A group's `done` event that tells the test each time a part starts waiting on it."""

    def __init__(self) -> None:
        self.inner, self.waiting = threading.Event(), threading.Semaphore(0)

    def wait(self, timeout=None):
        self.waiting.release()
        return self.inner.wait(timeout)

    def set(self) -> None:
        self.inner.set()

    def is_set(self) -> bool:
        return self.inner.is_set()


def test_a_part_that_fails_on_an_earlier_parts_row_returns_after_the_commit_that_holds_that_row(db):
    """A call racing another with one client key fails on the other's row, seen inside the group, then reads
    it off the writer to answer as a retry would: it must not return before that row is committed."""
    watch = db.lock = QueueWatch(db.lock)
    inside, b_inside = threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def first():
        with db.transaction() as tx:
            watch.queued.acquire(timeout=WAIT)  # its own acquire
            tx.execute("INSERT INTO peer_state (code) VALUES ('key')")
            db._group.done = WatchedDone()
            inside.set()
            assert watch.queued.acquire(timeout=WAIT)  # b is queued

    def b():
        try:
            with db.transaction() as tx:
                b_inside.set()
                assert tx.execute("SELECT 1 FROM peer_state WHERE code = 'key'").fetchone()
                assert watch.queued.acquire(timeout=WAIT)  # c is queued
                raise LookupError("the key is taken")
        except LookupError:
            seen["b read after its failure"] = codes(db)

    def c():
        with db.transaction():
            done = db._group.done  # c holds the writer: the group open is the one b and first wait for
            seen["both earlier parts waiting while c runs"] = all(done.waiting.acquire(timeout=WAIT) for _ in range(2))

    t1 = threading.Thread(target=first)
    t1.start()
    assert inside.wait(WAIT)
    t2 = threading.Thread(target=b)
    t2.start()
    assert b_inside.wait(WAIT)
    t3 = threading.Thread(target=c)
    t3.start()
    for t in (t1, t2, t3):
        t.join(3 * WAIT)
    db.lock = watch.inner
    assert seen == {"both earlier parts waiting while c runs": True, "b read after its failure": {"key"}}


def test_a_durable_transaction_never_rides_in_a_commit_without_fsync(db):
    synchronous: dict[str, int] = {}

    def note(name):
        def body(tx):
            synchronous[name] = tx.execute("PRAGMA synchronous").fetchone()[0]  # 2 FULL, 1 NORMAL
            tx.execute("INSERT INTO peer_state (code) VALUES (?)", (name,))
        return body

    seen = commits_of(db)
    got = run_grouped(db, {"first": note("first"), "durable": note("durable")},
                      durable={"first": False, "durable": True})
    assert got["outcome"] == {"first": None, "durable": None}
    assert synchronous == {"first": 1, "durable": 2} and len(seen) == 2
    assert db.db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL again after the lazy commit


def test_bookkeeping_rides_in_a_durable_group(db):
    seen = commits_of(db)
    got = run_grouped(db, {"first": insert("first"), "lazy": insert("lazy")}, durable={"lazy": False})
    assert got["outcome"] == {"first": None, "lazy": None} and seen == ["COMMIT"]


def test_closing_commits_parts_waiting_for_their_group(tmp_path):
    """A part handed over to a caller that then loses the writer to close(): committed, not left waiting."""
    db = Database(tmp_path / "m.sqlite3")
    inside, done = threading.Event(), threading.Event()

    def part():
        with db.transaction() as tx:
            tx.execute("INSERT INTO peer_state (code) VALUES ('a')")
            db._waiting += 1  # as if a caller queued: this part hands over instead of committing
            inside.set()
        done.set()

    t = threading.Thread(target=part)
    t.start()
    assert inside.wait(WAIT)
    db.close()  # takes the writer once the part hands it over
    assert done.wait(WAIT)
    t.join(WAIT)
    again = Database(tmp_path / "m.sqlite3")
    assert codes(again) == {"a"}
    again.close()


CHILD = textwrap.dedent("""
    import sys, threading
    sys.path.insert(0, sys.argv[2])
    from tests.store.test_group_commit import QueueWatch
    from node.store.database import Database

    db = Database(sys.argv[1])
    watch = db.lock = QueueWatch(db.lock)
    a_inside, never = threading.Event(), threading.Event()

    def a():
        with db.transaction() as tx:
            watch.queued.acquire()
            tx.execute("INSERT INTO peer_state (code) VALUES ('a')")
            a_inside.set()
            watch.queued.acquire()  # b is queued: a hands the writer over and waits for the group's commit
        print("a answered", flush=True)  # a receipt would go out here: must never happen

    def b():
        a_inside.wait()
        with db.transaction() as tx:
            tx.execute("INSERT INTO peer_state (code) VALUES ('b')")
            print("a waits for the commit, b is in its part", flush=True)
            never.wait()

    ta, tb = threading.Thread(target=a), threading.Thread(target=b)
    ta.start(); tb.start(); ta.join()
""")


def test_kill_9_while_parts_wait_for_their_group_commit_stores_and_answers_none_of_them(tmp_path):
    """The new stage of custody: a part finished, handed over, waiting for the commit. Killed there, the
    whole group is gone and nobody was answered; a sender's retry is then taken as new."""
    mailbox = tmp_path / "m.sqlite3"
    Database(mailbox).close()  # the schema, as a node's first start makes it
    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(mailbox), str(root)], stdout=subprocess.PIPE,
                             text=True, cwd=root)
    try:
        line = child.stdout.readline()
        assert line.strip() == "a waits for the commit, b is in its part", line
        os.kill(child.pid, signal.SIGKILL)
        rest = child.stdout.read()
    finally:
        child.kill()
        child.wait(WAIT)
    assert "a answered" not in rest
    db = Database(mailbox)
    try:
        assert codes(db) == set()
        with db.transaction() as tx:  # the retry: nothing of the lost group is in its way
            tx.execute("INSERT INTO peer_state (code) VALUES ('a')")
        assert codes(db) == {"a"}
    finally:
        db.close()


@pytest.fixture(autouse=True)
def _no_stray_trace(db):
    yield
    db.db.conn.set_trace_callback(None)
