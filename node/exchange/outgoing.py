"""Posting new envelopes from this node: one sealed envelope per recipient, queued durably."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from .. import envelope as env_mod
from ..codes import is_identifier
from ..clock import Clock
from ..envelope import Signer
from ..errors import Reason, Rejected
from ..pb import envelope_pb2 as pb
from ..store import outbox
from ..store.database import Database
from .intake import subject_of
from .routing import Router

if TYPE_CHECKING:
    from .dispatcher import Dispatcher


MAX_LIFETIME_S = 3650 * 86400


class Outgoing:
    def __init__(self, db: Database, signer: Signer, router: Router, clock: Clock, *,
                 lifetime_s: float, max_size: int, wake: Callable[[str], None],
                 lookup: Callable[[str], object] | None = None,
                 refuser: "Dispatcher | None" = None) -> None:
        self.db, self.signer, self.router, self.clock = db, signer, router, clock
        self.lifetime_s, self.max_size, self.wake = lifetime_s, max_size, wake
        self.lookup = lookup      # raises Rejected(UNKNOWN_RECIPIENT) when nobody in the tree has the code
        self.refuser = refuser    # records an envelope as undeliverable, with a notice to us

    def post(self, payload: pb.Payload, recipients: list[str], *, priority: int = 0,
             lifetime_s: float | None = None, ref_message_id: str = "") -> list[tuple[str, str]]:
        """Queue one envelope per recipient in a single commit; (recipient, message_id) each."""
        if not recipients:
            raise Rejected(Reason.INVALID_REQUEST, "at least one recipient is needed")
        if len(set(recipients)) != len(recipients):
            raise Rejected(Reason.INVALID_REQUEST, "a recipient is listed twice")
        if not 0 <= priority <= 4:
            raise Rejected(Reason.INVALID_REQUEST, f"priority must be 0..4, got {priority}")
        if lifetime_s is not None and not 0 < lifetime_s <= MAX_LIFETIME_S:
            raise Rejected(Reason.INVALID_REQUEST, f"lifetime must be 1 s .. {MAX_LIFETIME_S // 86400} days, got {lifetime_s} s")
        routes = []
        for r in recipients:
            if r == self.signer.code:
                raise Rejected(Reason.INVALID_REQUEST, "a node does not send to itself")
            if not is_identifier(r):
                raise Rejected(Reason.INVALID_REQUEST, f"recipient {r!r} is not an agency code")
            routes.append((r, *self._route(r)))
        subject = subject_of(payload)
        sealed = []
        for r, hop, unknown in routes:
            header, raw = env_mod.seal(self.signer, r, payload, clock=self.clock, priority=priority,
                                       lifetime_s=lifetime_s or self.lifetime_s, ref_message_id=ref_message_id)
            if len(raw) > self.max_size:
                raise Rejected(Reason.TOO_LARGE, f"envelope is {len(raw)} bytes, limit {self.max_size}")
            sealed.append((header, raw, hop, unknown))
        now = self.clock.now_ms()
        with self.db.transaction() as conn:
            for header, raw, hop, unknown in sealed:
                if unknown is None:
                    outbox.enqueue_in(conn, header, raw, hop, subject, now)
                else:  # nobody in the tree has this code: recorded as refused, with a notice to us
                    self.refuser.refuse(conn, header, raw, hop, subject, unknown)
        if self.refuser is not None:
            self.refuser.run_after_commit()
        for hop in {hop for _, _, hop, unknown in sealed if unknown is None}:
            self.wake(hop)
        return [(h.recipient, h.message_id) for h, _, _, _ in sealed]

    def _route(self, recipient: str) -> tuple[str, Rejected | None]:
        """(next hop, None), or (hop or "", why) when the tree says the recipient does not exist."""
        if self.lookup is not None and self.refuser is not None and recipient not in self.router.peers:
            try:
                self.lookup(recipient)
            except Rejected as r:
                if r.reason is Reason.UNKNOWN_RECIPIENT:
                    return "", r
                # lookup could not finish (a hop is down): route by the tree and let relays decide
        try:
            hop = self.router.next_hop(recipient)
        except LookupError as e:
            if self.refuser is None:
                raise Rejected(Reason.NOT_FOUND, str(e)) from None
            return "", Rejected(Reason.UNKNOWN_RECIPIENT, str(e))
        return hop, None
