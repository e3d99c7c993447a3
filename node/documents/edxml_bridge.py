"""edXML packets in and out of the node.

Import sends a packet through the same paths the local API uses, keeping the packet's
own fields: a new document goes to its recipients (default: its To organ ids); a
revoke / update / replace or a take-back request (13) goes to the recipients of the
original, found by its DocumentId among the documents this node sent (or named by the
caller); any other status is reported on the received document the caller names, or
else the one its ResponseFor/DocumentId names (of several received documents carrying it, those its
ResponseFor/OrganId sent; refused as ambiguous when still several), under the same ordering rules as
SetStatus; a 01 the agency's software sends after the node's own is sent on once with its fields. A packet
whose From is an agency this node may not send for is refused before anything is queued.

Export writes a received document or status as a QCVN 102 packet: what the packet
carried is written back as it came, its TraceHeaderList followed by the path this node
verified, and its From bound to the verified sender.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..edxml import EdxmlError, export_edxml, import_edxml
from ..edxml.wrapping import unwrapped
from ..errors import Reason, Rejected
from ..envelope import Verified
from ..exchange.outgoing import Outgoing, Posted
from ..limits import Limits
from ..pb import envelope_pb2 as pb
from ..store import documents, inbox, progress, statuses
from ..store.database import Database, Transaction
from . import rules
from .lifecycle import CHANGE_STATE, Lifecycle, edxml_time

MAX_CANDIDATES = 10  # message ids listed when a DocumentId is ambiguous


@dataclass(frozen=True)
class Imported:
    kind: str                         # "document" or "status"
    warnings: list[str]
    sent: Posted | None = None        # a document, a change or a take-back request, sent on
    status_message_id: str = ""       # a status reported on a received document


@dataclass(frozen=True)
class Exported:
    packet: bytes
    file_name: str
    warnings: list[str]


class EdxmlBridge:
    def __init__(self, db: Database, outgoing: Outgoing, lifecycle: Lifecycle,
                 verify_stored: Callable[[bytes], Verified], limits: Limits = Limits(),
                 max_message: int = 16 << 20) -> None:
        self.db, self.outgoing, self.lifecycle, self.limits = db, outgoing, lifecycle, limits
        self.verify_stored = verify_stored  # raw envelope bytes -> Verified (re-checked at export)
        self.max_message = max_message      # an unwrapped export stays within this (the API's replies must fit)

    def import_packet(self, packet: bytes, recipients: list[str], ref: str = "",
                      within: Callable[[Transaction, Imported], Any] | None = None) -> Imported:
        """`within(tx, imported)` runs inside the commit that sends what the packet asks for (not at all when
        nothing is committed: a 01 this node sent already)."""
        warnings: list[str] = []
        try:
            msg = import_edxml(packet, warnings=warnings, max_warnings=self.limits.import_warnings,
                               max_depth=self.limits.xml_depth, max_ns_decls=self.limits.xml_namespace_declarations)
        except EdxmlError as e:
            raise Rejected(Reason.MALFORMED, f"edXML: {e}") from None
        self.lifecycle.origin.check(msg.from_organ, "packet")  # before anything is looked up or queued
        sent_hook = within and (lambda kind: lambda tx, posted: within(tx, Imported(kind, warnings, sent=posted)))
        if isinstance(msg, pb.Document):
            return Imported("document", warnings, sent=self._document(msg, recipients, ref,
                                                                      sent_hook and sent_hook("document")))
        if msg.status_code == rules.TAKE_BACK:
            original = ref or self._sent_doc(msg.response_for.document_id)
            return Imported("status", warnings,
                            sent=self.lifecycle.change(original, 0, True, "", None, pb.StaffInfo(), status=msg,
                                                       within=sent_hook and sent_hook("status")))
        received = ref or self._received_doc(msg.response_for.document_id, msg.response_for.organ_id.strip())
        named = progress.get(self.db, received) if ref else None
        if named is not None and named.document_id != msg.response_for.document_id:
            warnings.append(f"ResponseFor/DocumentId is {msg.response_for.document_id!r}, but {ref} (named by "
                            f"ref_message_id) has DocumentId {named.document_id!r}; the status is reported on {ref}")
        status_hook = within and (lambda tx, mid: within(tx, Imported("status", warnings, status_message_id=mid)))
        if msg.status_code == rules.ARRIVED:  # the agency's software sends one after ours (sent when it was stored)
            mid, why = self.lifecycle.confirm_arrival(received, msg, within=status_hook)
            if why:
                warnings.append(why)
            return Imported("status", warnings, status_message_id=mid)
        return Imported("status", warnings, status_message_id=self.lifecycle.set_status(
            received, msg.status_code, msg.staff_info, msg.description, status=msg, within=status_hook))

    def _document(self, doc: pb.Document, recipients: list[str], ref: str, within=None) -> Posted:
        btype = doc.business.business_doc_type
        if btype in CHANGE_STATE:
            original = ref or self._sent_doc(doc.document_id, doc.business.document_id)
            return self.lifecycle.change(original, btype, False, "", doc, pb.StaffInfo(), within=within)
        targets = recipients or [t.organ_id for t in doc.to if t.organ_id]
        if not targets:
            raise Rejected(Reason.INVALID_REQUEST, "the packet names no recipient (To) and none was given",
                           field="recipients")
        return self.outgoing.post(pb.Payload(document=doc), targets, priority=min(doc.other_info.priority, 4),
                                  within=within)

    def _sent_doc(self, *document_ids: str) -> str:
        for document_id in filter(None, document_ids):
            doc_id = documents.newest_original(self.db, document_id)
            if doc_id:
                return doc_id
        raise Rejected(Reason.NOT_FOUND, f"no document {' / '.join(filter(None, document_ids))} was sent from this node")

    def _received_doc(self, document_id: str, organ_id: str = "") -> str:
        """The one original document received with this DocumentId (revocations etc. are changes, not targets).

        Several: narrowed to those its ResponseFor/OrganId sent (a DocumentId is unique only per sender: two
        agencies may both number a document 12/UBND-VP on one day); still several: AMBIGUOUS_DOCUMENT, never
        a guess; the caller names the message (ref_message_id)."""
        found = progress.originals(self.db, document_id, limit=MAX_CANDIDATES + 1)
        if not found:
            raise Rejected(Reason.NOT_FOUND, f"no received document {document_id!r} to report on")
        if len(found) > 1 and organ_id:
            found = progress.originals(self.db, document_id, limit=MAX_CANDIDATES + 1, sender=organ_id) or found
        if len(found) > 1:
            shown = found[:MAX_CANDIDATES]
            raise Rejected(Reason.AMBIGUOUS_DOCUMENT,
                           f"{len(found) if len(found) <= MAX_CANDIDATES else f'more than {MAX_CANDIDATES}'} received "
                           f"documents carry DocumentId {document_id!r} (newest first: {', '.join(shown)}); "
                           "name the one this status answers (ref_message_id)",
                           field="ref_message_id", metadata={"candidates": ",".join(shown)})
        return found[0]

    def export_packet(self, message_id: str, unwrap: bool = False) -> Exported:
        """A received document or status as a packet, with its file name and what export changed.

        `unwrap`: attachments the national library zipped are written as their inner file."""
        row = inbox.get(self.db, message_id)
        if row is None:
            raise Rejected(Reason.NOT_FOUND, f"no message {message_id} in this mailbox")
        verified = self.verify_stored(row["envelope"])
        payload = verified.payload()
        body = payload.WhichOneof("body")
        if body == "notice":
            raise Rejected(Reason.INVALID_REQUEST, "a non-delivery notice has no edXML form")
        msg = getattr(payload, body)
        warnings = self._bind_from(msg, verified.header.sender)
        if unwrap and body == "document":
            msg = unwrapped(msg, self.max_message - len(row["envelope"]))
        hops = [(code, edxml_time(t)) for code, t in verified.path]
        hops.append((self.lifecycle.signer.code, edxml_time(row["received_ms"])))
        try:
            packet = export_edxml(msg, hops=hops)
        except EdxmlError as e:  # what import accepted always exports; this is a message made otherwise
            raise Rejected(Reason.INVALID_REQUEST, f"cannot be written as edXML: {e}") from None
        return Exported(packet, f"{body}_{message_id}.edxml", warnings)

    def unwrapped_payload(self, payload: pb.Payload, envelope_size: int) -> pb.Payload:
        """`payload` with the national library's zip-wrapped attachments replaced by their inner file, as far
        as a reply holding the envelope too stays within the message limit (see node.edxml.wrapping)."""
        if payload.WhichOneof("body") != "document":
            return payload
        return pb.Payload(document=unwrapped(payload.document, self.max_message - envelope_size))

    @staticmethod
    def _bind_from(msg: pb.Document | pb.Status, sender: str) -> list[str]:
        """The exported From is the verified sender: filled in when the message has none (a document sent
        before nodes filled it), replaced when it names another agency (a node that did not check)."""
        f = msg.from_organ
        if not msg.HasField("from_organ"):
            f.organ_id = sender
            return [f"the message has no From; written as its verified sender {sender}"]
        if f.organ_id != sender:
            claimed = f.organ_id
            msg.from_organ.CopyFrom(pb.Organization(organ_id=sender))
            return [f"From names {claimed!r} but the message was signed by {sender}; "
                    f"written as From {sender} (the other From fields are dropped)"]
        return []
