"""The strings the store keeps (and older clients read), as the proto enums clients compare.

The store and the events keep their strings (rows written by every version so far); the API fills
both the enum field and the deprecated string beside it. A value the map does not know becomes
UNSPECIFIED (never a failed reply), and a test keeps each map complete against the store's values.
"""
from __future__ import annotations

from .. import events
from ..pb import envelope_pb2 as pb
from ..pb import mailbox_pb2 as mpb
from ..store import outbox

DOC_STATE = {"active": mpb.DOC_STATE_ACTIVE, "revoked": mpb.DOC_STATE_REVOKED, "updated": mpb.DOC_STATE_UPDATED,
             "replaced": mpb.DOC_STATE_REPLACED, "taken_back": mpb.DOC_STATE_TAKEN_BACK}
PENDING = {"": mpb.PENDING_REQUEST_NONE, "13": mpb.PENDING_REQUEST_TAKE_BACK, "1": mpb.PENDING_REQUEST_REVOKE,
           "2": mpb.PENDING_REQUEST_UPDATE, "3": mpb.PENDING_REQUEST_REPLACE}
SEND_STATE = {outbox.PENDING: mpb.SEND_STATE_PENDING, outbox.DELIVERED: mpb.SEND_STATE_DELIVERED,
              outbox.REJECTED: mpb.SEND_STATE_REJECTED, outbox.EXPIRED: mpb.SEND_STATE_EXPIRED,
              outbox.NOT_REGISTERED_YET: mpb.SEND_STATE_NOT_REGISTERED_YET}  # the last one derived, not stored
SEND_STATE_NAME = {v: k for k, v in SEND_STATE.items()}
EVENT_TYPE = events.EVENT_TYPES  # kept with the events (the bus builds every Event)
IMPORTED_KIND = {"document": pb.DOCUMENT, "status": pb.STATUS}


def doc_state(text: str) -> int:
    return DOC_STATE.get(text, mpb.DOC_STATE_UNSPECIFIED)


def pending(text: str) -> int:
    return PENDING.get(text, mpb.PENDING_REQUEST_NONE)


def send_state(text: str) -> int:
    return SEND_STATE.get(text, mpb.SEND_STATE_UNSPECIFIED)


def event_type(text: str) -> int:
    return EVENT_TYPE.get(text, mpb.EVENT_TYPE_UNSPECIFIED)


def imported_kind(text: str) -> int:
    return IMPORTED_KIND.get(text, pb.KIND_UNSPECIFIED)
