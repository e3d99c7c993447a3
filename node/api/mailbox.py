"""The Mailbox servicer: send, inbox, fetch, ack, sent — the ground the national SDK covers."""
from __future__ import annotations

import threading
from typing import Callable

from .. import version as _version
from ..clock import Clock
from ..codes import is_identifier
from ..config import NAME_LENGTH
from ..documents.edxml_bridge import EdxmlBridge
from ..documents.lifecycle import Lifecycle
from ..documents.origin import Origin
from ..envelope import Verified
from ..errors import Reason, Rejected, blaming, naming
from ..events import (ARRIVED, CHECKPOINT, CHECKPOINT_KEPT, CRL, DELIVERED, EXPIRED, HEARTBEAT, NOT_REGISTERED_YET,
                      READDRESSED, REGISTERED, REJECTED, SUCCESSION, WATCHING, EventBus)
from ..exchange.outgoing import Outgoing
from ..fields import check_text
from ..transport.grpc_peers import grpc_options
from ..pb import envelope_pb2 as pb
from ..pb import mailbox_pb2 as mpb
from ..pb import mailbox_pb2_grpc as mgrpc
from ..registry.directory import Directory
from ..store import custody, inbox, outbox, takeover
from ..store.database import Database
from . import clients, enums, replies
from .folding import fold
from .page_tokens import PageTokens
from .idempotency import Keys


MAX_PAGE = 1000  # entries per list call at most


def _limit(n: int) -> int:
    return 100 if n <= 0 else min(n, MAX_PAGE)


def _page(rows: list, limit: int) -> tuple[list, bool]:
    """Rows asked for with limit + 1: (the page, whether there is more)."""
    return rows[:limit], len(rows) > limit


MAX_BATCH = 1000  # documents per SendBatch call
LISTING_KEPT_MS = 60_000  # a Directory listing serves the pages after its first for this long


def _to_post(request: mpb.SendRequest, origin: Origin, now_ms: int
             ) -> tuple[pb.Payload, list[str], int, float | None, bool]:
    """A Send request as Outgoing takes it: (payload, recipients, priority, lifetime, require_registered).

    The node fills the From and DocumentId the caller left empty, and refuses a From it may not send for."""
    doc = pb.Document()
    doc.CopyFrom(request.document)
    if not doc.subject and not doc.document_id:
        raise Rejected(Reason.INVALID_REQUEST, "document needs a subject or a document_id", field="document.subject")
    origin.complete(doc, now_ms)
    origin.check(doc.from_organ, "document.from_organ.organ_id")
    return (pb.Payload(document=doc), list(request.recipients), request.priority or doc.other_info.priority,
            request.lifetime_seconds or None, request.require_registered)


def _imported_response(imported) -> mpb.ImportEdxmlResponse:
    resp = mpb.ImportEdxmlResponse(kind=imported.kind, payload_kind=enums.imported_kind(imported.kind),
                                   warnings=imported.warnings,
                                   status_message_id=imported.status_message_id)
    if imported.sent is not None:
        resp.sent.CopyFrom(replies.sent_response(imported.sent))
    return resp


class Listing(list):
    """The agencies of one Directory listing, ordered by code, with their names folded (node/api/folding.py) once
    for every page of it searched by name: folding each name again for each page cost a whole pass per page."""

    _folded: list[str] | None = None

    def folded_names(self) -> list[str]:
        if self._folded is None:
            self._folded = [fold(a.name) for a in self]  # the same list if two pages race: either may be kept
        return self._folded


class _Slot:
    """One Watch stream's place under the cap, given back once however the stream ends."""

    def __init__(self, places: Places) -> None:
        self._places, self._held, self._lock = places, True, threading.Lock()

    def release(self) -> None:
        with self._lock:
            if self._held:
                self._held = False
                self._places.release()


class MailboxService(mgrpc.MailboxServicer):
    def __init__(self, db: Database, clock: Clock, *, outgoing: Outgoing, lifecycle: Lifecycle, bridge: EdxmlBridge,
                 directory: Directory, bus: EventBus, verify_stored: Callable[[bytes], Verified],
                 watchers: Places, keys: Keys | None = None) -> None:
        self.db, self.clock = db, clock
        self.keys = keys or Keys(db, clock, keep_ms=int(outgoing.maker.lifetime_s * 1000))  # messages.lifetime
        self.outgoing, self.lifecycle, self.bridge, self.directory = outgoing, lifecycle, bridge, directory
        self.bus, self.verify_stored = bus, verify_stored
        # each stream holds an API worker: this agency's places (node.limits.Places), on a host within the
        # host's (one worker pool for every agency)
        self._watchers = watchers
        self._listings: dict[tuple[str, bool], tuple[int, Listing]] = {}  # Directory pages after the first
        self._listings_lock = threading.Lock()
        self._page_tokens = PageTokens()  # Directory's next_page_token: opaque, this process's own only

    def Send(self, request: mpb.SendRequest, context) -> mpb.SendResponse:
        def run(within):
            payload, recipients, priority, lifetime_s, required = _to_post(request, self.lifecycle.origin,
                                                                           self.clock.now_ms())
            return replies.sent_response(self.outgoing.post(
                payload, recipients, priority=priority, lifetime_s=lifetime_s, require_registered=required,
                within=within and (lambda tx, posted: within(tx, replies.sent_response(posted)))))
        return self.keys.once("Send", request, mpb.SendResponse, run, keep_ms=request.lifetime_seconds * 1000)

    def SendBatch(self, request: mpb.SendBatchRequest, context) -> mpb.SendBatchResponse:
        if not request.documents:
            raise Rejected(Reason.INVALID_REQUEST, "documents: at least one is needed", field="documents")
        if len(request.documents) > MAX_BATCH:
            raise Rejected(Reason.INVALID_REQUEST, f"documents: at most {MAX_BATCH} per call, got {len(request.documents)}",
                           field="documents", metadata={"limit": str(MAX_BATCH), "count": str(len(request.documents))})
        for i, one in enumerate(request.documents):
            if one.client_key:
                raise Rejected(Reason.INVALID_REQUEST, "a document in a batch has no client_key of its own; "
                               "give the batch one (SendBatchRequest.client_key)", field=f"documents[{i}].client_key")

        def response(posted) -> mpb.SendBatchResponse:
            return mpb.SendBatchResponse(results=[replies.sent_response(p) for p in posted])

        def run(within):
            items = []
            for i, one in enumerate(request.documents):
                with naming(f"documents[{i}]"):
                    items.append(_to_post(one, self.lifecycle.origin, self.clock.now_ms()))
            return response(self.outgoing.post_many(
                items, within=within and (lambda tx, posted: within(tx, response(posted)))))
        keep_ms = max(d.lifetime_seconds for d in request.documents) * 1000
        return self.keys.once("SendBatch", request, mpb.SendBatchResponse, run, keep_ms=keep_ms)

    def ListInbox(self, request: mpb.ListInboxRequest, context) -> mpb.ListInboxResponse:
        for i, kind in enumerate(request.kinds):
            if kind not in (pb.DOCUMENT, pb.STATUS, pb.NOTICE):
                raise Rejected(Reason.INVALID_REQUEST, f"kinds: DOCUMENT, STATUS or NOTICE, got {kind}",
                               field=f"kinds[{i}]")
        limit = _limit(request.limit)
        rows, more = _page(inbox.list_entries(self.db, only_new=request.only_new, after_seq=request.after_seq,
                                              limit=limit + 1, kinds=tuple(request.kinds)), limit)
        return mpb.ListInboxResponse(entries=[replies.inbox_entry(r) for r in rows], has_more=more)

    def CountPending(self, request: mpb.CountPendingRequest, context) -> mpb.CountPendingResponse:
        n = inbox.count_new_by_kind(self.db)
        return mpb.CountPendingResponse(total=sum(n.values()), documents=n.get(pb.DOCUMENT, 0),
                                        statuses=n.get(pb.STATUS, 0), notices=n.get(pb.NOTICE, 0))

    def WhoAmI(self, request: mpb.WhoAmIRequest, context) -> mpb.WhoAmIResponse:
        d, maker = self.directory, self.outgoing.maker
        return mpb.WhoAmIResponse(
            code=d.code, name=d.name, level=d.level(), parent=d.parent or "", version=_version(),
            schema_version=self.db.schema_version(), client=clients.current() or clients.DEFAULT,
            scopes=clients.current_scopes(),
            limits=mpb.ApiLimits(
                max_envelope_bytes=maker.max_size, max_api_message_bytes=dict(grpc_options(maker.max_size))["grpc.max_receive_message_length"],
                
                recipients_per_send=maker.limits.recipients_per_send,
                attachments_per_document=maker.limits.attachments_per_document, documents_per_batch=MAX_BATCH,
                max_page=MAX_PAGE, message_lifetime_seconds=int(maker.lifetime_s)))

    def Fetch(self, request: mpb.FetchRequest, context) -> mpb.FetchResponse:
        row = inbox.get(self.db, request.message_id)
        if row is None:
            raise Rejected(Reason.NOT_FOUND, f"no message {request.message_id} in this mailbox", field="message_id")
        raw = row["envelope"]
        # re-verify from the stored bytes: what we show is what was signed
        verified = self.verify_stored(raw)
        receipt = custody.stored_receipt(self.db, request.message_id)
        if receipt is None and row["held_for"]:  # taken over: the receipt its first holder signed (node.takeover)
            held = takeover.held_receipt(self.db, request.message_id)
            receipt = pb.Receipt.FromString(held) if held else None
        payload = verified.payload()
        if not request.keep_wrapped:  # the national library's zip wrapping: the agency gets the inner file
            payload = self.bridge.unwrapped_payload(payload, len(raw))
        return mpb.FetchResponse(
            entry=replies.inbox_entry(row), payload=payload, signature_verified=True,
            signer_subject=verified.sender.subject,
            path=[mpb.HopView(code=c, time_ms=t, verified=True) for c, t in verified.path]
            + [mpb.HopView(code=row["held_for"] or self.directory.code, time_ms=row["received_ms"], verified=True)],
            envelope=raw, receipt=receipt,
        )

    def Ack(self, request: mpb.AckRequest, context) -> mpb.AckResponse:
        was_new = inbox.ack(self.db, request.message_id, self.clock.now_ms())
        if was_new is None:
            raise Rejected(Reason.NOT_FOUND, f"no message {request.message_id} in this mailbox", field="message_id")
        return mpb.AckResponse(was_new=was_new)

    def ListSent(self, request: mpb.ListSentRequest, context) -> mpb.ListSentResponse:
        if request.state and request.state not in enums.SEND_STATE:
            raise Rejected(Reason.INVALID_REQUEST, "state must be pending, delivered, rejected, expired or "
                           f"not_registered_yet, got {request.state!r}", field="state")
        state = request.state
        if request.send_state:
            named = enums.SEND_STATE_NAME.get(request.send_state)
            if named is None or (state and state != named):
                raise Rejected(Reason.INVALID_REQUEST, f"send_state {request.send_state} is not a state"
                               if named is None else f"send_state {named} and state {state!r} disagree",
                               field="send_state")
            state = named
        limit = _limit(request.limit)
        rows, more = _page(outbox.list_sent(self.db, after_seq=request.after_seq, limit=limit + 1, state=state),
                           limit)
        return mpb.ListSentResponse(entries=[replies.sent_entry(r) for r in rows], has_more=more)

    def Watch(self, request: mpb.WatchRequest, context):
        types = (({ARRIVED} if request.inbox else set())
                 | ({DELIVERED, REJECTED, EXPIRED, NOT_REGISTERED_YET, READDRESSED} if request.sent else set())
                 | ({REGISTERED, HEARTBEAT, CHECKPOINT, CHECKPOINT_KEPT, CRL, SUCCESSION} if request.registry else set()))
        if not types:
            raise Rejected(Reason.INVALID_REQUEST, "watch inbox, sent, registry, or a mix", field="inbox")
        refused = self._watchers.take()
        if refused is not None:
            n = self._watchers.own if refused == "own" else self._watchers.total
            raise Rejected(Reason.TOO_MANY_STREAMS, f"{n} Watch streams are open already"
                           f"{' on this host' if refused == 'total' else ''}; close one or retry later",
                           metadata={"limit": str(n)})
        slot = _Slot(self._watchers)
        context.add_callback(slot.release)  # freed as soon as the client goes, not at the loop's next turn
        try:
            sub = self.bus.subscribe(types)
            context.add_callback(sub.close)
            try:
                yield mpb.Event(type=WATCHING, event_type=enums.event_type(WATCHING), time_ms=self.clock.now_ms())  # subscribed: nothing after this is missed
                while context.is_active():
                    event = sub.get(timeout=0.5)
                    if event is not None:
                        yield event
            finally:
                sub.close()
        finally:
            slot.release()

    def Directory(self, request: mpb.DirectoryRequest, context) -> mpb.DirectoryResponse:
        """No arguments: the whole tree reachable from here; else children (or the subtree) of a code. Paged by
        code (the token names the last code of the page before, node/api/page_tokens.py); a listing is kept a few seconds for the pages
        after the first, so paging a large tree does not walk the tree again for every page."""
        check_text(request.name_contains, "name_contains", NAME_LENGTH)  # no name is longer: nothing longer matches
        whole = not request.parent and not request.recursive
        key = ("", False) if whole else (request.parent or self.directory.code, request.recursive)
        after = self._page_tokens.read(key, request.page_token)
        with blaming("parent", Reason.UNKNOWN_RECIPIENT):
            agencies = self._listing(key, request.page_token == "", lambda: (
                self.directory.whole_tree() if whole else self.directory.children(key[0], key[1])))
        needle = fold(request.name_contains)
        names = agencies.folded_names() if needle else None
        matching = [a for i, a in enumerate(agencies) if a.code > after
                    and (not request.level or a.level == request.level) and (names is None or needle in names[i])]
        size = _limit(request.page_size)
        page, more = _page(matching, size)
        return mpb.DirectoryResponse(agencies=page, has_more=more,
                                     next_page_token=self._page_tokens.issue(key, page[-1].code) if more else "")

    def _listing(self, key: tuple[str, bool], fresh: bool, fetch) -> "Listing":
        """Agencies of one listing, ordered by code; a first page always fetches anew."""
        now = self.clock.now_ms()
        with self._listings_lock:
            held = self._listings.get(key)
        if held is not None and not fresh and now - held[0] <= LISTING_KEPT_MS:
            return held[1]
        agencies = Listing(sorted({a.code: a for a in map(replies.agency, fetch())}.values(), key=lambda a: a.code))
        with self._listings_lock:
            if len(self._listings) >= 16:
                self._listings.clear()
            self._listings[key] = (now, agencies)
        return agencies

    def SetStatus(self, request: mpb.SetStatusRequest, context) -> mpb.SetStatusResponse:
        def run(within):
            with blaming("message_id", Reason.NOT_FOUND):
                mid = self.lifecycle.set_status(
                    request.message_id, request.status_code, request.staff_info, request.description,
                    within=within and (lambda tx, mid: within(tx, mpb.SetStatusResponse(message_id=mid))))
            return mpb.SetStatusResponse(message_id=mid)
        return self.keys.once("SetStatus", request, mpb.SetStatusResponse, run)

    def Change(self, request: mpb.ChangeRequest, context) -> mpb.SendResponse:
        return self.keys.once("Change", request, mpb.SendResponse, lambda within: self._change(request, within))

    def _change(self, request: mpb.ChangeRequest, within) -> mpb.SendResponse:
        document = None
        if request.HasField("document"):
            document = pb.Document()
            document.CopyFrom(request.document)
            if document.subject or document.document_id:  # an update or replacement: From and DocumentId as on Send
                self.lifecycle.origin.complete(document, self.clock.now_ms())
        return replies.sent_response(self.lifecycle.change(
            request.doc_id, request.business_doc_type, request.take_back, request.reason, document,
            request.staff_info, within=within and (lambda tx, posted: within(tx, replies.sent_response(posted)))))

    def ImportEdxml(self, request: mpb.ImportEdxmlRequest, context) -> mpb.ImportEdxmlResponse:
        def run(within):
            with blaming("packet", Reason.MALFORMED):
                return _imported_response(self.bridge.import_packet(
                    request.packet, list(request.recipients), request.ref_message_id,
                    within=within and (lambda tx, imported: within(tx, _imported_response(imported)))))
        return self.keys.once("ImportEdxml", request, mpb.ImportEdxmlResponse, run)

    def ExportEdxml(self, request: mpb.ExportEdxmlRequest, context) -> mpb.ExportEdxmlResponse:
        with blaming("message_id", Reason.NOT_FOUND):
            out = self.bridge.export_packet(request.message_id, unwrap=request.unwrap_attachments)
        return mpb.ExportEdxmlResponse(packet=out.packet, file_name=out.file_name, warnings=out.warnings)

    def Track(self, request: mpb.TrackRequest, context) -> mpb.TrackResponse:
        return replies.track_response(self.db, self.lifecycle.sent_document(request.doc_id))

    def Lookup(self, request: mpb.AgencyLookupRequest, context) -> mpb.Agency:
        if not request.code:
            raise Rejected(Reason.INVALID_REQUEST, "code is required", field="code")
        try:
            with blaming("code", Reason.UNKNOWN_RECIPIENT):
                entry = self.directory.lookup(request.code)
                successor = self.directory.successor_of(request.code) if entry.HasField("succession") else ""
                return replies.agency(entry, request.code, successor or "")
        except Rejected as r:
            if r.reason is not Reason.NOT_REGISTERED_YET:
                raise
            # the tree knows nobody holds the code today: NOT_FOUND, not a 503 a client would retry for ever
            at = r.metadata.get("waits_at", "")
            at = at if is_identifier(at) else ""  # a peer's words: kept only if it is a code
            raise Rejected(Reason.UNKNOWN_RECIPIENT, f"no agency {request.code} is registered; the code rule "
                           f"places it below {at or 'a node'}, where mail for it waits for a registration",
                           field="code", metadata={"waits_at": at} if at else None) from None

