"""Custody's stages since the receipt and the automatic 01 are made before the transaction
(node.exchange.custody_commit): signed outside the writer's lock, written inside it, answered after
the commit. Each stage is killed -9 in a real process on a real mailbox: nothing is stored, nobody
was answered, and the sender's retry is taken once, with one 01."""
from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from node import envelope, receipts
from node.errors import Reason, Rejected
from node.exchange import custody_commit
from node.identity import keys
from node.pb import envelope_pb2 as pb
from node.store import audit, custody, inbox, outbox
from node.store.database import Database

A, B = "000.00.01.H53", "000.00.02.H53"
WAIT = 20


def _signer(code: str) -> envelope.Signer:
    return envelope.Signer(code, keys.generate_key(), b"certificate of " + code.encode())


def _document(sender: envelope.Signer, message_id: str) -> custody.Incoming:
    header, raw = envelope.seal(sender, B, pb.Payload(document=pb.Document(subject="s")), lifetime_s=600,
                                message_id=message_id)
    return custody.Incoming(header.message_id, envelope.sha256(raw), raw, header, A, "s", None)


def _reply(receiver: envelope.Signer, doc: custody.Incoming):
    """The rows an automatic 01 hands custody: its outbox entry (signed already) and nothing else."""
    header, raw = envelope.seal(receiver, A, pb.Payload(status=pb.Status(status_code="01")), lifetime_s=600,
                                ref_message_id=doc.message_id)
    return header, functools.partial(outbox.enqueue_in, header=header, envelope=raw, next_hop=A, subject="status 01",
                                     now_ms=header.created_ms)


def test_receipts_are_signed_before_the_writer_is_taken(tmp_path):
    db = Database(tmp_path / "m.sqlite3")
    signer, sender = _signer(B), _signer(A)
    held = []

    def make(pairs):
        held.append(db._owner == threading.get_ident())  # this thread inside the transaction
        return receipts.issue(signer, pairs)

    try:
        batch = [_document(sender, f"m{i}") for i in range(3)]
        got = custody_commit.take(db, batch, make, 1)
        assert all(isinstance(r, pb.Receipt) for r in got)
        assert held == [False]  # once, outside the lock
    finally:
        db.close()


def test_a_receipt_never_covers_an_envelope_that_was_not_stored(tmp_path):
    """One envelope of the batch fails in its savepoint: the receipts signed ahead covered it, so the
    others' are signed again over what was stored (a peer holding the batch could otherwise make a
    proof of custody for the refused one)."""
    db = Database(tmp_path / "m.sqlite3")
    signer, sender = _signer(B), _signer(A)
    calls = []

    def make(pairs):
        calls.append([m for m, _ in pairs])
        return receipts.issue(signer, pairs)

    def refuse(tx):
        raise Rejected(Reason.INVALID_REQUEST, "refused while stored")

    try:
        good, bad = _document(sender, "good"), _document(sender, "bad")
        bad.writes = (refuse,)
        r_good, r_bad = custody_commit.take(db, [good, bad], make, 1)
        assert isinstance(r_bad, Rejected) and r_bad.reason is Reason.INVALID_REQUEST
        assert calls == [["good", "bad"], ["good"]]
        assert list(r_good.proof) == []  # its root is its own leaf: nothing else is under the signature
        assert custody.stored_receipt(db, "good") == r_good and custody.stored_receipt(db, "bad") is None
        assert inbox.get(db, "bad") is None
    finally:
        db.close()


def test_a_batch_is_stored_in_one_savepoint_and_one_failing_there_is_still_refused_alone(tmp_path):
    """The common case costs two statements a batch, not two an envelope; when one envelope fails, the batch's
    savepoint is undone and each is stored in its own: the others are kept, their after-commit actions run
    once (the undone attempt's are dropped), and the failing one is refused with its reason."""
    db = Database(tmp_path / "m.sqlite3")
    signer, sender = _signer(B), _signer(A)
    said, ran = [], []
    db.db.conn.set_trace_callback(lambda sql: said.append(sql) if sql.startswith("SAVEPOINT part") else None)

    def noted(name):
        return lambda tx: tx.on_commit(lambda: ran.append(name))

    def refuse(tx):
        raise Rejected(Reason.INVALID_REQUEST, "refused while stored")

    try:
        batch = [_document(sender, f"m{i}") for i in range(5)]
        for item in batch:
            item.writes = (noted(item.message_id),)
        assert all(isinstance(r, pb.Receipt) for r in custody_commit.take(db, batch, lambda p: receipts.issue(signer, p), 1))
        assert said == ["SAVEPOINT part1"] and ran == [f"m{i}" for i in range(5)]
        said.clear(), ran.clear()
        batch = [_document(sender, f"n{i}") for i in range(3)]
        for item in batch:
            item.writes = (noted(item.message_id),)
        batch[1].writes += (refuse,)
        got = custody_commit.take(db, batch, lambda p: receipts.issue(signer, p), 2)
        assert [type(r) for r in got] == [pb.Receipt, Rejected, pb.Receipt]
        assert got[1].reason is Reason.INVALID_REQUEST
        assert len(said) == 1 + 3 and ran == ["n0", "n2"]
        assert inbox.get(db, "n1") is None and inbox.get(db, "n0") is not None and inbox.get(db, "n2") is not None
    finally:
        db.db.conn.set_trace_callback(None)
        db.close()


def test_a_duplicate_in_the_batch_is_not_under_the_new_receipts(tmp_path):
    db = Database(tmp_path / "m.sqlite3")
    signer, sender = _signer(B), _signer(A)
    try:
        old = _document(sender, "old")
        [first] = custody_commit.take(db, [old], lambda p: receipts.issue(signer, p), 1)
        new = _document(sender, "new")
        again, fresh = custody_commit.take(db, [old, new], lambda p: receipts.issue(signer, p), 2)
        assert again.SerializeToString() == first.SerializeToString()
        assert list(fresh.proof) == []
    finally:
        db.close()


CHILD = textwrap.dedent("""
    import functools, sys, threading
    sys.path.insert(0, sys.argv[3])
    from node import receipts
    from node.exchange import custody_commit
    from node.store.database import Database
    from tests.store import test_custody_stages as t

    stage = sys.argv[2]
    db = Database(sys.argv[1])
    receiver, sender = t._signer(t.B), t._signer(t.A)
    doc = t._document(sender, "doc1")
    _, queue_reply = t._reply(receiver, doc)
    never = threading.Event()

    def make(pairs):
        made = receipts.issue(receiver, pairs)
        if stage == "signed":
            print("signed, not yet in the transaction", flush=True)
            never.wait()
        return made

    def written(tx):
        print("written, not yet committed", flush=True)
        never.wait()

    doc.writes = (queue_reply,) + ((written,) if stage == "written" else ())
    custody_commit.take(db, [doc], make, 1)
    print("answered", flush=True)  # a receipt would go out here
""")


@pytest.mark.parametrize("stage", ["signed", "written"])
def test_kill_9_at_each_stage_of_custody_stores_and_answers_nothing_and_the_retry_is_taken_once(tmp_path, stage):
    """signed: receipts and the 01 made, the writer not yet taken. written: the envelope's rows and its
    01 in the open transaction, not committed. Killed there, the mailbox holds none of it, the sender
    heard nothing, and its retry is stored once with one 01."""
    mailbox = tmp_path / "m.sqlite3"
    Database(mailbox).close()
    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(mailbox), stage, str(root)], stdout=subprocess.PIPE,
                             text=True, cwd=root)
    try:
        line = child.stdout.readline()
        assert line.strip() == {"signed": "signed, not yet in the transaction",
                                "written": "written, not yet committed"}[stage], line
        os.kill(child.pid, signal.SIGKILL)
        rest = child.stdout.read()
    finally:
        child.kill()
        child.wait(WAIT)
    assert "answered" not in rest
    db = Database(mailbox)
    try:
        assert custody.stored_receipt(db, "doc1") is None and inbox.get(db, "doc1") is None
        assert db.query("SELECT message_id FROM outbox") == []
        assert audit.recent(db) == []
        receiver, sender = _signer(B), _signer(A)
        doc = _document(sender, "doc1")
        reply_header, queue_reply = _reply(receiver, doc)
        doc.writes = (queue_reply,)
        [r] = custody_commit.take(db, [doc], lambda p: receipts.issue(receiver, p), 2)
        [again] = custody_commit.take(db, [doc], lambda p: receipts.issue(receiver, p), 3)  # a second retry
        assert again.SerializeToString() == r.SerializeToString()
        assert inbox.count(db) == 1
        assert [row["message_id"] for row in db.query("SELECT message_id FROM outbox")] == [reply_header.message_id]
    finally:
        db.close()
