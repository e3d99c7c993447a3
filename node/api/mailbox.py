"""The Mailbox servicer: send, inbox, fetch, ack, sent — the ground the national SDK covers."""
from __future__ import annotations

from .. import envelope as env_mod
from ..errors import Reason, Rejected, naming
from ..identity.trust import TrustStore
from ..pb import envelope_pb2 as pb
from ..pb import mailbox_pb2 as mpb
from ..pb import mailbox_pb2_grpc as mgrpc
from ..store import custody, inbox, outbox
from ..store.database import Database
from ..clock import Clock
from ..events import ARRIVED, DELIVERED, EXPIRED, HEARTBEAT, REGISTERED, REJECTED, WATCHING, EventBus
from ..exchange.outgoing import Outgoing
from ..documents.edxml_bridge import EdxmlBridge, sent_response
from ..documents.lifecycle import Lifecycle
from ..pb import registry_pb2 as rpb
from ..registry.directory import Directory


def _limit(n: int) -> int:
    return 100 if n <= 0 else min(n, 1000)


def _entry(row: dict) -> mpb.InboxEntry:
    return mpb.InboxEntry(seq=row["seq"], message_id=row["message_id"], sender=row["sender"], kind=row["kind"],
                          subject=row["subject"], received_ms=row["received_ms"], acked=row["acked_ms"] is not None,
                          priority=row["priority"], state=row["state"], changed_by=row["changed_by"],
                          status=row["status"], ref_message_id=row["ref_message_id"],
                          business_doc_type=row["business_doc_type"])


MAX_BATCH = 1000  # documents per SendBatch call


def _to_post(request: mpb.SendRequest) -> tuple[pb.Payload, list[str], int, float | None]:
    """A Send request as Outgoing takes it: (payload, recipients, priority, lifetime)."""
    doc = request.document
    if not doc.subject and not doc.document_id:
        raise Rejected(Reason.INVALID_REQUEST, "document needs a subject or a document_id", field="document.subject")
    return (pb.Payload(document=doc), list(request.recipients), request.priority or doc.other_info.priority,
            request.lifetime_seconds or None)


class MailboxService(mgrpc.MailboxServicer):
    def __init__(self, db: Database, outgoing: Outgoing, trust: TrustStore, clock: Clock, max_size: int,
                 bus: EventBus, directory: Directory | None = None, lifecycle: Lifecycle | None = None) -> None:
        self.db, self.outgoing, self.trust, self.clock, self.max_size = db, outgoing, trust, clock, max_size
        self.bus = bus
        self.directory = directory
        self.lifecycle = lifecycle
        self.bridge = EdxmlBridge(db, outgoing, lifecycle, self._verify_stored) if lifecycle else None

    def Send(self, request: mpb.SendRequest, context) -> mpb.SendResponse:
        payload, recipients, priority, lifetime_s = _to_post(request)
        posted = self.outgoing.post(payload, recipients, priority=priority, lifetime_s=lifetime_s)
        return sent_response(posted)

    def SendBatch(self, request: mpb.SendBatchRequest, context) -> mpb.SendBatchResponse:
        if not request.documents:
            raise Rejected(Reason.INVALID_REQUEST, "documents: at least one is needed", field="documents")
        if len(request.documents) > MAX_BATCH:
            raise Rejected(Reason.INVALID_REQUEST, f"documents: at most {MAX_BATCH} per call, got {len(request.documents)}",
                           field="documents")
        items = []
        for i, one in enumerate(request.documents):
            with naming(f"documents[{i}]"):
                items.append(_to_post(one))
        return mpb.SendBatchResponse(results=[sent_response(p) for p in self.outgoing.post_many(items)])

    def ListInbox(self, request: mpb.ListInboxRequest, context) -> mpb.ListInboxResponse:
        rows = inbox.list_entries(self.db, only_new=request.only_new, after_seq=request.after_seq, limit=_limit(request.limit))
        return mpb.ListInboxResponse(entries=[_entry(r) for r in rows])

    def _verify_stored(self, raw: bytes):
        return env_mod.verify(raw, self.trust, max_size=max(self.max_size, len(raw)), clock=self.clock, check_expiry=False)

    def Fetch(self, request: mpb.FetchRequest, context) -> mpb.FetchResponse:
        row = inbox.get(self.db, request.message_id)
        if row is None:
            raise Rejected(Reason.NOT_FOUND, f"no message {request.message_id} in this mailbox")
        raw = row["envelope"]
        # re-verify from the stored bytes: what we show is what was signed
        verified = self._verify_stored(raw)
        receipt = custody.stored_receipt(self.db, request.message_id)
        return mpb.FetchResponse(
            entry=_entry(row), payload=verified.payload(), signature_verified=True,
            signer_subject=verified.sender.subject,
            path=[mpb.HopView(code=c, time_ms=t, verified=True) for c, t in verified.path]
            + [mpb.HopView(code=self.directory.code if self.directory else verified.header.recipient,
                           time_ms=row["received_ms"], verified=True)],
            envelope=raw, receipt=receipt,
        )

    def Ack(self, request: mpb.AckRequest, context) -> mpb.AckResponse:
        was_new = inbox.ack(self.db, request.message_id, self.clock.now_ms())
        if was_new is None:
            raise Rejected(Reason.NOT_FOUND, f"no message {request.message_id} in this mailbox")
        return mpb.AckResponse(was_new=was_new)

    def ListSent(self, request: mpb.ListSentRequest, context) -> mpb.ListSentResponse:
        if request.state and request.state not in (outbox.PENDING, outbox.DELIVERED, outbox.REJECTED, outbox.EXPIRED):
            raise Rejected(Reason.INVALID_REQUEST, f"state must be pending, delivered, rejected or expired, got {request.state!r}",
                           field="state")
        rows = outbox.list_sent(self.db, after_seq=request.after_seq, limit=_limit(request.limit), state=request.state)
        entries = []
        for r in rows:
            e = mpb.SentEntry(seq=r["seq"], message_id=r["message_id"], recipient=r["recipient"], next_hop=r["next_hop"],
                              kind=r["kind"], state=r["state"], attempts=r["attempts"], created_ms=r["created_ms"],
                              delivered_ms=r["delivered_ms"] or 0, reason=r["reason"] or "", subject=r["subject"])
            if r["receipt"]:
                e.receipt.ParseFromString(r["receipt"])
            entries.append(e)
        return mpb.ListSentResponse(entries=entries)

    def Watch(self, request: mpb.WatchRequest, context):
        types = (({ARRIVED} if request.inbox else set()) | ({DELIVERED, REJECTED, EXPIRED} if request.sent else set())
                 | ({REGISTERED, HEARTBEAT} if request.registry else set()))
        if not types:
            raise Rejected(Reason.INVALID_REQUEST, "watch inbox, sent, registry, or a mix")
        sub = self.bus.subscribe(types)
        context.add_callback(sub.close)
        try:
            yield mpb.Event(type=WATCHING, time_ms=self.clock.now_ms())  # subscribed: nothing after this is missed
            while context.is_active():
                event = sub.get(timeout=0.5)
                if event is not None:
                    yield event
        finally:
            sub.close()

    def Directory(self, request: mpb.DirectoryRequest, context) -> mpb.DirectoryResponse:
        target = request.parent or self.directory.code
        entries = self.directory.children(target, request.recursive)
        needle = request.name_contains.casefold()
        agencies = [_agency(e) for e in entries]
        return mpb.DirectoryResponse(agencies=[
            a for a in agencies
            if (not request.level or a.level == request.level) and (not needle or needle in a.name.casefold())
        ])

    def SetStatus(self, request: mpb.SetStatusRequest, context) -> mpb.SetStatusResponse:
        mid = self.lifecycle.set_status(request.message_id, request.status_code, request.staff_info, request.description)
        return mpb.SetStatusResponse(message_id=mid)

    def Change(self, request: mpb.ChangeRequest, context) -> mpb.SendResponse:
        return sent_response(self.lifecycle.change(
            request.doc_id, request.business_doc_type, request.take_back, request.reason,
            request.document if request.HasField("document") else None, request.staff_info))

    def ImportEdxml(self, request: mpb.ImportEdxmlRequest, context) -> mpb.ImportEdxmlResponse:
        return self.bridge.import_packet(request.packet, list(request.recipients))

    def ExportEdxml(self, request: mpb.ExportEdxmlRequest, context) -> mpb.ExportEdxmlResponse:
        return self.bridge.export_packet(request.message_id)

    def Track(self, request: mpb.TrackRequest, context) -> mpb.TrackResponse:
        return self.lifecycle.track(request.doc_id)

    def Lookup(self, request: mpb.AgencyLookupRequest, context) -> mpb.Agency:
        if not request.code:
            raise Rejected(Reason.INVALID_REQUEST, "code is required", field="code")
        return _agency(self.directory.lookup(request.code))


def _agency(entry: rpb.DirectoryEntry) -> mpb.Agency:
    r = rpb.AgencyRecord.FromString(entry.record.record)
    return mpb.Agency(code=r.code, name=r.name, level=r.level, parent=r.parent, endpoint=r.endpoint,
                      reachable=entry.reachable, last_seen_ms=entry.last_seen_ms)
