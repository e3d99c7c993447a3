"""`tx.on_commit`: actions run once after a commit, never after a rollback.

Before, the dispatcher kept such actions in a per-thread list: a transaction that rolled
back left its actions there, and the next commit on that thread ran them, publishing
events for rows that were never stored.
"""
from __future__ import annotations

import pytest

from node.errors import Reason, Rejected
from node.events import REJECTED, EventBus
from node.exchange.dispatcher import Dispatcher
from node.exchange.hop import RetryPolicy
from node.exchange.outgoing import EnvelopeMaker, Sealed
from node.exchange.routing import Router
from node.pb import envelope_pb2 as pb
from node.store import outbox

A, B = "000.00.01.H53", "000.00.02.H53"


def test_actions_run_once_after_the_commit_and_see_the_committed_rows(db):
    seen = []
    with db.transaction() as tx:
        tx.execute("INSERT INTO peer_state (code) VALUES ('x')")
        tx.on_commit(lambda: seen.append(db.query_one("SELECT count(*) AS n FROM peer_state")["n"]))
        assert seen == []  # not before the commit
    assert seen == [1]
    with db.transaction():
        pass
    assert seen == [1]  # and never again


def test_a_rolled_back_transactions_actions_never_run(db):
    seen = []
    with pytest.raises(RuntimeError):
        with db.transaction() as tx:
            tx.execute("INSERT INTO peer_state (code) VALUES ('x')")
            tx.on_commit(lambda: seen.append("rolled back"))
            raise RuntimeError("boom")
    with db.transaction() as tx:  # the next commit on the same thread runs only its own actions
        tx.on_commit(lambda: seen.append("committed"))
    assert seen == ["committed"]
    assert db.query_one("SELECT count(*) AS n FROM peer_state")["n"] == 0


def test_a_nested_part_that_rolls_back_drops_its_actions_and_keeps_the_outer_ones(db):
    seen = []
    with db.transaction() as tx:
        tx.on_commit(lambda: seen.append("outer"))
        with pytest.raises(RuntimeError):
            with db.transaction() as inner:
                assert inner is tx  # nested calls join the outer transaction
                inner.execute("INSERT INTO peer_state (code) VALUES ('inner')")
                inner.on_commit(lambda: seen.append("inner"))
                raise RuntimeError("inner fails")
        tx.execute("INSERT INTO peer_state (code) VALUES ('outer')")
    assert seen == ["outer"]
    assert [r["code"] for r in db.query("SELECT code FROM peer_state")] == ["outer"]


def test_actions_run_in_order_and_one_failing_does_not_stop_the_rest(db):
    seen = []
    with db.transaction() as tx:
        tx.on_commit(lambda: seen.append(1))
        tx.on_commit(lambda: 1 / 0)
        tx.on_commit(lambda: seen.append(3))
    assert seen == [1, 3]


def test_a_refusal_in_a_rolled_back_send_publishes_no_event(db, pki, clock):
    """The bug this replaces: refuse() queued a REJECTED event that the thread's next commit published."""
    bus = EventBus()
    sub = bus.subscribe({REJECTED})
    router = Router(A, {B: "x:1"})
    maker = EnvelopeMaker(pki.signer(A), router, clock, lifetime_s=60, max_size=1 << 20)
    disp = Dispatcher(db, maker, pki.trust(clock), router, clock, lambda *a: [], RetryPolicy(), events_=bus)
    nobody = Rejected(Reason.UNKNOWN_RECIPIENT, "nobody")

    def sealed() -> Sealed:
        return maker.seal(pb.Payload(document=pb.Document(subject="x")), B, "", refused=nobody)

    lost, kept = sealed(), sealed()
    with pytest.raises(RuntimeError):
        with db.transaction() as tx:
            disp.refuse(tx, lost, "x", None)
            raise RuntimeError("the send fails after the refusal was recorded")
    with db.transaction() as tx:
        disp.refuse(tx, kept, "x", None)
    published = []
    while (e := sub.get(timeout=0)) is not None:
        published.append(e.message_id)
    assert published == [kept.header.message_id]
    assert outbox.get(db, lost.header.message_id) is None


def test_parts_nested_in_parts_undo_only_themselves_with_the_same_few_savepoint_statements(db):
    """A nested part is a savepoint named by its depth: a part inside a part, rolled back, undoes only
    itself, and siblings reuse the same statements (random names made every part a new statement)."""
    said = []
    db.db.conn.set_trace_callback(lambda sql: said.append(sql) if sql.split()[0] in ("SAVEPOINT", "RELEASE", "ROLLBACK") else None)
    with db.transaction() as tx:
        for i in range(3):
            with db.transaction():
                tx.execute("INSERT INTO peer_state (code) VALUES (?)", (f"kept{i}",))
                with pytest.raises(RuntimeError):
                    with db.transaction():
                        tx.execute("INSERT INTO peer_state (code) VALUES (?)", (f"undone{i}",))
                        with db.transaction():  # released into its parent, undone with it
                            tx.execute("INSERT INTO peer_state (code) VALUES (?)", (f"deeper{i}",))
                        raise RuntimeError("this part fails")
                with db.transaction():
                    tx.execute("INSERT INTO peer_state (code) VALUES (?)", (f"sibling{i}",))
        with pytest.raises(RuntimeError):
            with db.transaction():
                tx.execute("INSERT INTO peer_state (code) VALUES ('last')")
                raise RuntimeError("fails too")
    db.db.conn.set_trace_callback(None)
    assert sorted(r["code"] for r in db.query("SELECT code FROM peer_state")) == sorted(
        [f"kept{i}" for i in range(3)] + [f"sibling{i}" for i in range(3)])
    nested = {s for s in said if "member" not in s}
    assert nested == {"SAVEPOINT part1", "RELEASE part1", "SAVEPOINT part2", "RELEASE part2", "ROLLBACK TO part2",
                      "SAVEPOINT part3", "RELEASE part3", "ROLLBACK TO part1"}
