"""A predecessor's mailbox copied into its successor's: marked with its code, once, and all or nothing."""
from __future__ import annotations

import pytest

from node import envelope, receipts
from node.errors import Reason, Rejected
from node.exchange import custody_commit
from node.pb import envelope_pb2 as pb
from node.store import audit, custody, inbox, outbox, successions, takeover
from node.store.database import Database

A, B, Z = "000.00.01.H53", "000.00.02.H53", "000.00.03.H53"  # B retired into Z


def predecessor_with_mail(tmp_path, pki, clock) -> tuple[Database, str, str]:
    """B's mailbox: one document received from A (with the receipt B signed), one document B sent to A."""
    db = Database(tmp_path / "b.sqlite3")
    header, raw = envelope.seal(pki.signer(A), B, pb.Payload(document=pb.Document(subject="to B")), clock=clock,
                                lifetime_s=60)
    item = custody.Incoming(header.message_id, envelope.sha256(raw), raw, header, A, "to B", None)
    custody_commit.take(db, [item], lambda pairs: receipts.issue(pki.signer(B), pairs, clock), clock.now_ms())
    sent_h, sent_raw = envelope.seal(pki.signer(B), A, pb.Payload(document=pb.Document(subject="from B")),
                                     clock=clock, lifetime_s=60)
    with db.transaction() as tx:
        outbox.enqueue_in(tx, sent_h, sent_raw, A, "from B", clock.now_ms(), doc_id="doc-1")
        outbox.mark_final(tx, sent_h.message_id, A, outbox.REJECTED, "test", clock.now_ms())  # settled: drained
    db.close()
    return tmp_path / "b.sqlite3", header.message_id, sent_h.message_id


def take(db, source, check=lambda e: None):
    with db.transaction() as tx:
        return takeover.import_in(tx, B, source, check, 1000, "ab" * 32)


def test_import_marks_rows_with_the_predecessor_and_a_second_import_changes_nothing(tmp_path, pki, clock):
    path, received, sent = predecessor_with_mail(tmp_path, pki, clock)
    z = Database(tmp_path / "z.sqlite3")
    source = takeover.Predecessor(path)
    assert source.size() == takeover.Size(inbox=1, sent=1, largest=source.size().largest, pending=0)
    got = take(z, source)
    assert (got.inbox, got.sent, got.already) == (1, 1, 0)
    [entry] = inbox.list_entries(z)
    assert entry["message_id"] == received and takeover.held_for(z, received) == B
    assert takeover.held_receipt(z, received) == custody.stored_receipt(
        Database(tmp_path / "b.sqlite3"), received).SerializeToString()
    assert outbox.recipient_of_document(z, sent) == A
    head = audit.head(z)
    assert [r["peer"] for r in audit.recent(z, event=audit.TAKEOVER)] == [B]
    again = take(z, source)
    assert (again.inbox, again.sent, again.already) == (0, 0, 2)
    assert [t.inbox for t in takeover.takeovers(z)] == [1]  # one takeover recorded, the second wrote nothing
    assert audit.head(z) == head  # not even an audit row


def test_a_refused_envelope_keeps_everything_out(tmp_path, pki, clock):
    path, received, sent = predecessor_with_mail(tmp_path, pki, clock)
    z = Database(tmp_path / "z.sqlite3")

    def refuse_sent(e):
        if e.role == "sent":
            raise Rejected(Reason.MALFORMED, "no")

    with pytest.raises(Rejected):
        take(z, takeover.Predecessor(path), refuse_sent)
    assert inbox.count(z) == 0 and takeover.takeovers(z) == [] and takeover.held_for(z, received) is None


def test_a_predecessors_document_refused_as_retired_is_not_sent_again_by_its_successor(tmp_path, pki, clock):
    """X's node never followed a document of its a relay refused as RECIPIENT_RETIRED: history, not Z's to send."""
    path, _, sent = predecessor_with_mail(tmp_path, pki, clock)
    b = Database(path)
    notice = pb.Header(message_id="n" * 32, sender=A, recipient=B, kind=pb.NOTICE, ref_message_id=sent)
    with b.transaction() as tx:
        inbox.add_in(tx, notice, subject=successions.RETIRED_NOTICE, now_ms=1, envelope=b"notice")
    assert [r.message_id for r in successions.refused_as_retired(b, 10)] == [sent]  # X would have followed it
    b.close()
    z = Database(tmp_path / "z.sqlite3")
    take(z, takeover.Predecessor(path))
    assert successions.refused_as_retired(z, 10) == []


def _with_statuses(path, pki, clock, received: str, sent: str) -> None:
    """B's history gets a status each way: the 01 it returned on the document it received (its envelope in B's
    outbox), a 03 A returned on the document B sent (its envelope in B's inbox), and the send's `docs` row."""
    from node.store import documents, statuses
    b = Database(path)
    ours, _ = envelope.seal(pki.signer(B), A, pb.Payload(status=pb.Status(status_code="01")), clock=clock,
                            lifetime_s=60, ref_message_id=received)
    theirs, _ = envelope.seal(pki.signer(A), B, pb.Payload(status=pb.Status(status_code="03")), clock=clock,
                              lifetime_s=60, ref_message_id=sent)
    with b.transaction() as tx:
        outbox.enqueue_in(tx, ours, b"01", A, "", clock.now_ms())
        statuses.record_reported(tx, received, "01", ours.message_id, clock.now_ms())
        inbox.add_in(tx, theirs, subject="", now_ms=clock.now_ms(), envelope=b"03")
        statuses.record_returned(tx, theirs.message_id, sent, A, "03", clock.now_ms(), b"", clock.now_ms())
        documents.add_in(tx, documents.SentDocument("doc-1", clock.now_ms(), pb.DOCUMENT, "from B", "", 0, None))
    b.close()


def test_the_successors_own_statistics_leave_out_the_history_it_took_over(tmp_path, pki, clock):
    """What B did stays counted under B's code, as B's node reported it up the tree; Z's own counters count what
    Z did, or every imported document and status would be counted twice above Z."""
    from node.store import stats
    path, received, sent = predecessor_with_mail(tmp_path, pki, clock)
    _with_statuses(path, pki, clock, received, sent)
    b = Database(path)
    of_b = stats.own_counters(b, B, "B", 0)
    b.close()
    assert (of_b.docs_sent, of_b.envelopes_sent, of_b.docs_received, of_b.statuses_sent, of_b.statuses_received,
            of_b.distinct_codes_returned) == (1, 1, 1, 1, 1, 1)
    z = Database(tmp_path / "z.sqlite3")
    header, raw = envelope.seal(pki.signer(A), Z, pb.Payload(document=pb.Document(subject="to Z")), clock=clock,
                                lifetime_s=60)
    custody_commit.take(z, [custody.Incoming(header.message_id, envelope.sha256(raw), raw, header, A, "to Z", None)],
                        lambda pairs: receipts.issue(pki.signer(Z), pairs, clock), clock.now_ms())
    before = stats.own_counters(z, Z, "Z", 0)
    got = take(z, takeover.Predecessor(path))
    assert (got.inbox, got.sent) == (2, 2)  # the document and the 03 received, the document and the 01 sent
    assert stats.own_counters(z, Z, "Z", 0) == before
    assert (before.docs_received, before.docs_sent, before.statuses_sent, before.statuses_received) == (1, 0, 0, 0)
    from node.store import statuses
    assert statuses.counts_by_code(z) == {"returned": {}, "received": {}}  # the metrics' counts alike
    z.close()


def test_statuses_taken_over_before_their_rows_were_marked_are_marked_when_the_mailbox_is_opened(tmp_path, pki,
                                                                                                  clock):
    """A mailbox that took a history over before its status rows carried `held_for` (migration 0056): a status
    whose own envelope was imported is the predecessor's; the agency's own stay unmarked."""
    import sqlite3

    import sqlite_utils

    from node.store import stats
    from node.store.schema import migrate
    path, received, sent = predecessor_with_mail(tmp_path, pki, clock)
    _with_statuses(path, pki, clock, received, sent)
    old = tmp_path / "z-old.sqlite3"
    conn = sqlite3.connect(old)
    assert migrate(sqlite_utils.Database(conn), stop_before="0056_held_statuses")[-1] == "0055_answered_by"
    source = takeover.Predecessor(path)
    with conn:  # the import as it was: status rows copied without held_for
        for row, raw, _ in source.received():
            conn.execute(f"INSERT INTO inbox ({', '.join(row)}, held_for) VALUES ({','.join('?' * len(row))}, ?)",
                         [*row.values(), B])
        for row, raw in source.sent():
            conn.execute(f"INSERT INTO outbox ({', '.join(row)}, held_for) VALUES ({','.join('?' * len(row))}, ?)",
                         [*row.values(), B])
        for table, columns in (("status_in", takeover.STATUS_IN), ("status_out", takeover.STATUS_OUT)):
            for row in source.rows(table, columns, "seq"):
                conn.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({','.join('?' * len(row))})",
                             list(row.values()))
        conn.execute("INSERT INTO status_out (doc_message_id, status_code, status_message_id, issued_ms)"
                     " VALUES ('own-doc', '02', 'own-02', 1)")  # one of Z's own
    conn.close()
    z = Database(old)
    assert {r["status_message_id"]: r["held_for"] for r in z.query("SELECT * FROM status_out")} == {
        next(iter(z.query("SELECT status_message_id FROM status_out WHERE status_code = '01'")))["status_message_id"]: B,
        "own-02": None}
    assert [r["held_for"] for r in z.query("SELECT held_for FROM status_in")] == [B]
    counted = stats.own_counters(z, Z, "Z", 0)
    assert (counted.statuses_sent, counted.statuses_received, counted.docs_received) == (1, 0, 0)
    z.close()


def test_rows_beside_the_envelopes_come_only_for_the_envelopes_imported(tmp_path, pki, clock):
    """A backup is signed by its predecessor, whatever its operator put in it: a status about one of the
    successor's own documents, progress of a document nobody sent, a sent document with no envelope are not
    taken into the successor's mailbox; those about the imported envelopes are."""
    from node.store import statuses
    path, received, sent = predecessor_with_mail(tmp_path, pki, clock)
    _with_statuses(path, pki, clock, received, sent)
    z = Database(tmp_path / "z.sqlite3")
    zs_own = "z" * 32  # a document Z sent itself
    b = Database(path)
    with b.transaction() as tx:
        statuses.record_returned(tx, "forged-status", zs_own, A, "16", 1, b"", 1)  # about Z's own document
        statuses.record_reported(tx, "no-such-document", "05", "forged-05", 1)
        tx.execute("INSERT INTO doc_progress (message_id, sender) VALUES ('no-such-document', ?)", (A,))
        tx.execute("INSERT INTO docs (doc_id, created_ms, kind, subject, document_id, business_doc_type)"
                   " VALUES ('doc-without-envelope', 1, 1, 'x', '', 0)")
    b.close()
    take(z, takeover.Predecessor(path))
    assert statuses.returned_on(z, zs_own) == []
    assert [r.status_code for r in statuses.returned_on(z, sent)] == ["03"]
    assert statuses.reported(z, "no-such-document", "05") is None and statuses.reported(z, received, "01")
    assert z.query("SELECT doc_id FROM docs") == [{"doc_id": "doc-1"}]
    assert z.query("SELECT message_id FROM doc_progress WHERE message_id = 'no-such-document'") == []
    z.close()
