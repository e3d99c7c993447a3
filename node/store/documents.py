"""Documents this node sent: one `docs` row per send, grouping its envelopes (one per recipient).

Tracking and later changes (revoke, update, replace, take-back) start from this row; a
change is itself a send whose `ref_doc_id` names the original.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..pb import envelope_pb2 as pb
from .database import Database


@dataclass(frozen=True)
class SentDocument:
    doc_id: str
    created_ms: int
    kind: int
    subject: str
    document_id: str          # the edXML DocumentId, "" for statuses
    business_doc_type: int    # 0 an original, 1 revoke, 2 update, 3 replace
    ref_doc_id: str | None    # the original a change refers to
    held_for: str | None = None  # a predecessor's send this node took over (node.takeover): its code

    @property
    def is_original_document(self) -> bool:
        return self.kind == pb.DOCUMENT and self.business_doc_type == 0


def add_in(conn, doc: SentDocument) -> None:
    conn.execute(
        "INSERT INTO docs (doc_id, created_ms, kind, subject, document_id, business_doc_type, ref_doc_id)"
        " VALUES (?,?,?,?,?,?,?)",
        (doc.doc_id, doc.created_ms, doc.kind, doc.subject, doc.document_id, doc.business_doc_type, doc.ref_doc_id),
    )


def find(db: Database, ref: str) -> SentDocument | None:
    """The send `ref` names: a doc id, or the message id of one of its envelopes."""
    row = db.query_one("SELECT * FROM docs WHERE doc_id = ?", (ref,)) or db.query_one(
        "SELECT docs.* FROM docs JOIN outbox USING (doc_id) WHERE outbox.message_id = ?", (ref,))
    return SentDocument(**row) if row else None


def changes_of(db: Database, doc_id: str) -> list[str]:
    """Doc ids of the changes sent for `doc_id`, oldest first."""
    return [r["doc_id"] for r in db.query("SELECT doc_id FROM docs WHERE ref_doc_id = ? ORDER BY created_ms", (doc_id,))]


def newest_original(db: Database, document_id: str) -> str | None:
    """Doc id of the newest original document sent with this edXML DocumentId."""
    row = db.query_one("SELECT doc_id FROM docs WHERE document_id = ? AND kind = ? AND business_doc_type = 0"
                       " ORDER BY created_ms DESC LIMIT 1", (document_id, pb.DOCUMENT))
    return row["doc_id"] if row else None
