"""Local API replies built from what the lower layers return (store rows, posts, verified envelopes).

Kept beside the API so the documents and exchange layers return plain results and
never shape a client's message.
"""
from __future__ import annotations

from ..documents import rules
from ..documents.lifecycle import parse_edxml_time
from ..exchange.outgoing import Posted
from ..pb import envelope_pb2 as pb
from ..pb import mailbox_pb2 as mpb
from ..pb import registry_pb2 as rpb
from ..store import documents, outbox, statuses
from ..store.database import Database
from . import enums


def sent_response(posted: Posted) -> mpb.SendResponse:
    def envelope(r: str, m: str) -> mpb.SentEnvelope:
        waits = posted.waits.get(m)
        return mpb.SentEnvelope(recipient=r, message_id=m, waits_at=waits.at if waits else "",
                                waits_until_ms=waits.until_ms if waits else 0,
                                successor_of=posted.successor_of.get(m, ""))
    return mpb.SendResponse(doc_id=posted.doc_id, envelopes=[envelope(r, m) for r, m in posted.envelopes])


def inbox_entry(row: dict) -> mpb.InboxEntry:
    return mpb.InboxEntry(seq=row["seq"], message_id=row["message_id"], sender=row["sender"], kind=row["kind"],
                          subject=row["subject"], received_ms=row["received_ms"], acked=row["acked_ms"] is not None,
                          priority=row["priority"], state=row["state"], changed_by=row["changed_by"],
                          status=row["status"], ref_message_id=row["ref_message_id"],
                          business_doc_type=row["business_doc_type"], pending_request=row["pending_request"],
                          doc_state=enums.doc_state(row["state"]), pending=enums.pending(row["pending_request"]),
                          held_for=row.get("held_for") or "")


def sent_entry(row: dict) -> mpb.SentEntry:
    e = mpb.SentEntry(seq=row["seq"], message_id=row["message_id"], recipient=row["recipient"],
                      next_hop=row["next_hop"], kind=row["kind"], state=row["state"], attempts=row["attempts"],
                      created_ms=row["created_ms"], delivered_ms=row["delivered_ms"] or 0, reason=row["reason"] or "",
                      subject=row["subject"], latest_status=row.get("latest_status") or "",
                      latest_status_ms=row.get("latest_status_ms") or 0, send_state=enums.send_state(row["state"]),
                      waits_at=row.get("waits_at") or "", waits_until_ms=row.get("waits_until_ms") or 0,
                      held_for=row.get("held_for") or "")
    if row["receipt"]:
        e.receipt.ParseFromString(row["receipt"])
    return e


def agency(entry: rpb.DirectoryEntry, code: str = "", successor: str = "") -> mpb.Agency:
    """`code`: the code asked for (a retired agency's entry may carry no record of it); `successor`: who answers
    for it now, its successions followed (default: the one its succession names)."""
    r = rpb.AgencyRecord.FromString(entry.record.record)
    a = mpb.Agency(code=r.code or code, name=r.name, level=r.level, parent=r.parent, endpoint=r.endpoint,
                   reachable=entry.reachable, last_seen_ms=entry.last_seen_ms)
    if entry.HasField("succession"):
        body = rpb.SuccessionList.FromString(entry.succession.body)
        for s in body.successions:
            if a.code in s.old_codes:
                a.successor, a.retired_ms, a.retired_by, a.retired_reason = (
                    successor or s.successor, s.effective_ms, body.issuer, s.reason)
                break
    return a


def track_response(db: Database, doc: documents.SentDocument) -> mpb.TrackResponse:
    """Per recipient: handed over when, the path its node verified (carried back in the 01), and every
    status in the order the recipient's node signed them."""
    resp = mpb.TrackResponse(doc_id=doc.doc_id, subject=doc.subject, document_id=doc.document_id,
                             created_ms=doc.created_ms, held_for=doc.held_for or "")
    resp.changes.extend(documents.changes_of(db, doc.doc_id))
    for env in outbox.of_doc(db, doc.doc_id):
        t = resp.recipients.add(recipient=env.recipient, message_id=env.message_id, state=env.state,
                                send_state=enums.send_state(env.state),
                                delivered_ms=env.delivered_ms or 0, reason=env.reason or "",
                                waits_at=env.waits_at or "", waits_until_ms=env.waits_until_ms or 0,
                                successor_of=env.successor_of or "")
        for s in statuses.returned_on(db, env.message_id):
            status = pb.Status.FromString(s.status)
            t.statuses.add(status_code=s.status_code, time_ms=s.issued_ms, staff_info=status.staff_info,
                           description=status.description, message_id=s.status_message_id, received_ms=s.received_ms,
                           timestamp=status.timestamp, answered_by=s.answered_by)
            if s.status_code == rules.ARRIVED and not t.arrived_ms:
                t.arrived_ms = s.issued_ms
                t.path.extend(mpb.HopView(code=h.organ_id, time_ms=parse_edxml_time(h.timestamp), verified=True)
                              for h in status.edxml_trace)
        if t.statuses:
            t.latest_status = t.statuses[-1].status_code
    return resp
