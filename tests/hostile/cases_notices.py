"""Forged non-delivery notices: any node in the tree telling D that D's mail was not delivered.

A notice is taken only from the way the envelope went (node/documents/notices.py): D's `from_d`
went straight to C1, so M, a child of D that never carried it, may not report on it; nor on an id D
never sent, nor name another recipient. M's own notice about mail D handed to M is taken.
"""
from __future__ import annotations

from node.pb import envelope_pb2 as pb

from .cases_envelopes import DELIVER, deliver
from .core import case
from .world import C1, C2, D, M, poll, seal


def notice(s, ref: str, recipient: str, reason: str = "UNKNOWN_RECIPIENT") -> bytes:
    payload = pb.Payload(notice=pb.Notice(ref_message_id=ref, recipient=recipient, reason=reason, detail="giả"))
    return seal(s.w.signer(M), D, payload, ref_message_id=ref)[1]


@case("notices", "notice about the victim's mail to a sibling, from a node it never passed", "PERMISSION_DENIED",
      "NOTICE_OFF_ROUTE", via=DELIVER)
def _(s):
    return deliver(s, notice(s, s.w.docs["from_d"], C1))


@case("notices", "notice about a message id the victim never sent", "PERMISSION_DENIED", "NOTICE_OFF_ROUTE",
      via=DELIVER)
def _(s):
    return deliver(s, notice(s, "f" * 32, C1))


@case("notices", "notice about mail the victim received, not sent", "PERMISSION_DENIED", "NOTICE_OFF_ROUTE",
      via=DELIVER)
def _(s):
    return deliver(s, notice(s, s.w.docs["to_d"], D))


@case("notices", "notice about the victim's mail to M naming another recipient", "PERMISSION_DENIED",
      "NOTICE_OFF_ROUTE", via=DELIVER, prepares=True)
def _(s):
    sent = s.w.api(D).send(pb.Document(subject="gửi M"), [M]).envelopes[0].message_id
    s.w.fake.wait_deliveries(sent, 1)
    poll("D has M's receipt", lambda: s.w.rows(D, f"SELECT 1 FROM outbox WHERE message_id = '{sent}' "
                                                  "AND state = 'delivered'"))
    s.begin()
    return deliver(s, notice(s, sent, C2))


@case("notices", "notice from the hop the victim's mail went to (accepted)", "OK", "", via=DELIVER, prepares=True)
def _(s):
    sent = s.w.api(D).send(pb.Document(subject="gửi M lần nữa"), [M]).envelopes[0].message_id
    s.w.fake.wait_deliveries(sent, 1)
    poll("D has M's receipt", lambda: s.w.rows(D, f"SELECT 1 FROM outbox WHERE message_id = '{sent}' "
                                                  "AND state = 'delivered'"))
    s.begin()
    raw = notice(s, sent, M, "EXPIRED")
    o = deliver(s, raw)
    assert s.w.rows(D, f"SELECT 1 FROM inbox WHERE ref_message_id = '{sent}'")
    return o.allowing(sent, pb.Header.FromString(pb.Envelope.FromString(raw).header).message_id)
