"""Statuses, take-back requests and changes, on both sides of a document.

Recipient side: a document that lands gets a `doc_progress` row and an automatic 01
(queued in the same transaction, so it is sent exactly once); the agency's software
then reports 02–06, 15, 16 through SetStatus, checked against rules.py.
Sender side: statuses that come back are stored with the time the recipient's node
signed them, so Track shows them in their true order whatever order they arrived in.

Who may say what is decided by the signed header, never by a payload field: a status
is accepted only from the agency the document was sent to, and a revoke / update /
replace / take-back only from the agency that sent it.
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
from typing import Any, Callable, Mapping

from ..clock import Clock
from ..envelope import Signer
from ..errors import Reason, Rejected
from ..limits import Limits, check_document, over
from ..exchange.outgoing import Outgoing, Posted
from ..identity import sealing
from ..pb import envelope_pb2 as pb
from ..store import documents, inbox, outbox, progress, statuses
from ..store.custody import Incoming
from ..store.database import Database, Transaction
from . import notices, rules
from .origin import Origin
from .successors import Successors

log = logging.getLogger(__name__)

VN_TIME = dt.timezone(dt.timedelta(hours=7))  # edXML timestamps are local (Indochina Time)
CHANGE_STATE = {1: "revoked", 2: "updated", 3: "replaced"}
UPDATE = 2  # business_doc_type of an update: a recipient takes limits.updates_per_document of them per document


def edxml_time(ms: int) -> str:
    return _edxml_second(ms // 1000)


@functools.lru_cache(maxsize=1024)
def _edxml_second(seconds: int) -> str:
    """Cached: every 01 of a batch, and each hop of its trace, falls in the same few seconds."""
    return dt.datetime.fromtimestamp(seconds, VN_TIME).strftime("%Y/%m/%d %H:%M:%S")


def parse_edxml_time(text: str) -> int:
    try:
        return int(dt.datetime.strptime(text, "%Y/%m/%d %H:%M:%S").replace(tzinfo=VN_TIME).timestamp() * 1000)
    except ValueError:
        return 0


class Lifecycle:
    """The documents layer: intake's LocalMail (node.exchange.protocols) for mail addressed to us, and the
    sender's and recipient's operations on documents for the local API."""

    def __init__(self, db: Database, signer: Signer, name: str, outgoing: Outgoing, clock: Clock,
                 limits: Limits = Limits(), origin: Origin | None = None,
                 successors: Successors | None = None,
                 awaiting_history: Callable[[], list[str]] = lambda: []) -> None:
        self.db, self.signer, self.name, self.outgoing, self.clock = db, signer, name, outgoing, clock
        # the retired agencies we answer for whose mailboxes we have not taken over yet (`lienthong takeover`)
        self.awaiting_history = awaiting_history
        # whether an agency answers for a retired one (statuses and changes about its documents)
        self.successors = successors or Successors(lambda code: [])
        self.limits = limits
        self.origin = origin or Origin(signer.code, name)  # the From of what we send, and which From we may sign

    # ---- intake: our own mail ------------------------------------------------------

    def check(self, h: pb.Header, payload: pb.Payload) -> None:
        """What the handlers below will read, checked before the custody transaction (no database)."""
        body = payload.WhichOneof("body")
        if body == "status":
            if payload.status.status_code not in rules.ALL_CODES:
                raise Rejected(Reason.INVALID_REQUEST, f"unknown status code {payload.status.status_code[:8]!r}",
                               field="payload.status.status_code")
            if not h.ref_message_id:
                raise Rejected(Reason.MISSING_FIELD, "a status must refer to a document (header.ref_message_id)",
                               field="header.ref_message_id")
        elif body == "document":
            check_document(payload.document, self.limits)
            btype = payload.document.business.business_doc_type
            if btype not in (0, *CHANGE_STATE):
                raise Rejected(Reason.INVALID_REQUEST, f"business_doc_type must be 0..3, got {btype}",
                               field="payload.document.business.business_doc_type")
            if btype and not h.ref_message_id:
                raise Rejected(Reason.MISSING_FIELD,
                               "a revoke/update/replace must refer to the document (header.ref_message_id)",
                               field="header.ref_message_id")

    def authorize(self, item: Incoming, earlier: Mapping[str, str]) -> None:
        """Refuse statuses and changes from anyone but the document's counterpart, by what is stored.

        Runs in the custody transaction once the batch's duplicates are settled; `earlier`:
        the new documents (id -> sender) ahead in the same batch, which will be stored."""
        h, payload = item.header, item.payload
        body = payload.WhichOneof("body")
        if body == "status":
            if payload.status.status_code == rules.TAKE_BACK:
                self._require_sender_of_received(h.ref_message_id, h.sender, earlier, item.answering_for)
            elif (recipient := outbox.recipient_of_document(self.db, h.ref_message_id)) not in \
                    {h.sender, item.answering_for} - {""}:
                if recipient is None:
                    self._not_here_yet(h.ref_message_id)
                raise Rejected(Reason.NOT_RECIPIENT, f"{h.sender} did not receive document {h.ref_message_id} from us")
        elif body == "document" and payload.document.business.business_doc_type in CHANGE_STATE:
            self._require_sender_of_received(h.ref_message_id, h.sender, earlier, item.answering_for)
        elif body == "notice":
            notices.authorize(self.db, self.signer.code, self.outgoing.maker.router.hierarchy, h, payload.notice)

    def _require_sender_of_received(self, message_id: str, sender: str,
                                    earlier: Mapping[str, str] | None = None, answering_for: str = "") -> None:
        """`answering_for`: the retired agency `sender` succeeds (checked in `prepare`), which may have sent it."""
        senders = {sender, answering_for} - {""}
        if earlier and message_id in earlier:
            if earlier[message_id] not in senders:
                raise Rejected(Reason.NOT_ORIGINAL_SENDER, f"{sender} did not send us document {message_id}")
            return
        received = progress.get(self.db, message_id)
        if received is None:
            self._not_here_yet(message_id)
        if received is None or received.sender not in senders:
            raise Rejected(Reason.NOT_ORIGINAL_SENDER, f"{sender} did not send us document {message_id}")

    def _not_here_yet(self, message_id: str) -> None:
        """A status or change about a document we know nothing of (neither sent nor received), while we answer
        for retired agencies whose history we do not hold yet: it may be about one of theirs (sent to us as their
        successor), so it is refused for now (HISTORY_NOT_TAKEN_OVER: its node keeps it and sends it again),
        not for good."""
        if outbox.recipient_of_document(self.db, message_id) is not None or progress.get(self.db, message_id):
            return
        waiting = self.awaiting_history()
        if waiting:
            raise Rejected(Reason.HISTORY_NOT_TAKEN_OVER,
                           f"{self.signer.code} answers for {', '.join(sorted(waiting)[:5])} but does not hold "
                           f"their history yet: {message_id} may be theirs", metadata={"predecessors": str(len(waiting))})

    def _counterpart(self, h: pb.Header, payload: pb.Payload) -> str | None:
        """The agency a status or change must come from, by what is stored (None: nothing stored to say, or not
        a status or change): the recipient of our document; the sender of the document we received."""
        body = payload.WhichOneof("body")
        if body == "status" and payload.status.status_code != rules.TAKE_BACK:
            return outbox.recipient_of_document(self.db, h.ref_message_id)
        if body == "status" or (body == "document" and payload.document.business.business_doc_type in CHANGE_STATE):
            received = progress.get(self.db, h.ref_message_id)
            return received.sender if received is not None else None
        return None

    def _successor_answering(self, item: Incoming) -> None:
        """A status or change from another agency than its document's counterpart: if the counterpart is retired
        and the sender succeeds it (node.documents.successors: a held or looked-up succession, maybe a network
        call, so here, before the custody transaction), `item.answering_for` names the counterpart; `authorize`
        then takes it. Rejected if the counterpart is retired into another agency, or the tree cannot tell."""
        counterpart = self._counterpart(item.header, item.payload)
        if counterpart and counterpart != item.header.sender \
                and self.successors.answers_for(item.header.sender, counterpart):
            item.answering_for = counterpart

    def prepare(self, item: Incoming) -> tuple[Callable[[Transaction], object], ...]:
        """Before the custody transaction (intake, outside the writer's lock): the rows that record what
        arrived, with the automatic 01 made, signed and sealed here; the transaction only writes them
        (node.exchange.custody_commit), so the 01 still commits with the document, exactly once."""
        h, payload, now = item.header, item.payload, self.clock.now_ms()
        body = payload.WhichOneof("body")
        self._successor_answering(item)
        if body == "document":
            writes: list[Callable[[Transaction], object]] = [functools.partial(
                progress.record_arrival, message_id=h.message_id, sender=h.sender,
                document_id=payload.document.document_id)]
            btype = payload.document.business.business_doc_type
            if btype == UPDATE:  # a revocation revokes every update with it, in one transaction: bounded here
                writes.append(functools.partial(self._within_updates, original=h.ref_message_id))
            if btype in CHANGE_STATE:
                writes.append(functools.partial(progress.record_change, original=h.ref_message_id,
                                                state=CHANGE_STATE[btype], change_message_id=h.message_id,
                                                request=str(btype), with_updates=btype == 1))
            trace = [pb.EdxmlTrace(organ_id=c, timestamp=edxml_time(t)) for c, t in (item.path or [])]
            trace.append(pb.EdxmlTrace(organ_id=self.signer.code, timestamp=edxml_time(now)))
            # the key its sender published, read off the envelope intake parsed (not parsed again)
            reply_to = sealing.sender_key_in(item.envelope, h) if item.envelope is not None \
                else sealing.sender_key_of(item.raw)
            try:
                reply, sealed = self._status_reply(h.message_id, h.sender, payload.document, h.priority,
                                                   rules.ARRIVED, pb.StaffInfo(), "", trace, now,
                                                   seal_to=reply_to, clear_ok=item.header.seal == pb.PLAIN)
            except Rejected as r:  # e.g. a document filled up to the size limit: its 01 (which copies its ids) is over it
                raise Rejected(r.reason, f"its automatic status 01 cannot be sent: {r.public_detail}") from None
            writes += [functools.partial(self.outgoing.store_in, payload=reply, sealed=sealed),
                       functools.partial(statuses.record_reported, doc_message_id=h.message_id, code=rules.ARRIVED,
                                         status_message_id=sealed[0].header.message_id, issued_ms=now),
                       functools.partial(progress.record_status, message_id=h.message_id, code=rules.ARRIVED)]
            return tuple(writes)
        if body == "status":
            status = payload.status
            if status.status_code == rules.TAKE_BACK:
                return (functools.partial(progress.record_request, message_id=h.ref_message_id,
                                          request=rules.TAKE_BACK),)
            # filed under the recipient it was sent to; its successor, when that answered, beside it
            return (functools.partial(statuses.record_returned, status_message_id=h.message_id,
                                      doc_message_id=h.ref_message_id, recipient=item.answering_for or h.sender,
                                      code=status.status_code, issued_ms=h.created_ms,
                                      status=status.SerializeToString(), received_ms=now,
                                      answered_by=h.sender if item.answering_for else ""),)
        return ()

    def _within_updates(self, tx: Transaction, original: str) -> None:
        """In the update's savepoint, once it is stored (those ahead in its batch too): refused past
        limits.updates_per_document (OVER_LIMIT), alone."""
        cap = self.limits.updates_per_document
        updates = progress.updates_received(tx, original, cap)
        if updates > cap:
            raise over(f"updates of document {original}", updates, cap, "header.ref_message_id")

    # ---- recipient: reporting -----------------------------------------------------------

    def set_status(self, message_id: str, code: str, staff: pb.StaffInfo, description: str,
                   status: pb.Status | None = None,
                   within: Callable[[Transaction, str], Any] | None = None) -> str:
        """Report a status; `status` (an imported edXML packet) is sent with its own fields.

        `within(tx, status message id)` runs inside the commit that queues it."""
        if status is not None:
            self.origin.check(status.from_organ, "packet")
        before = progress.get(self.db, message_id)
        heir = self._successor_of(before.sender) if before is not None else None  # asked outside the transaction
        with self.db.transaction() as tx:
            received = progress.get(self.db, message_id)
            if received is None:
                raise Rejected(Reason.NOT_FOUND, f"no received document {message_id}")
            rules.check_step(received.status, received.pending_request, received.state, code)
            raw = inbox.envelope(self.db, message_id)
            env = pb.Envelope.FromString(raw)
            to, seal_to = heir if heir is not None else (received.sender, sealing.sender_key_of(raw))
            posted = self._post_status(tx, message_id, to, self._payload_of(env).document,
                                       pb.Header.FromString(env.header).priority, code, staff, description, [],
                                       given=status, seal_to=seal_to)
            if within is not None:
                within(tx, posted.envelopes[0][1])
        return posted.envelopes[0][1]

    def _successor_of(self, sender: str) -> tuple[str, bytes] | None:
        """Where a status about a document `sender` sent us goes when `sender` is retired: the agency that answers
        for it now, which holds its history (docs/restructuring.md), with the seal key its signed record publishes;
        None (to `sender` itself, as before) if it is not retired, or the tree cannot say now (lookups: called
        outside any transaction)."""
        try:
            chain = self.successors.chain(sender)
            if not chain or chain[-1] == self.signer.code:
                return None
            seal_to = self.outgoing.seal_key_of(chain[-1]) if self.outgoing.seal_key_of is not None else b""
        except Rejected as r:
            log.info("a status to %s goes to it: whether it is retired cannot be told now (%s)", sender, r.public_text)
            return None
        return chain[-1], seal_to

    def confirm_arrival(self, message_id: str, status: pb.Status,
                        within: Callable[[Transaction, str], Any] | None = None) -> tuple[str, str]:
        """The agency's own 01 (its software imports one when its register takes the document), after the node's
        automatic one: sent on with its description, staff and Timestamp, once, while the document is still at
        01. (message id, "") when sent; (the earlier 01's id, why) when not."""
        self.origin.check(status.from_organ, "packet")
        with self.db.transaction() as tx:
            received = progress.get(self.db, message_id)
            if received is None:
                raise Rejected(Reason.NOT_FOUND, f"no received document {message_id}")
            earlier = statuses.reported(self.db, message_id, rules.ARRIVED, last=True) or ""
            if statuses.count_reported(self.db, message_id, rules.ARRIVED) >= 2:
                return earlier, "01 (arrived) from the agency was sent once already; not sent again"
            if received.status != rules.ARRIVED or received.state != "active":
                return earlier, (f"01 (arrived) not sent: the document is at status {received.status} "
                                 f"({received.state}); the node's automatic 01 went when it was stored")
            raw = inbox.envelope(self.db, message_id)
            env = pb.Envelope.FromString(raw)
            posted = self._post_status(tx, message_id, received.sender, self._payload_of(env).document,
                                       pb.Header.FromString(env.header).priority, rules.ARRIVED, status.staff_info,
                                       status.description, [], given=status, seal_to=sealing.sender_key_of(raw))
            if within is not None:
                within(tx, posted.envelopes[0][1])
        return posted.envelopes[0][1], ""

    def _post_status(self, tx: Transaction, doc_message_id: str, to: str, doc: pb.Document, priority: int, code: str,
                     staff: pb.StaffInfo, description: str, trace: list[pb.EdxmlTrace],
                     given: pb.Status | None = None, seal_to: bytes = b"") -> Posted:
        """A status the agency reports, queued and recorded in the caller's transaction."""
        now = self.clock.now_ms()
        reply, sealed = self._status_reply(doc_message_id, to, doc, priority, code, staff, description, trace, now,
                                           given=given, seal_to=seal_to)
        posted = self.outgoing.store_in(tx, reply, sealed)
        statuses.record_reported(tx, doc_message_id, code, posted.envelopes[0][1], now)
        if code in (rules.AGREE, rules.REFUSE):
            state = None
            if code == rules.AGREE:
                received = progress.get(self.db, doc_message_id)
                state = "taken_back" if received is not None and received.pending_request == rules.TAKE_BACK else None
            progress.settle_request(tx, doc_message_id, state, refused=code == rules.REFUSE)
        else:
            progress.record_status(tx, doc_message_id, code)
        return posted

    def _status_reply(self, doc_message_id: str, to: str, doc: pb.Document, priority: int, code: str,
                      staff: pb.StaffInfo, description: str, trace: list[pb.EdxmlTrace], now: int,
                      given: pb.Status | None = None, seal_to: bytes = b"",
                      clear_ok: bool = False) -> tuple[pb.Payload, list]:
        """A status about `doc` back to its sender, signed and sealed (no transaction needed).

        `clear_ok`: the automatic 01 to a document that came in clear (from a node older than sealing)
        goes in clear even under `sealing.mode: required`: it says nothing the relays did not see, and
        refusing it would refuse the document. Statuses the agency reports are refused instead
        (SEAL_KEY_MISSING), so its software knows."""
        status = given or pb.Status(
            from_organ=self.origin.organization(),
            response_for=pb.ResponseFor(organ_id=doc.from_organ.organ_id or to, document_id=doc.document_id,
                                        code="/".join(p for p in (doc.code.code_number, doc.code.code_notation) if p),
                                        promulgation_date=doc.promulgation_info.promulgation_date),
            staff_info=staff, status_code=code, description=description, timestamp=edxml_time(now), edxml_trace=trace)
        reply = pb.Payload(status=status)
        # sealed back to the key the document's sender signed into its envelope (no lookup)
        return reply, self.outgoing.prepare_in(reply, to, ref_message_id=doc_message_id, priority=priority,
                                               seal_to=seal_to, clear_ok=clear_ok)

    # ---- sender: changing what was sent ----------------------------------------------------

    def change(self, ref: str, business_doc_type: int, take_back: bool, reason: str,
               document: pb.Document | None, staff: pb.StaffInfo, status: pb.Status | None = None,
               within: Callable[[Transaction, Posted], Any] | None = None) -> Posted:
        """Revoke / update / replace, or request a take-back (13), for every original recipient.

        Fields the caller gave (an imported edXML packet) are kept; only what is missing is filled in.
        A document or status given must have a `From` this node may send for (FROM_NOT_ALLOWED)."""
        if document is not None and (document.subject or document.document_id):
            self.origin.check(document.from_organ, "document.from_organ.organ_id")
        if take_back and status is not None:
            self.origin.check(status.from_organ, "packet")
        if take_back and business_doc_type:
            raise Rejected(Reason.INVALID_REQUEST, "a take-back (13) has no business_doc_type: give one or the other",
                           field="business_doc_type")
        doc = self.sent_document(ref)
        if not doc.is_original_document:
            raise Rejected(Reason.INVALID_REQUEST, f"{doc.doc_id} is not an original document: a revoke, update, "
                           "replace or take-back names the document first sent", field="doc_id")
        sent = outbox.of_doc(self.db, doc.doc_id)
        first = pb.Envelope.FromString(outbox.envelope(self.db, sent[0].message_id))
        original = self._payload_of(first).document  # our own sent copy: sealed, it also has a wrap for us
        refs = {e.recipient: e.message_id for e in sent}
        if take_back and status is not None:
            payload = pb.Payload(status=status)
        elif take_back:
            payload = pb.Payload(status=pb.Status(
                from_organ=self.origin.organization(),
                response_for=pb.ResponseFor(organ_id=self.signer.code, document_id=original.document_id),
                staff_info=staff, status_code=rules.TAKE_BACK, description=reason,
                timestamp=edxml_time(self.clock.now_ms())))
        elif business_doc_type in CHANGE_STATE:
            if document is not None and (document.subject or document.document_id):
                new = document  # the caller's document, kept as given
                new.business.business_doc_type = business_doc_type
                if reason and not new.business.business_doc_reason:
                    new.business.business_doc_reason = reason
            elif business_doc_type == 1:  # a revocation we write: the original's header, no attachments
                new = pb.Document()
                new.CopyFrom(original)
                del new.attachments[:]
                new.business.CopyFrom(pb.Business(business_doc_type=1, business_doc_reason=reason,
                                                  document_id=original.document_id, staff_info=staff))
            else:
                raise Rejected(Reason.INVALID_REQUEST, "update and replace need the new document", field="document")
            if business_doc_type == 3 and not new.business.replacements:
                new.business.replacements.add(document_id=original.document_id, organ_ids=list(refs))
            payload = pb.Payload(document=new)
        else:
            raise Rejected(Reason.INVALID_REQUEST, "business_doc_type must be 1 (revoke), 2 (update) or 3 (replace), "
                           "or take_back", field="business_doc_type")
        # the original envelope's priority, so the change queues behind its document, never ahead of it
        priority = pb.Header.FromString(first.header).priority
        return self.outgoing.post(payload, list(refs), priority=priority, ref_message_id=refs, ref_doc_id=doc.doc_id,
                                  within=within)

    def _payload_of(self, env: pb.Envelope) -> pb.Payload:
        """The payload of an envelope in our own mailbox or outbox, opened with our seal key when sealed."""
        header = pb.Header.FromString(env.header)
        data = env.payload
        if header.seal != pb.PLAIN:
            data = self.outgoing.maker.opener(data, header)
        return pb.Payload.FromString(data)

    def sent_document(self, ref: str) -> documents.SentDocument:
        """The send `ref` names (its doc id or one of its message ids); NOT_FOUND otherwise."""
        if not ref:
            raise Rejected(Reason.INVALID_REQUEST, "doc_id is required: a doc id or a message id of the send",
                           field="doc_id")
        doc = documents.find(self.db, ref)
        if doc is None:
            raise Rejected(Reason.NOT_FOUND, f"no document {ref} was sent from here", field="doc_id")
        return doc
