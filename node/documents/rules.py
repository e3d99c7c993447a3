"""Which status may follow which (recipient side), per QCVN 102 status codes.

    01 arrived             sent by the recipient's node itself, exactly once, in the
                           transaction that stores the document; never by software
    01 arrived             → 02 rejected | 03 accepted
    03 accepted            → 02 | 04 assigned | 05 processing | 06 done
    04 assigned            → 04 (re-assigned) | 05 | 06
    05 processing          → 05 (progress) | 06
    02 rejected, 06 done   → nothing further
    15 / 16 answer a pending request (a 13 take-back, or a revoke / update / replace) at any
    point; after 15 to a take-back or revocation the document is gone from the receiver's
    hands and takes no further status.

The repeats allowed, and why: 04 after 04, because a document is re-assigned to another
officer; 05 after 05, because processing reports progress more than once. Nothing else
repeats through SetStatus: a second 01 would tell the sender the document arrived twice. (An imported
edXML 01 from the agency's own software is the one exception, sent once beside the node's while the
document is still at 01: node/documents/lifecycle.py, confirm_arrival.)
"""
from __future__ import annotations

from ..errors import Reason, Rejected

ARRIVED, REJECTED, ACCEPTED, ASSIGNED, PROCESSING, DONE = "01", "02", "03", "04", "05", "06"
TAKE_BACK, AGREE, REFUSE = "13", "15", "16"
RECIPIENT_CODES = {ARRIVED, REJECTED, ACCEPTED, ASSIGNED, PROCESSING, DONE, AGREE, REFUSE}
SOFTWARE_CODES = RECIPIENT_CODES - {ARRIVED}  # what the agency's software may report (01 is the node's)
ALL_CODES = RECIPIENT_CODES | {TAKE_BACK}

NEXT = {
    "": {ARRIVED},
    ARRIVED: {REJECTED, ACCEPTED},
    ACCEPTED: {REJECTED, ASSIGNED, PROCESSING, DONE},
    ASSIGNED: {ASSIGNED, PROCESSING, DONE},
    PROCESSING: {PROCESSING, DONE},
    REJECTED: set(),
    DONE: set(),
}
NAMES = {ARRIVED: "arrived", REJECTED: "rejected", ACCEPTED: "accepted", ASSIGNED: "assigned",
         PROCESSING: "processing", DONE: "done", TAKE_BACK: "take-back requested",
         AGREE: "agreed to request", REFUSE: "refused request"}


def check_step(current: str, pending_request: str | None, state: str, code: str) -> None:
    """Raise FAILED_PRECONDITION (naming the current status) unless `code` may follow now.

    The refusal carries `current_status` and `allowed` (comma-separated codes) as metadata,
    so a client can offer the right next step without reading the text."""
    if code == ARRIVED:
        raise Rejected(Reason.INVALID_REQUEST, "01 (arrived) is sent by the node itself, exactly once, when the "
                       "document is stored", field="status_code", metadata={"allowed": ",".join(sorted(SOFTWARE_CODES))})
    if code not in SOFTWARE_CODES:
        raise Rejected(Reason.INVALID_REQUEST, f"status {code!r} cannot be set by the recipient (02-06, 15, 16)",
                       field="status_code", metadata={"allowed": ",".join(sorted(SOFTWARE_CODES))})
    answers = {AGREE, REFUSE} if pending_request else set()
    if state in ("taken_back", "revoked") and not (code in (AGREE, REFUSE) and pending_request):
        raise Rejected(Reason.BAD_STEP, f"document is {state}; current status {current} ({NAMES.get(current, '?')})",
                       metadata=_step(current, answers, document_state=state))
    if code in (AGREE, REFUSE):
        if not pending_request:
            raise Rejected(Reason.BAD_STEP, f"no take-back or change request is pending; current status {current}",
                           metadata=_step(current, NEXT.get(current, set())))
        return
    if code not in NEXT.get(current, set()):
        allowed = ", ".join(sorted(NEXT.get(current, set()))) or "none"
        raise Rejected(Reason.BAD_STEP,
                       f"status {code} cannot follow current status {current} ({NAMES.get(current, '?')}); allowed: {allowed}",
                       metadata=_step(current, NEXT.get(current, set()) | answers))


def _step(current: str, allowed: set[str], **more: str) -> dict[str, str]:
    return {"current_status": current, "allowed": ",".join(sorted(allowed)), **more}
