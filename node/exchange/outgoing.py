"""Posting new envelopes from this node: one sealed envelope per recipient, queued durably.

A post is one commit: the `docs` row that groups it (for tracking and later changes)
and an outbox row per recipient. `post_in` does the same inside a caller's
transaction, so an automatic reply (status 01) commits together with what caused it.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping

from .. import envelope as env_mod
from ..clock import Clock
from ..codes import is_identifier
from ..envelope import Signer
from ..errors import Reason, Rejected, naming
from ..pb import envelope_pb2 as pb
from ..store import outbox
from ..store.database import Database
from .intake import subject_of
from .routing import Router

if TYPE_CHECKING:
    from .dispatcher import Dispatcher


MAX_LIFETIME_S = 3650 * 86400


@dataclass
class Posted:
    doc_id: str
    envelopes: list[tuple[str, str]]            # (recipient, message id)
    hops: set[str] = field(default_factory=set)  # next hops to wake once committed


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
             lifetime_s: float | None = None, ref_message_id: str | Mapping[str, str] = "",
             ref_doc_id: str | None = None) -> Posted:
        """Queue one envelope per recipient in a single commit."""
        return self._commit([(payload, self._prepare(payload, recipients, priority, lifetime_s, ref_message_id))],
                            ref_doc_id)[0]

    def post_many(self, items: list[tuple[pb.Payload, list[str], int, float | None]]) -> list[Posted]:
        """(payload, recipients, priority, lifetime) each; every item checked and sealed, then one commit.

        A refusal names the item (`documents[i]: ...`) and nothing is stored."""
        sealed = []
        for i, (payload, recipients, priority, lifetime_s) in enumerate(items):
            with naming(f"documents[{i}]"):
                sealed.append((payload, self._prepare(payload, recipients, priority, lifetime_s, "")))
        return self._commit(sealed, None)

    def _prepare(self, payload, recipients, priority, lifetime_s, ref_message_id):
        """Checked, routed and sealed: everything that may refuse happens before the transaction."""
        self._check(recipients, priority, lifetime_s)
        routes = [(r, *self._route(r, lookup=True)) for r in recipients]
        return self._seal(payload, routes, priority, lifetime_s, ref_message_id)

    def _commit(self, sealed_items, ref_doc_id: str | None) -> list[Posted]:
        with self.db.transaction() as conn:
            posted = [self._store(conn, payload, sealed, ref_doc_id) for payload, sealed in sealed_items]
        if self.refuser is not None:
            self.refuser.run_after_commit()
        for hop in {h for p in posted for h in p.hops}:
            self.wake(hop)
        return posted

    def post_in(self, conn, payload: pb.Payload, recipient: str, *, priority: int = 0,
                ref_message_id: str = "") -> Posted:
        """Queue one envelope inside the caller's transaction; the caller wakes `hops` after commit.

        No directory lookup here (it would hold the transaction across the network): the
        recipient is someone who just wrote to us, so the tree has a route back."""
        self._check([recipient], priority, None)
        sealed = self._seal(payload, [(recipient, *self._route(recipient, lookup=False))], priority, None, ref_message_id)
        return self._store(conn, payload, sealed, None)

    # ---- steps ----------------------------------------------------------------------

    def _check(self, recipients: list[str], priority: int, lifetime_s: float | None) -> None:
        if not recipients:
            raise Rejected(Reason.INVALID_REQUEST, "at least one recipient is needed", field="recipients")
        if len(set(recipients)) != len(recipients):
            raise Rejected(Reason.INVALID_REQUEST, "a recipient is listed twice", field="recipients")
        if not 0 <= priority <= 4:
            raise Rejected(Reason.INVALID_REQUEST, f"priority must be 0..4, got {priority}", field="priority")
        if lifetime_s is not None and not 0 < lifetime_s <= MAX_LIFETIME_S:
            raise Rejected(Reason.INVALID_REQUEST, f"lifetime must be 1 s .. {MAX_LIFETIME_S // 86400} days, got {lifetime_s} s",
                           field="lifetime_seconds")
        for i, r in enumerate(recipients):
            if r == self.signer.code:
                raise Rejected(Reason.INVALID_REQUEST, "a node does not send to itself", field=f"recipients[{i}]")
            if not is_identifier(r):
                raise Rejected(Reason.INVALID_REQUEST, f"recipient {r!r} is not an agency code", field=f"recipients[{i}]")

    def _seal(self, payload, routes, priority, lifetime_s, ref_message_id):
        sealed = []
        for r, hop, unknown in routes:
            ref = ref_message_id.get(r, "") if isinstance(ref_message_id, Mapping) else ref_message_id
            header, raw = env_mod.seal(self.signer, r, payload, clock=self.clock, priority=priority,
                                       lifetime_s=lifetime_s or self.lifetime_s, ref_message_id=ref)
            if len(raw) > self.max_size:
                raise Rejected(Reason.TOO_LARGE, f"envelope is {len(raw)} bytes, limit {self.max_size}")
            sealed.append((header, raw, hop, unknown))
        return sealed

    def _store(self, conn, payload: pb.Payload, sealed, ref_doc_id: str | None) -> Posted:
        now = self.clock.now_ms()
        subject = subject_of(payload)
        doc = payload.document if payload.WhichOneof("body") == "document" else None
        posted = Posted(uuid.uuid4().hex, [(h.recipient, h.message_id) for h, _, _, _ in sealed])
        conn.execute(
            "INSERT INTO docs (doc_id, created_ms, kind, subject, document_id, business_doc_type, ref_doc_id)"
            " VALUES (?,?,?,?,?,?,?)",
            (posted.doc_id, now, sealed[0][0].kind, subject, doc.document_id if doc else "",
             doc.business.business_doc_type if doc else 0, ref_doc_id),
        )
        for header, raw, hop, unknown in sealed:
            if unknown is None:
                outbox.enqueue_in(conn, header, raw, hop, subject, now, doc_id=posted.doc_id)
                posted.hops.add(hop)
            else:  # nobody in the tree has this code: recorded as refused, with a notice to us
                self.refuser.refuse(conn, header, raw, hop, subject, unknown, doc_id=posted.doc_id)
        return posted

    def _route(self, recipient: str, lookup: bool) -> tuple[str, Rejected | None]:
        """(next hop, None), or (hop or "", why) when the tree says the recipient does not exist."""
        if lookup and self.lookup is not None and self.refuser is not None and recipient not in self.router.peers:
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
