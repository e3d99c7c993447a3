"""Custody: accepted envelopes are stored once, a duplicate gets the stored receipt back, the audit log is append-only."""
from __future__ import annotations

import sqlite3

import pytest

from node import envelope, receipts
from node.errors import Reason, Rejected
from node.pb import envelope_pb2 as pb
from node.exchange import custody_commit
from node.store import audit, custody, inbox
from node.store.database import Database

A, B = "000.00.01.H53", "000.00.02.H53"


def incoming(pki, clock, subject="x", message_id=None):
    header, raw = envelope.seal(pki.signer(A), B, pb.Payload(document=pb.Document(subject=subject)),
                                clock=clock, lifetime_s=60, message_id=message_id)
    return custody.Incoming(header.message_id, envelope.sha256(raw), raw, header, A, subject, None)


def receipt_maker(pki, clock):
    return lambda pairs: receipts.issue(pki.signer(B), pairs, clock)


def test_new_envelope_lands_in_inbox_with_receipt(db, pki, clock):
    item = incoming(pki, clock)
    [receipt] = custody_commit.take(db, [item], receipt_maker(pki, clock), clock.now_ms())
    assert isinstance(receipt, pb.Receipt)
    assert [e["message_id"] for e in inbox.list_entries(db)] == [item.message_id]
    assert custody.stored_receipt(db, item.message_id) == receipt


def test_duplicate_gets_same_receipt_and_is_not_stored_twice(db, pki, clock):
    item = incoming(pki, clock)
    [first] = custody_commit.take(db, [item], receipt_maker(pki, clock), clock.now_ms())
    clock.advance(5)
    [again] = custody_commit.take(db, [item], receipt_maker(pki, clock), clock.now_ms())
    assert again.SerializeToString() == first.SerializeToString()
    assert inbox.count(db) == 1
    assert [r["event"] for r in audit.recent(db)] == [audit.DUPLICATE, audit.RECEIVED]


def test_duplicate_within_one_batch_is_stored_once(db, pki, clock):
    item = incoming(pki, clock)
    r1, r2 = custody_commit.take(db, [item, item], receipt_maker(pki, clock), clock.now_ms())
    assert r1.SerializeToString() == r2.SerializeToString()
    assert inbox.count(db) == 1


def test_a_batch_is_receipted_under_one_signature_and_a_repeat_gets_its_own_proof_back(db, pki, clock):
    batch = [incoming(pki, clock, subject=f"s{i}") for i in range(5)]
    first = custody_commit.take(db, batch, receipt_maker(pki, clock), clock.now_ms())
    assert len({r.signature for r in first}) == 1
    for item, r in zip(batch, first):
        receipts.verify(r, pki.trust(clock), expect_receiver=B, message_id=item.message_id, envelope_digest=item.digest)
    # a retried batch with one new envelope: the old ones get their stored receipts, the new one a new signature
    extra = incoming(pki, clock, subject="new")
    again = custody_commit.take(db, [batch[3], extra, batch[0]], receipt_maker(pki, clock), clock.now_ms())
    assert again[0].SerializeToString() == first[3].SerializeToString()
    assert again[2].SerializeToString() == first[0].SerializeToString()
    assert again[1].signature != first[0].signature
    assert inbox.count(db) == 6


def test_same_id_other_content_is_refused(db, pki, clock):
    item = incoming(pki, clock, message_id="m1")
    other = incoming(pki, clock, subject="different", message_id="m1")
    custody_commit.take(db, [item], receipt_maker(pki, clock), clock.now_ms())
    [result] = custody_commit.take(db, [other], receipt_maker(pki, clock), clock.now_ms())
    assert isinstance(result, Rejected) and result.reason is Reason.DUPLICATE_CONFLICT
    assert inbox.get(db, "m1")["subject"] == "x"


def test_audit_log_refuses_update_and_delete(db, pki, clock):
    custody_commit.take(db, [incoming(pki, clock)], receipt_maker(pki, clock), clock.now_ms())
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        with db.transaction() as conn:
            conn.execute("UPDATE audit SET detail = 'x'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        with db.transaction() as conn:
            conn.execute("DELETE FROM audit")
    assert len(audit.recent(db)) == 1


def test_committed_data_survives_reopen(tmp_path, pki, clock):
    path = tmp_path / "m.sqlite3"
    d = Database(path)
    item = incoming(pki, clock)
    custody_commit.take(d, [item], receipt_maker(pki, clock), clock.now_ms())
    d.close()
    d2 = Database(path)  # migrations are not re-applied, data is there
    assert inbox.get(d2, item.message_id)["sender"] == A
    assert d2.query_one("PRAGMA journal_mode")["journal_mode"] == "wal"
    assert d2.query_one("PRAGMA synchronous")["synchronous"] == 2  # FULL: fsync on every commit
    d2.close()


def test_ack_marks_once(db, pki, clock):
    item = incoming(pki, clock)
    custody_commit.take(db, [item], receipt_maker(pki, clock), clock.now_ms())
    assert inbox.ack(db, item.message_id, clock.now_ms()) is True
    assert inbox.ack(db, item.message_id, clock.now_ms()) is False
    assert inbox.ack(db, "nope", clock.now_ms()) is None
    assert inbox.count(db, only_new=True) == 0


def test_bookkeeping_commits_skip_the_fsync_and_custody_commits_keep_it(db):
    synchronous = lambda: db.db.conn.execute("PRAGMA synchronous").fetchone()[0]  # noqa: E731  2 = FULL, 1 = NORMAL
    assert synchronous() == 2
    with db.transaction(durable=False):
        assert synchronous() == 1
    assert synchronous() == 2
    # joined to a durable transaction, a bookkeeping write commits with its fsync
    with db.transaction():
        with db.transaction(durable=False):
            assert synchronous() == 2
    # and a failed bookkeeping transaction still restores FULL
    with pytest.raises(RuntimeError):
        with db.transaction(durable=False):
            raise RuntimeError("boom")
    assert synchronous() == 2


def test_the_same_envelopes_handed_over_on_many_threads_at_once_are_stored_once(db, pki, clock):
    """The dedup check reads inside the custody transaction, on the writer: racing hand-overs of one batch
    (a sender retrying while its first call is still being committed) store each envelope once, and every
    caller gets the receipt that was stored."""
    import threading

    batch = [incoming(pki, clock, subject=f"s{i}") for i in range(6)]
    n = 6
    start = threading.Barrier(n)
    answers: list[list] = []
    lock = threading.Lock()

    def hand_over(i: int) -> None:
        start.wait(20)
        got = custody_commit.take(db, batch[i % 2:] + batch[:i % 2], receipt_maker(pki, clock), clock.now_ms())
        with lock:
            answers.append(got)

    workers = [threading.Thread(target=hand_over, args=(i,)) for i in range(n)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(20)
    assert len(answers) == n and inbox.count(db) == len(batch)
    for item in batch:
        stored = custody.stored_receipt(db, item.message_id).SerializeToString()
        assert {r.SerializeToString() for got in answers for r in got if r.message_id == item.message_id} == {stored}
    events = [r["event"] for r in audit.recent(db, limit=1000)]
    assert events.count(audit.RECEIVED) == len(batch) and events.count(audit.DUPLICATE) == len(batch) * (n - 1)
