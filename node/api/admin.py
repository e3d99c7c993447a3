"""The local Admin API: the operator's view of the queues, and the few levers they need.

Served on the local API port next to Mailbox, so the same interceptors answer for it: the
ErrorInterceptor (Rejected -> status) and the TokenInterceptor (bearer token).

Every lever names what it acts on, and a name that is nothing here is refused before anything
changes: a hop must be a next hop of this node (NOT_A_HOP: a typo must not print "retrying now",
nor leave a hold, a peer_state row and a metric series for a code nobody routes to), a message
must be in the outbox (NOT_FOUND) and still queued (NOT_QUEUED)."""
from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..clock import Clock
from ..codes import is_identifier
from ..errors import Reason, Rejected
from ..exchange.dispatcher import Dispatcher
from ..pb import admin_pb2 as apb
from ..pb import admin_pb2_grpc as agrpc
from ..pb import envelope_pb2 as pb
from ..pb import registry_pb2 as rpb
from ..store import outbox, peers, retirement
from ..store.database import Database
from ..registry.successions import MAX_OLD_CODES, Successions
from . import clients

if TYPE_CHECKING:
    from ..takeover import Takeovers

MAX_REASON = 500
MAX_MESSAGE_ID = 128
DEFAULT_PAGE, MAX_PAGE = 100, 1000
KIND_NAMES = {pb.DOCUMENT: "document", pb.STATUS: "status", pb.NOTICE: "notice"}


def _code(code: str) -> str:
    if not is_identifier(code):
        raise Rejected(Reason.INVALID_REQUEST, f"{code!r} is not an agency code", field="hop")
    return code


def _message_id(message_id: str) -> str:
    if not message_id or len(message_id) > MAX_MESSAGE_ID or not message_id.isprintable():
        raise Rejected(Reason.INVALID_REQUEST, f"a message id is 1-{MAX_MESSAGE_ID} printable characters",
                       field="message_id")
    return message_id


MAX_PATH = 4096


def _file(path: str, field: str) -> Path:
    """A file the operator names on the node's machine: an absolute path to a regular file (never a FIFO or a
    device the node would block on or read for ever)."""
    if not path or len(path) > MAX_PATH or not path.isprintable() or not os.path.isabs(path):
        raise Rejected(Reason.INVALID_REQUEST, f"an absolute path of at most {MAX_PATH} printable characters",
                       field=field)
    try:
        mode = os.stat(path).st_mode
    except OSError:
        raise Rejected(Reason.NOT_FOUND, f"no file {path[:200]} on the node's machine", field=field) from None
    if not stat.S_ISREG(mode):
        raise Rejected(Reason.INVALID_REQUEST, f"{path[:200]} is not a regular file", field=field)
    return Path(path)


def purge_reason(text: str) -> str:
    """The operator's reason as it is audited and sent to another agency: one line, bounded."""
    if not text.isprintable():
        raise Rejected(Reason.UNPRINTABLE, "the reason holds control characters (a newline, a tab, a terminal "
                                           "escape): give it on one line", field="reason")
    reason = " ".join(text.split())
    if not reason:
        raise Rejected(Reason.INVALID_REQUEST, "say why (the reason is audited and sent to the sender)",
                       field="reason")
    if len(reason) > MAX_REASON:
        raise Rejected(Reason.INVALID_REQUEST, f"reason is over {MAX_REASON} characters", field="reason",
                       metadata={"limit": str(MAX_REASON), "count": str(len(reason))})
    return reason


def _queued(row: dict) -> apb.QueuedMessage:
    return apb.QueuedMessage(
        message_id=row["message_id"], sender=row["sender"], recipient=row["recipient"], next_hop=row["next_hop"],
        kind=KIND_NAMES.get(row["kind"], "envelope"), size=row["size"], created_ms=row["created_ms"],
        attempts=row["attempts"], last_error=row["last_error"], held=bool(row["held"]), hop_held=bool(row["hop_held"]),
        parked=bool(row["parked"]), park_until_ms=row["park_until_ms"], origin=row["origin"],
        expires_ms=row["expires_ms"], not_before_ms=row["not_before_ms"], seq=row["seq"])


def _succession_view(body: rpb.SuccessionList, s: rpb.Succession) -> apb.SuccessionView:
    return apb.SuccessionView(issuer=body.issuer, number=body.number, old_codes=s.old_codes, successor=s.successor,
                              effective_ms=s.effective_ms, reason=s.reason, issued_ms=body.issued_ms)


def revoke_command(own: str) -> str:
    """What the CA's operator runs once the node is drained (docs/deploy.md, Revoking a certificate)."""
    return (f"at the CA: lienthong ca revoke <certificate of {own}> --ca CA_DIR --reason cessation_of_operation; "
            "lienthong ca crl --ca CA_DIR; install ca.crl at the root and reload it")


class AdminService(agrpc.AdminServicer):
    def __init__(self, db: Database, dispatcher: Dispatcher, clock: Clock,
                 running: Callable[[], apb.RunningResponse] = apb.RunningResponse,
                 successions: "Successions | None" = None,
                 issue: Callable[[rpb.Succession], tuple[rpb.SuccessionList, int]] | None = None,
                 takeovers: "Takeovers | None" = None,
                 hand_over: "Callable[[], tuple[str, rpb.HandOverResponse]] | None" = None) -> None:
        self.db, self.dispatcher, self.clock = db, dispatcher, clock
        self.running = running  # what the node holds now (node/api/running.py)
        self.successions = successions  # the lists held (node.registry.successions)
        self.issue = issue  # sign a succession into our list, take it, push it: (the list, envelopes re-routed)
        self.takeovers = takeovers  # a retired predecessor's mailbox taken over (node.takeover)
        self.hand_over = hand_over  # this retiring node's mailbox handed over to its successor (node.takeover)
        self._handing_over = threading.Lock()  # one hand-over at a time

    def HandOver(self, request, context):
        if self.hand_over is None:
            raise Rejected(Reason.NOT_RETIRING, "this node hands no mailbox over")
        if not self._handing_over.acquire(blocking=False):  # each makes a full backup and restarts the transfer
            raise Rejected(Reason.HAND_OVER_IN_PROGRESS, "this node's mailbox is being handed over already: wait for "
                           "that call's answer")
        try:
            successor, a = self.hand_over()
        finally:
            self._handing_over.release()
        return apb.TakeoverResponse(predecessor=self.dispatcher.router.code, inbox=a.inbox, sent=a.sent,
                                    resealed=a.resealed, kept_sealed=a.kept_sealed, already=a.already)

    def Takeover(self, request, context):
        if self.takeovers is None:
            raise Rejected(Reason.INVALID_REQUEST, "this node takes over no mailboxes")
        source = _file(request.backup, "backup")
        seal_key = _file(request.seal_key, "seal_key") if request.seal_key else None
        done = self.takeovers.take(source, seal_key)
        i = done.imported
        return apb.TakeoverResponse(predecessor=done.predecessor, inbox=i.inbox, sent=i.sent, resealed=i.resealed,
                                    kept_sealed=done.kept_sealed, already=i.already, backup_sha256=done.backup_sha256)

    def IssueSuccession(self, request, context):
        if self.issue is None:
            raise Rejected(Reason.INVALID_REQUEST, "this node issues no successions")
        if len(request.old_codes) > MAX_OLD_CODES:  # before anything is read
            raise Rejected(Reason.SUCCESSION_TOO_LARGE, f"old codes: {len(request.old_codes)}, at most "
                           f"{MAX_OLD_CODES}", field="old_codes", metadata={"limit": str(MAX_OLD_CODES)})
        if request.effective_ms < 0:
            raise Rejected(Reason.INVALID_REQUEST, "effective time before 1970", field="effective_ms")
        succession = rpb.Succession(old_codes=request.old_codes, successor=request.successor,
                                    effective_ms=request.effective_ms or self.clock.now_ms(),
                                    reason=" ".join(request.reason.split()) if request.reason.isprintable()
                                    else request.reason)
        body, rerouted = self.issue(succession)
        return apb.IssueSuccessionResponse(succession=_succession_view(body, succession), rerouted=rerouted)

    def ListSuccessions(self, request, context):
        out = apb.ListSuccessionsResponse()
        if self.successions is None:
            return out
        for signed in self.successions.lists():
            body = rpb.SuccessionList.FromString(signed.body)
            out.successions.extend(_succession_view(body, s) for s in body.successions)
        return out

    def Retire(self, request, context):
        """Begin retiring into `to` (or, already retiring into it, the progress): only into the successor a
        succession this node holds names for its own code, so an operator's typo cannot stop the node's mail."""
        to = request.to
        if not is_identifier(to):
            raise Rejected(Reason.INVALID_REQUEST, f"{to[:64]!r} is not an agency code", field="to")
        own = self.dispatcher.router.code
        named = self.successions.successor(own) if self.successions is not None else None
        if named != to:
            held = f"the successions held name {named}" if named else "no succession held retires it"
            raise Rejected(Reason.RETIRE_NOT_SUCCESSOR, f"{to} is not the successor of {own}: {held}", field="to",
                           metadata={"successor": named or ""})
        retirement.start(self.db, to, self.clock.now_ms())
        return self._retire_status(own)

    def RetireStatus(self, request, context):
        return self._retire_status(self.dispatcher.router.code)

    def _retire_status(self, own: str) -> apb.RetireResponse:
        retiring = retirement.successor(self.db)
        if retiring is None:
            raise Rejected(Reason.NOT_RETIRING, "this node is not retiring (lienthong retire --to CODE)")
        left = retirement.left(self.db)
        return apb.RetireResponse(successor=retiring[0], started_ms=retiring[1], queued=left.queued,
                                  parked=left.parked, unfetched=left.unfetched, drained=left.drained,
                                  revoke_command=revoke_command(own))

    def Running(self, request, context):
        return self.running()

    def _hop(self, code: str) -> str:
        """A next hop of this node: its parent, a registered child, a configured peer, or a code it has mail,
        a hold or a backoff for (a child not registered yet, parked mail; a peer removed from the config)."""
        code = _code(code)
        if (self.dispatcher.router.is_neighbour(code) or outbox.pending_at_least(self.db, code, 1)
                or peers.recorded(self.db, code)):
            return code
        raise Rejected(Reason.NOT_A_HOP, f"{code} is not a next hop of this node: not its parent, a registered "
                                         "child or a configured peer, and nothing is queued for it (see `lienthong "
                                         "queues`)", field="hop")

    def Queues(self, request, context):
        queued = outbox.queue_summary(self.db)
        states = {s.code: s for s in peers.all_states(self.db)}
        hops = sorted(set(queued) | {c for c, s in states.items() if s.held or s.failures})
        out = apb.QueuesResponse(now_ms=self.clock.now_ms())
        for hop in hops:
            q, s = queued.get(hop, {}), states.get(hop, peers.PeerState(hop))
            out.hops.add(hop=hop, depth=q.get("depth", 0), oldest_ms=q.get("oldest_ms") or 0, failures=s.failures,
                         next_attempt_ms=s.next_attempt_ms, last_error=s.last_error or "", held=bool(s.held),
                         last_success_ms=s.last_success_ms or 0, parked=q.get("parked", 0),
                         kept_home=q.get("kept_home", 0))
        return out

    def Retry(self, request, context):
        hop = self._hop(request.hop) if request.hop else None
        retried, held = self.dispatcher.retry_now(hop)
        if hop is not None and held:
            raise Rejected(Reason.HELD, f"{hop} is held: release it first (lienthong release {hop})", field="hop",
                           metadata={"held": hop})
        return apb.RetryResponse(retried=retried, held=held)

    def Hold(self, request, context):
        return self._hold(request, True)

    def Release(self, request, context):
        return self._hold(request, False)

    def _hold(self, request, held: bool):
        hop = self._hop(request.hop)
        self.dispatcher.hold(hop, held, by=clients.current())
        depth = outbox.queue_summary(self.db).get(hop, {}).get("depth", 0)
        return apb.HoldResponse(hop=hop, held=held, depth=depth)

    def Purge(self, request, context):
        reason = purge_reason(request.reason)
        row = self.dispatcher.purge(_message_id(request.message_id), reason, by=clients.current())
        return apb.PurgeResponse(message_id=row["message_id"], sender=row["sender"], recipient=row["recipient"],
                                 next_hop=row["next_hop"])

    # ---- one message at a time -------------------------------------------------------

    def ListQueue(self, request, context):
        if request.limit < 0 or request.limit > MAX_PAGE:
            raise Rejected(Reason.INVALID_REQUEST, f"limit is 1-{MAX_PAGE} (0: {DEFAULT_PAGE})", field="limit",
                           metadata={"limit": str(MAX_PAGE)})
        if request.after_seq < 0:
            raise Rejected(Reason.INVALID_REQUEST, "after_seq is a seq from a page before, or 0", field="after_seq")
        limit = request.limit or DEFAULT_PAGE
        hop = self._hop(request.hop) if request.hop else ""
        rows = outbox.queued(self.db, hop=hop, parked=request.parked, after_seq=request.after_seq, limit=limit + 1)
        out = apb.ListQueueResponse(now_ms=self.clock.now_ms(), messages=[_queued(r) for r in rows[:limit]])
        if len(rows) > limit:
            out.next_after_seq = rows[limit - 1]["seq"]
        return out

    def _pending(self, message_id: str) -> dict:
        row = outbox.queued_one(self.db, _message_id(message_id))
        if row is None:
            raise Rejected(Reason.NOT_FOUND, f"no envelope {message_id} in the outbox", field="message_id")
        if row["state"] != outbox.PENDING:
            raise Rejected(Reason.NOT_QUEUED, f"{message_id} is {row['state']}, not queued", field="message_id",
                           metadata={"state": row["state"]})
        return row

    def HoldMessage(self, request, context):
        return self._hold_message(request.message_id, True)

    def ReleaseMessage(self, request, context):
        return self._hold_message(request.message_id, False)

    def _hold_message(self, message_id: str, held: bool):
        row = self._pending(message_id)
        if not self.dispatcher.hold_message(row["message_id"], held, row["next_hop"], by=clients.current()):
            now = outbox.queued_one(self.db, row["message_id"]) or {}  # the state it left the queue for
            raise Rejected(Reason.NOT_QUEUED, f"{message_id} left the queue meanwhile", field="message_id",
                           metadata={"state": now.get("state", "")})
        return _queued(outbox.queued_one(self.db, row["message_id"]))

    def RetryMessage(self, request, context):
        row = self._pending(request.message_id)
        for what, held in ((row["message_id"], row["held"]), (row["next_hop"], row["hop_held"])):
            if held:
                how = "queue release" if what == row["message_id"] else "release"
                raise Rejected(Reason.HELD, f"{what} is held: release it first (lienthong {how} {what})",
                               field="message_id", metadata={"held": what})
        self.dispatcher.retry_message(row["message_id"], row["next_hop"])
        return _queued(outbox.queued_one(self.db, row["message_id"]))
