"""Lifecycle forgery: revoking, changing, taking back or reporting on a document that is not yours.

D holds `to_d` (sent to it by C1) and `from_d` (which it sent to C1). M, a trusted insider, tries
to act as C1 on both; who may do what is decided by the signed header against what D stored, so
each is refused and the documents' state stays as it was (doc_progress is in the snapshot).
"""
from __future__ import annotations

from node.pb import envelope_pb2 as pb
from node.pb import exchange_pb2 as xpb

from .cases_envelopes import DELIVER, deliver
from .core import case, joined, outcome
from .world import D, M, TIMEOUT, UPDATES_PER_DOCUMENT, document, seal, status

BATCH = "Exchange.DeliverBatch, M → D (per-envelope outcomes)"


def change(btype: int) -> pb.Payload:
    return document("thay đổi", business=pb.Business(business_doc_type=btype))


for btype, what in ((1, "revoke"), (2, "update"), (3, "replace")):
    @case("lifecycle", f"{what} of a document M did not send", "PERMISSION_DENIED", "NOT_ORIGINAL_SENDER",
          via=DELIVER)
    def _(s, btype=btype):
        return deliver(s, seal(s.w.signer(M), D, change(btype), ref_message_id=s.w.docs["to_d"])[1])


@case("lifecycle", "take-back (13) of a document M did not send", "PERMISSION_DENIED", "NOT_ORIGINAL_SENDER",
      via=DELIVER)
def _(s):
    return deliver(s, seal(s.w.signer(M), D, status("13"), ref_message_id=s.w.docs["to_d"])[1])


@case("lifecycle", "revoke of a document nobody sent, to a successor that has not taken over its predecessor's "
      "history (D answers for the retired 000.25.35.H53): refused for now, nothing stored", "UNAVAILABLE",
      "HISTORY_NOT_TAKEN_OVER", via=DELIVER)
def _(s):
    return deliver(s, seal(s.w.signer(M), D, change(1), ref_message_id="f" * 32)[1])


@case("lifecycle", "status 03 on a document sent to someone else", "PERMISSION_DENIED", "NOT_RECIPIENT", via=DELIVER)
def _(s):
    return deliver(s, seal(s.w.signer(M), D, status("03"), ref_message_id=s.w.docs["from_d"])[1])


@case("lifecycle", "status 05 on a document the victim received", "PERMISSION_DENIED", "NOT_RECIPIENT", via=DELIVER)
def _(s):
    return deliver(s, seal(s.w.signer(M), D, status("05"), ref_message_id=s.w.docs["to_d"])[1])


@case("lifecycle", f"a document and {UPDATES_PER_DOCUMENT + 1} updates of it in one batch, one past D's bound (a "
      "revocation revokes every update with it, in one commit)", "INVALID_ARGUMENT", "OVER_LIMIT", via=BATCH)
def _(s):
    m = s.w.signer(M)
    doc, raw = seal(m, D, document("gốc"))
    updates = [seal(m, D, change(2), ref_message_id=doc.message_id) for _ in range(UPDATES_PER_DOCUMENT + 1)]
    resp = s.w.exchange(M).DeliverBatch(xpb.DeliverBatchRequest(envelopes=[raw, *(r for _, r in updates)]),
                                        timeout=TIMEOUT)
    *taken, last = [outcome(o) for o in resp.outcomes]
    assert [o.status for o in taken] == ["OK"] * (UPDATES_PER_DOCUMENT + 1), taken  # the document and its bound
    assert "header.ref_message_id" in last.detail or "updates of document" in last.detail, last.detail
    return last.allowing(doc.message_id, *(h.message_id for h, _ in updates[:-1]))


def decoy_then(s, forgery: pb.Payload):
    """A decoy document reusing the stored original's id, then the forgery, in one batch."""
    m, target = s.w.signer(M), s.w.docs["to_d"]
    _, decoy = seal(m, D, document("mồi"), message_id=target)
    _, forged = seal(m, D, forgery, ref_message_id=target)
    resp = s.w.exchange(M).DeliverBatch(xpb.DeliverBatchRequest(envelopes=[decoy, forged]), timeout=TIMEOUT)
    [(state,)] = s.w.rows(D, f"SELECT state FROM doc_progress WHERE message_id = '{target}'")
    assert state == "active"
    return joined(*(outcome(o) for o in resp.outcomes))


@case("lifecycle", "decoy reusing the original's id, then a revoke, in one batch",
      "ALREADY_EXISTS + PERMISSION_DENIED", "DUPLICATE_CONFLICT + NOT_ORIGINAL_SENDER", via=BATCH)
def _(s):
    return decoy_then(s, change(1))


@case("lifecycle", "decoy reusing the original's id, then a take-back, in one batch",
      "ALREADY_EXISTS + PERMISSION_DENIED", "DUPLICATE_CONFLICT + NOT_ORIGINAL_SENDER", via=BATCH)
def _(s):
    return decoy_then(s, status("13"))


@case("lifecycle", "decoy reusing a sent document's id, then a status on it, in one batch",
      "ALREADY_EXISTS + PERMISSION_DENIED", "DUPLICATE_CONFLICT + NOT_RECIPIENT", via=BATCH)
def _(s):
    m, target = s.w.signer(M), s.w.docs["from_d"]
    _, decoy = seal(m, D, document("mồi"), message_id=target)
    _, forged = seal(m, D, status("03"), ref_message_id=target)
    resp = s.w.exchange(M).DeliverBatch(xpb.DeliverBatchRequest(envelopes=[decoy, forged]), timeout=TIMEOUT)
    return joined(*(outcome(o) for o in resp.outcomes))
