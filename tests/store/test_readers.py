"""Reads off the writer's lock: a read never waits for a commit in progress, and still sees what it must.

A read outside a transaction runs on a read-only connection of a small pool and sees every
transaction committed before it began; a read by the thread holding the open transaction stays
on the writer and sees that transaction's own rows. The waits below are on events and barriers,
each bounded only so a broken build fails instead of hanging.
"""
from __future__ import annotations

import threading

import pytest

from node.store import StoreError, inbox
from node.store.database import READERS, Database
from node.store.readers import Readers
from node.pb import envelope_pb2 as pb

WAIT = 20  # seconds: a bound for a broken build, never a delay a passing run sits through


def _count(db: Database) -> int:
    return db.query_one("SELECT count(*) AS n FROM peer_state")["n"]


def test_a_read_completes_while_another_thread_holds_a_transaction_open(db):
    inside, read_done = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    def writer() -> None:
        try:
            with db.transaction() as tx:
                tx.execute("INSERT INTO peer_state (code) VALUES ('w')")
                inside.set()
                read_done.wait(WAIT)  # holds the writer, uncommitted, until the reader is through
        except BaseException as e:  # noqa: BLE001 - shown by the assertion below
            failure.append(e)

    t = threading.Thread(target=writer)
    t.start()
    assert inside.wait(WAIT)
    seen = _count(db)  # with one lock for reads and writes, this waited for the commit (and saw 1)
    finished_first = not read_done.is_set() and t.is_alive()
    read_done.set()
    t.join(WAIT)
    assert not failure
    assert finished_first and seen == 0  # done before the commit, and saw none of its rows
    assert _count(db) == 1  # the commit is seen by the next read


def test_reads_inside_a_transaction_see_its_own_rows_and_others_do_not(db):
    inside, checked = threading.Event(), threading.Event()
    others: list[int] = []

    def other_thread() -> None:
        assert inside.wait(WAIT)
        others.append(_count(db))
        checked.set()

    t = threading.Thread(target=other_thread)
    t.start()
    with db.transaction() as tx:
        tx.execute("INSERT INTO peer_state (code) VALUES ('mine')")
        assert _count(db) == 1  # on the writer: its own uncommitted row
        with db.transaction():  # a nested part too
            assert db.query_one("SELECT code FROM peer_state")["code"] == "mine"
        inside.set()
        assert checked.wait(WAIT)
    t.join(WAIT)
    assert others == [0]


def test_the_reader_pool_is_bounded(db):
    threads, rounds = 3 * READERS, 30
    start = threading.Barrier(threads + 1)
    with db.transaction() as tx:
        tx.executemany("INSERT INTO peer_state (code) VALUES (?)", [(f"c{i}",) for i in range(7)])
    results: list[int] = []
    lock = threading.Lock()

    def read() -> None:
        start.wait(WAIT)
        for _ in range(rounds):
            n = _count(db)
            with lock:
                results.append(n)

    workers = [threading.Thread(target=read) for _ in range(threads)]
    for w in workers:
        w.start()
    start.wait(WAIT)
    for w in workers:
        w.join(WAIT)
    assert results == [7] * (threads * rounds)
    assert 1 <= db.readers.open_count() <= READERS


def test_a_closed_database_refuses_reads_with_a_store_error(tmp_path):
    db = Database(tmp_path / "m.sqlite3")
    assert db.healthy()
    db.close()
    assert not db.healthy()
    with pytest.raises(StoreError):
        db.query("SELECT 1")


def test_one_ack_wins_when_many_threads_ack_at_once(db):
    """inbox.ack reads then writes inside one transaction: exactly one caller sees the envelope as new."""
    header = pb.Header(message_id="m1", sender="000.00.01.H53", kind=pb.DOCUMENT)
    with db.transaction() as tx:
        inbox.add_in(tx, header, subject="s", now_ms=1, envelope=b"raw")
    n = 8
    start = threading.Barrier(n)
    answers: list[bool | None] = []
    lock = threading.Lock()

    def ack(i: int) -> None:
        start.wait(WAIT)
        a = inbox.ack(db, "m1", 100 + i)
        with lock:
            answers.append(a)

    workers = [threading.Thread(target=ack, args=(i,)) for i in range(n)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(WAIT)
    assert sorted(answers, key=str) == [False] * (n - 1) + [True]


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_readers_idle_too_long_are_closed_and_reopened_when_needed(db):
    """Connections unused for idle_s are closed (their schema copy, page cache and three descriptors go); a
    later read reopens one transparently and sees every commit; a steady trickle keeps one warm."""
    clock = _Clock()
    pool = Readers(db.path, 4, idle_s=30, now=clock)
    with pool.connection() as a, pool.connection() as b:  # a burst: two at once
        assert a is not b
    assert pool.open_count() == 2
    clock.t += 20
    for _ in range(3):  # a trickle within idle_s: the freshest connection, again and again
        with pool.connection() as c:
            c.execute("SELECT 1").fetchall()
        clock.t += 20
    assert pool.open_count() == 1 and pool.made == 2  # the other aged out; nothing new was opened
    with db.transaction() as tx:
        tx.execute("INSERT INTO peer_state (code) VALUES ('later')")
    with pool.connection() as c:  # the warm one (used 20 s ago), which sees the commit
        assert c.execute("SELECT count(*) FROM peer_state").fetchone()[0] == 1
    assert pool.made == 2
    clock.t += 31
    with pool.connection() as c:  # it too had aged out: closed on the way back, reopened now, transparently
        assert c.execute("SELECT code FROM peer_state").fetchone()[0] == "later"
    assert pool.made == 3 and pool.open_count() == 1
    pool.close()
