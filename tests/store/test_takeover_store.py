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
