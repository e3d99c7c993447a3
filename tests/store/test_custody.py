"""Custody: accepted envelopes are stored once, a duplicate gets the stored receipt back, the audit log is append-only."""
from __future__ import annotations

import sqlite3

import pytest

from node import envelope
from node.errors import Reason, Rejected
from node.pb import envelope_pb2 as pb
from node.store import audit, custody, inbox
from node.store.database import Database

A, B = "000.00.01.H53", "000.00.02.H53"


@pytest.fixture
def db(tmp_path):
    d = Database(tmp_path / "m.sqlite3")
    yield d
    d.close()


def incoming(pki, clock, subject="x", message_id=None):
    header, raw = envelope.seal(pki.signer(A), B, pb.Payload(document=pb.Document(subject=subject)),
                                clock=clock, lifetime_s=60, message_id=message_id)
    return custody.Incoming(header.message_id, envelope.sha256(raw), raw, header, A, subject, None)


def receipt_maker(pki, clock):
    return lambda it: envelope.make_receipt(pki.signer(B), it.message_id, it.digest, clock)


def test_new_envelope_lands_in_inbox_with_receipt(db, pki, clock):
    item = incoming(pki, clock)
    [receipt] = custody.accept(db, [item], receipt_maker(pki, clock), clock.now_ms())
    assert isinstance(receipt, pb.Receipt)
    assert [e["message_id"] for e in inbox.list_entries(db)] == [item.message_id]
    assert custody.stored_receipt(db, item.message_id) == receipt


def test_duplicate_gets_same_receipt_and_is_not_stored_twice(db, pki, clock):
    item = incoming(pki, clock)
    [first] = custody.accept(db, [item], receipt_maker(pki, clock), clock.now_ms())
    clock.advance(5)
    [again] = custody.accept(db, [item], receipt_maker(pki, clock), clock.now_ms())
    assert again.SerializeToString() == first.SerializeToString()
    assert inbox.count(db) == 1
    assert [r["event"] for r in audit.recent(db)] == [audit.DUPLICATE, audit.RECEIVED]


def test_duplicate_within_one_batch_is_stored_once(db, pki, clock):
    item = incoming(pki, clock)
    r1, r2 = custody.accept(db, [item, item], receipt_maker(pki, clock), clock.now_ms())
    assert r1.SerializeToString() == r2.SerializeToString()
    assert inbox.count(db) == 1


def test_same_id_other_content_is_refused(db, pki, clock):
    item = incoming(pki, clock, message_id="m1")
    other = incoming(pki, clock, subject="different", message_id="m1")
    custody.accept(db, [item], receipt_maker(pki, clock), clock.now_ms())
    [result] = custody.accept(db, [other], receipt_maker(pki, clock), clock.now_ms())
    assert isinstance(result, Rejected) and result.reason is Reason.DUPLICATE_CONFLICT
    assert inbox.get(db, "m1")["subject"] == "x"


def test_audit_log_refuses_update_and_delete(db, pki, clock):
    custody.accept(db, [incoming(pki, clock)], receipt_maker(pki, clock), clock.now_ms())
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
    custody.accept(d, [item], receipt_maker(pki, clock), clock.now_ms())
    d.close()
    d2 = Database(path)  # migrations are not re-applied, data is there
    assert inbox.get(d2, item.message_id)["sender"] == A
    assert d2.query_one("PRAGMA journal_mode")["journal_mode"] == "wal"
    assert d2.query_one("PRAGMA synchronous")["synchronous"] == 2  # FULL: fsync on every commit
    d2.close()


def test_ack_marks_once(db, pki, clock):
    item = incoming(pki, clock)
    custody.accept(db, [item], receipt_maker(pki, clock), clock.now_ms())
    assert inbox.ack(db, item.message_id, clock.now_ms()) is True
    assert inbox.ack(db, item.message_id, clock.now_ms()) is False
    assert inbox.ack(db, "nope", clock.now_ms()) is None
    assert inbox.count(db, only_new=True) == 0
