"""edXML packets in and out of the node.

Import sends a packet through the same paths the local API uses, keeping the packet's
own fields: a new document goes to its recipients (default: its To organ ids); a
revoke / update / replace or a take-back request (13) goes to the recipients of the
original, found by its DocumentId among the documents this node sent; any other status
is reported on the received document its ResponseFor/DocumentId names, under the same
ordering rules as SetStatus.

Export writes a received document or status as a QCVN 102 packet; its TraceHeaderList
is the packet's own trace followed by the path this node verified.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..edxml import EdxmlError, export_edxml, import_edxml
from ..errors import Reason, Rejected
from ..envelope import Verified
from ..exchange.outgoing import Outgoing, Posted
from ..limits import Limits
from ..pb import envelope_pb2 as pb
from ..store import documents, inbox, progress
from ..store.database import Database
from . import rules
from .lifecycle import CHANGE_STATE, Lifecycle, edxml_time


@dataclass(frozen=True)
class Imported:
    kind: str                         # "document" or "status"
    warnings: list[str]
    sent: Posted | None = None        # a document, a change or a take-back request, sent on
    status_message_id: str = ""       # a status reported on a received document


class EdxmlBridge:
    def __init__(self, db: Database, outgoing: Outgoing, lifecycle: Lifecycle,
                 verify_stored: Callable[[bytes], Verified], limits: Limits = Limits()) -> None:
        self.db, self.outgoing, self.lifecycle, self.limits = db, outgoing, lifecycle, limits
        self.verify_stored = verify_stored  # raw envelope bytes -> Verified (re-checked at export)

    def import_packet(self, packet: bytes, recipients: list[str]) -> Imported:
        warnings: list[str] = []
        try:
            msg = import_edxml(packet, warnings=warnings, max_warnings=self.limits.import_warnings,
                               max_depth=self.limits.xml_depth, max_ns_decls=self.limits.xml_namespace_declarations)
        except EdxmlError as e:
            raise Rejected(Reason.MALFORMED, f"edXML: {e}") from None
        if isinstance(msg, pb.Document):
            return Imported("document", warnings, sent=self._document(msg, recipients))
        if msg.status_code == rules.TAKE_BACK:
            original = self._sent_doc(msg.response_for.document_id)
            return Imported("status", warnings,
                            sent=self.lifecycle.change(original, 0, True, "", None, pb.StaffInfo(), status=msg))
        received = self._received_doc(msg.response_for.document_id)
        return Imported("status", warnings, status_message_id=self.lifecycle.set_status(
            received, msg.status_code, msg.staff_info, msg.description, status=msg))

    def _document(self, doc: pb.Document, recipients: list[str]) -> Posted:
        btype = doc.business.business_doc_type
        if btype in CHANGE_STATE:
            original = self._sent_doc(doc.document_id, doc.business.document_id)
            return self.lifecycle.change(original, btype, False, "", doc, pb.StaffInfo())
        targets = recipients or [t.organ_id for t in doc.to if t.organ_id]
        if not targets:
            raise Rejected(Reason.INVALID_REQUEST, "the packet names no recipient (To) and none was given")
        return self.outgoing.post(pb.Payload(document=doc), targets, priority=min(doc.other_info.priority, 4))

    def _sent_doc(self, *document_ids: str) -> str:
        for document_id in filter(None, document_ids):
            doc_id = documents.newest_original(self.db, document_id)
            if doc_id:
                return doc_id
        raise Rejected(Reason.NOT_FOUND, f"no document {' / '.join(filter(None, document_ids))} was sent from this node")

    def _received_doc(self, document_id: str) -> str:
        """The newest original document received with this DocumentId (revocations etc. are changes, not targets)."""
        message_id = progress.newest_original(self.db, document_id)
        if message_id is None:
            raise Rejected(Reason.NOT_FOUND, f"no received document {document_id!r} to report on")
        return message_id

    def export_packet(self, message_id: str) -> tuple[bytes, str]:
        """(packet, file name) of a received document or status."""
        row = inbox.get(self.db, message_id)
        if row is None:
            raise Rejected(Reason.NOT_FOUND, f"no message {message_id} in this mailbox")
        verified = self.verify_stored(row["envelope"])
        payload = verified.payload()
        body = payload.WhichOneof("body")
        if body == "notice":
            raise Rejected(Reason.INVALID_REQUEST, "a non-delivery notice has no edXML form")
        msg = getattr(payload, body)
        trace = [(t.organ_id, t.timestamp) for t in msg.edxml_trace]
        trace += [(code, edxml_time(t)) for code, t in verified.path]
        trace.append((self.lifecycle.signer.code, edxml_time(row["received_ms"])))
        try:
            packet = export_edxml(msg, trace=trace)
        except EdxmlError as e:
            raise Rejected(Reason.INVALID_REQUEST, f"cannot be written as edXML: {e}") from None
        return packet, f"{body}_{message_id}.edxml"
