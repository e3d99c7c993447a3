"""A thin client for a node's local API, shared by the CLI, the harness, tests and benchmarks."""
from __future__ import annotations

import json
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .api.auth import call_metadata
from .client_retry import BusyRetry
from .config import Settings
from .pb import envelope_pb2 as pb
from .pb import mailbox_pb2 as mpb
from .pb import mailbox_pb2_grpc as mgrpc
from .pb import admin_pb2 as apb
from .pb import admin_pb2_grpc as agrpc

RUNTIME_FILE = "runtime.json"  # written by a running node into its data_dir: pid and bound ports


def api_address(settings: Settings) -> str:
    """The configured local API address, or the bound one when the config asked for port 0."""
    addr = settings.api.listen
    if addr.endswith(":0"):
        info = Path(settings.node.data_dir) / RUNTIME_FILE
        if info.exists():
            return json.loads(info.read_text())["api"]
    return addr


class MailboxClient:
    def __init__(self, address: str, token: str, timeout: float = 30.0, retry: BusyRetry | None = None) -> None:
        """`retry`: how a call refused as busy (AGENCY_BUSY, ...) is made again (node/client_retry.py);
        `client_retry.NO_RETRY` to see every refusal at once."""
        self.address = address
        self.retry = retry if retry is not None else BusyRetry()
        self.channel = grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 64 << 20),
                                                               ("grpc.max_send_message_length", 64 << 20)])
        self.stub = mgrpc.MailboxStub(self.channel)
        self.admin = AdminCalls(self)
        self.metadata = call_metadata(token)
        self.timeout = timeout

    @classmethod
    def for_settings(cls, settings: Settings, timeout: float = 30.0) -> "MailboxClient":
        return cls(api_address(settings), settings.api.token, timeout)

    def _call(self, method, request):
        return self.retry.call(lambda: method(request, metadata=self.metadata, timeout=self.timeout))

    def send(self, document: pb.Document, recipients: list[str], priority: int = 0, lifetime_seconds: int = 0,
             client_key: str = "", require_registered: bool = False) -> mpb.SendResponse:
        """`client_key`: an idempotency key; the same key and request again returns the first answer.
        `require_registered`: refused at once unless every recipient is registered (else it may wait)."""
        return self._call(self.stub.Send, mpb.SendRequest(document=document, recipients=recipients,
                                                          priority=priority, lifetime_seconds=lifetime_seconds,
                                                          client_key=client_key,
                                                          require_registered=require_registered))

    def send_batch(self, documents: list[tuple[pb.Document, list[str]]], priority: int = 0,
                   client_key: str = "") -> list[mpb.SendResponse]:
        """Several documents, one call, one commit; all or nothing."""
        request = mpb.SendBatchRequest(documents=[mpb.SendRequest(document=d, recipients=r, priority=priority)
                                                  for d, r in documents], client_key=client_key)
        return list(self._call(self.stub.SendBatch, request).results)

    def inbox(self, only_new: bool = False, after_seq: int = 0, limit: int = 0,
              kinds: list[int] | None = None) -> list[mpb.InboxEntry]:
        return list(self.inbox_page(only_new, after_seq, limit, kinds).entries)

    def inbox_page(self, only_new: bool = False, after_seq: int = 0, limit: int = 0,
                   kinds: list[int] | None = None) -> mpb.ListInboxResponse:
        """One page, with `has_more`."""
        return self._call(self.stub.ListInbox, mpb.ListInboxRequest(only_new=only_new, after_seq=after_seq, limit=limit,
                                                                    kinds=kinds or []))

    def count_pending(self) -> mpb.CountPendingResponse:
        return self._call(self.stub.CountPending, mpb.CountPendingRequest())

    def whoami(self) -> mpb.WhoAmIResponse:
        return self._call(self.stub.WhoAmI, mpb.WhoAmIRequest())

    def inbox_all(self, only_new: bool = False) -> list[mpb.InboxEntry]:
        return _all_pages(lambda after: self.inbox(only_new=only_new, after_seq=after, limit=PAGE), "ListInbox")

    def fetch(self, message_id: str, keep_wrapped: bool = False) -> mpb.FetchResponse:
        return self._call(self.stub.Fetch, mpb.FetchRequest(message_id=message_id, keep_wrapped=keep_wrapped))

    def ack(self, message_id: str) -> mpb.AckResponse:
        return self._call(self.stub.Ack, mpb.AckRequest(message_id=message_id))

    def sent(self, state: str = "", after_seq: int = 0, limit: int = 0) -> list[mpb.SentEntry]:
        return list(self._call(self.stub.ListSent, mpb.ListSentRequest(state=state, after_seq=after_seq, limit=limit)).entries)

    def sent_all(self, state: str = "") -> list[mpb.SentEntry]:
        return _all_pages(lambda after: self.sent(state=state, after_seq=after, limit=PAGE), "ListSent")

    def watch(self, inbox: bool = True, sent: bool = True, registry: bool = False, timeout: float | None = None):
        """A stream of events; call .cancel() on it when done."""
        return self.stub.Watch(mpb.WatchRequest(inbox=inbox, sent=sent, registry=registry), metadata=self.metadata,
                               timeout=timeout)

    def directory(self, parent: str = "", recursive: bool = False, level: int = 0, name_contains: str = "",
                  page_size: int = 0) -> list[mpb.Agency]:
        """Every page of a listing (no arguments: the whole tree reachable from the node)."""
        out, token = [], ""
        while True:
            resp = self._call(self.stub.Directory, mpb.DirectoryRequest(
                parent=parent, recursive=recursive, level=level, name_contains=name_contains, page_size=page_size,
                page_token=token))
            out.extend(resp.agencies)
            if not resp.has_more:
                return out
            if not resp.next_page_token or resp.next_page_token == token:
                raise PagingStuck("Directory: the node said there is more but gave no next page token")
            token = resp.next_page_token

    def lookup(self, code: str) -> mpb.Agency:
        return self._call(self.stub.Lookup, mpb.AgencyLookupRequest(code=code))

    def set_status(self, message_id: str, code: str, description: str = "", staff: pb.StaffInfo | None = None,
                   client_key: str = "") -> str:
        return self._call(self.stub.SetStatus, mpb.SetStatusRequest(
            message_id=message_id, status_code=code, description=description, staff_info=staff,
            client_key=client_key)).message_id

    def change(self, doc_id: str, business_doc_type: int = 0, *, take_back: bool = False, reason: str = "",
               document: pb.Document | None = None, staff: pb.StaffInfo | None = None,
               client_key: str = "") -> mpb.SendResponse:
        return self._call(self.stub.Change, mpb.ChangeRequest(
            doc_id=doc_id, business_doc_type=business_doc_type, take_back=take_back, reason=reason,
            document=document, staff_info=staff, client_key=client_key))

    def track(self, doc_id: str) -> mpb.TrackResponse:
        return self._call(self.stub.Track, mpb.TrackRequest(doc_id=doc_id))

    def import_edxml(self, packet: bytes, recipients: list[str] | None = None,
                     ref_message_id: str = "", client_key: str = "") -> mpb.ImportEdxmlResponse:
        return self._call(self.stub.ImportEdxml, mpb.ImportEdxmlRequest(packet=packet, recipients=recipients or [],
                                                                        ref_message_id=ref_message_id,
                                                                        client_key=client_key))

    def export_edxml(self, message_id: str, unwrap_attachments: bool = False) -> mpb.ExportEdxmlResponse:
        return self._call(self.stub.ExportEdxml, mpb.ExportEdxmlRequest(message_id=message_id,
                                                                        unwrap_attachments=unwrap_attachments))

    def healthy(self, timeout: float = 2.0) -> bool:
        return probe_health(self.channel, timeout)

    def close(self) -> None:
        self.channel.close()


PAGE = 1000


class PagingStuck(Exception):
    """The node answered a page that does not move on (its next page starts at or before this one): following
    it would ask for the same page for ever."""


def _moves_on(call: str, after: int, next_after: int) -> None:
    if next_after <= after:
        raise PagingStuck(f"{call}: the node answered the page after seq {after} with the next page after seq "
                          f"{next_after}, which does not move on; stopped (a node bug: report it)")


def _all_pages(page_after, call: str):
    """Follow `seq` paging until a short page."""
    out, after = [], 0
    while True:
        page = page_after(after)
        out.extend(page)
        if len(page) < PAGE:
            return out
        _moves_on(call, after, page[-1].seq)
        after = page[-1].seq


def probe_health(channel: grpc.Channel, timeout: float = 2.0) -> bool:
    try:
        resp = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
    except grpc.RpcError:
        return False
    return resp.status == health_pb2.HealthCheckResponse.SERVING


class AdminCalls:
    """The Admin service on the same channel and token (`client.admin.queues()`, ...)."""

    def __init__(self, client: MailboxClient) -> None:
        self._client = client
        self.stub = agrpc.AdminStub(client.channel)

    def queues(self) -> apb.QueuesResponse:
        return self._client._call(self.stub.Queues, apb.QueuesRequest())

    def retry(self, hop: str = "") -> apb.RetryResponse:
        return self._client._call(self.stub.Retry, apb.RetryRequest(hop=hop))

    def hold(self, hop: str) -> apb.HoldResponse:
        return self._client._call(self.stub.Hold, apb.HoldRequest(hop=hop))

    def release(self, hop: str) -> apb.HoldResponse:
        return self._client._call(self.stub.Release, apb.HoldRequest(hop=hop))

    def purge(self, message_id: str, reason: str) -> apb.PurgeResponse:
        return self._client._call(self.stub.Purge, apb.PurgeRequest(message_id=message_id, reason=reason))

    def running(self) -> apb.RunningResponse:
        """What the node holds now: the config it runs on, the CRL in use, its certificate, the last SIGHUP."""
        return self._client._call(self.stub.Running, apb.RunningRequest())
    def issue_succession(self, old_codes: list[str], successor: str, effective_ms: int,
                         reason: str) -> apb.IssueSuccessionResponse:
        return self._client._call(self.stub.IssueSuccession, apb.IssueSuccessionRequest(
            old_codes=old_codes, successor=successor, effective_ms=effective_ms, reason=reason))

    def list_successions(self) -> apb.ListSuccessionsResponse:
        return self._client._call(self.stub.ListSuccessions, apb.ListSuccessionsRequest())

    def retire(self, to: str) -> apb.RetireResponse:
        return self._client._call(self.stub.Retire, apb.RetireRequest(to=to))

    def retire_status(self) -> apb.RetireResponse:
        return self._client._call(self.stub.RetireStatus, apb.RetireStatusRequest())

    def hand_over(self) -> apb.TakeoverResponse:
        return self._client._call(self.stub.HandOver, apb.HandOverRequest())

    def takeover(self, backup: str, seal_key: str = "") -> apb.TakeoverResponse:
        return self._client._call(self.stub.Takeover, apb.TakeoverRequest(backup=backup, seal_key=seal_key))

    def list_queue(self, hop: str = "", parked: bool = False, after_seq: int = 0,
                   limit: int = 0) -> apb.ListQueueResponse:
        return self._client._call(self.stub.ListQueue, apb.ListQueueRequest(hop=hop, parked=parked,
                                                                             after_seq=after_seq, limit=limit))

    def list_queue_all(self, hop: str = "", parked: bool = False) -> list[apb.QueuedMessage]:
        """Every page of ListQueue."""
        return self.queue_listing(hop, parked)[0]

    def queue_listing(self, hop: str = "", parked: bool = False) -> tuple[list[apb.QueuedMessage], int]:
        """Every page of ListQueue, and the node's time (ms) at the last. PagingStuck if a page does not move on."""
        out, after = [], 0
        while True:
            page = self.list_queue(hop, parked, after, 1000)
            out.extend(page.messages)
            if not page.next_after_seq:
                return out, page.now_ms
            _moves_on("ListQueue", after, page.next_after_seq)
            after = page.next_after_seq

    def hold_message(self, message_id: str) -> apb.QueuedMessage:
        return self._client._call(self.stub.HoldMessage, apb.MessageRequest(message_id=message_id))

    def release_message(self, message_id: str) -> apb.QueuedMessage:
        return self._client._call(self.stub.ReleaseMessage, apb.MessageRequest(message_id=message_id))

    def retry_message(self, message_id: str) -> apb.QueuedMessage:
        return self._client._call(self.stub.RetryMessage, apb.MessageRequest(message_id=message_id))
