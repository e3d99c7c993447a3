"""Which non-delivery notices a node takes into its mailbox: only from the way the message went.

A notice tells the sender its envelope will never arrive; any node in the tree can sign one, so
unchecked, any of them put "not delivered" notices about our message ids into our inbox (301 in
one test) and our software gave up on mail that was on its way. A notice is taken only if it is
about an envelope this node sent, names that envelope's recipient, and is signed by a node the
envelope passed or would pass: the hop it was handed to, or a node on the route from that hop to
the recipient (by the code rule and the odd codes this node knows; for a code it cannot place, the
nodes above that hop, where mail for unknown codes climbs). Anything else: NOTICE_OFF_ROUTE.
"""
from __future__ import annotations

from ..codes import ROOT, CodeError, Hierarchy
from ..errors import Reason, Rejected
from ..pb import envelope_pb2 as pb
from ..store import outbox
from ..store.database import Database


def authorize(db: Database, here: str, hierarchy: Hierarchy, header: pb.Header, notice: pb.Notice) -> None:
    """NOTICE_OFF_ROUTE unless `header.sender` may report on the envelope the notice names (see above)."""
    sent = outbox.handed_over(db, header.ref_message_id) if notice.ref_message_id == header.ref_message_id else None
    if sent is None or sent.sender != here or sent.kind == pb.NOTICE or notice.recipient != sent.recipient:
        raise Rejected(Reason.NOTICE_OFF_ROUTE, f"a notice from {header.sender} about {header.ref_message_id}: "
                       "no envelope of this node to that recipient")
    if header.sender not in on_route(hierarchy, sent.next_hop, sent.recipient):
        raise Rejected(Reason.NOTICE_OFF_ROUTE, f"{header.ref_message_id} did not pass {header.sender}")


def on_route(hierarchy: Hierarchy, hop: str, recipient: str) -> set[str]:
    """The nodes that may hold an envelope handed to `hop` for `recipient`, the recipient itself excluded."""
    if not hop or hop == "-":
        return set()
    try:
        return {hop, *hierarchy.route(hop, recipient)[:-1]}
    except (CodeError, ValueError):
        try:
            return {hop, *hierarchy.ancestors(hop)} - {ROOT}
        except CodeError:
            return {hop}
