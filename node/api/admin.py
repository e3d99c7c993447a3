"""The local Admin API: the operator's view of the queues, and the few levers they need.

Served on the local API port next to Mailbox, so the same interceptors answer for it: the
ErrorInterceptor (Rejected -> status) and the TokenInterceptor (bearer token)."""
from __future__ import annotations

from typing import Callable

from ..clock import Clock
from ..codes import is_identifier
from ..errors import Reason, Rejected
from ..escaping import escape
from ..exchange.dispatcher import Dispatcher
from ..pb import admin_pb2 as apb
from ..pb import admin_pb2_grpc as agrpc
from ..store import outbox, peers
from ..store.database import Database
from . import clients

MAX_REASON = 500


def _hop(code: str) -> str:
    if not is_identifier(code):
        raise Rejected(Reason.INVALID_REQUEST, f"{code!r} is not an agency code", field="hop")
    return code


class AdminService(agrpc.AdminServicer):
    def __init__(self, db: Database, dispatcher: Dispatcher, clock: Clock,
                 running: Callable[[], apb.RunningResponse] = apb.RunningResponse) -> None:
        self.db, self.dispatcher, self.clock = db, dispatcher, clock
        self.running = running  # what the node holds now (node/api/running.py)

    def Running(self, request, context):
        return self.running()

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
        retried, held = self.dispatcher.retry_now(_hop(request.hop) if request.hop else None)
        return apb.RetryResponse(retried=retried, held=held)

    def Hold(self, request, context):
        return self._hold(request, True)

    def Release(self, request, context):
        return self._hold(request, False)

    def _hold(self, request, held: bool):
        hop = _hop(request.hop)
        self.dispatcher.hold(hop, held, by=clients.current())
        depth = outbox.queue_summary(self.db).get(hop, {}).get("depth", 0)
        return apb.HoldResponse(hop=hop, held=held, depth=depth)

    def Purge(self, request, context):
        # an admin's words go to the log, the audit table and another agency's notice: one line, escaped
        reason = escape(" ".join(request.reason.split()))
        if not reason:
            raise Rejected(Reason.INVALID_REQUEST, "say why (the reason is audited and sent to the sender)",
                           field="reason")
        if len(reason) > MAX_REASON:
            raise Rejected(Reason.INVALID_REQUEST, f"reason is over {MAX_REASON} characters (a control character "
                           f"counts as its escape)", field="reason")
        row = self.dispatcher.purge(request.message_id, reason, by=clients.current())
        return apb.PurgeResponse(message_id=row["message_id"], sender=row["sender"], recipient=row["recipient"],
                                 next_hop=row["next_hop"])
