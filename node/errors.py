"""The error catalogue: one stable reason per failure, and `Rejected`, the one exception that carries it.

Servicers and lower layers only raise `Rejected`; `node.interceptor` turns it into a gRPC
status (how: `node.grpc_errors`). Peers and clients see the reason's wire string and the
public detail, never internal exception text. Every reason is also in
`proto/node/pb/errors.proto` and `docs/reasons.md` (tests keep the three in step), and in the
API contract `docs/api.md` with what a client should do.
"""
from __future__ import annotations

import contextlib
import enum
from typing import Iterator, Mapping

import grpc

_C = grpc.StatusCode


@enum.unique
class Reason(enum.Enum):
    """A member's value is its wire string: stored in the outbox, sent in per-envelope
    rejections and in ErrorInfo.reason. Never change or reuse one; add new ones at the end
    (and to errors.proto and docs/reasons.md)."""

    # (wire string, gRPC code, permanent?, public message)
    MALFORMED = ("MALFORMED", _C.INVALID_ARGUMENT, True, "envelope bytes do not parse")
    MISSING_FIELD = ("MISSING_FIELD", _C.INVALID_ARGUMENT, True, "a required field is missing")
    TOO_LARGE = ("TOO_LARGE", _C.RESOURCE_EXHAUSTED, True, "message exceeds the size limit")
    BAD_SIGNATURE = ("BAD_SIGNATURE", _C.PERMISSION_DENIED, True, "sender signature does not verify")
    DIGEST_MISMATCH = ("DIGEST_MISMATCH", _C.INVALID_ARGUMENT, True, "payload does not match its digest")
    UNKNOWN_SENDER = ("UNKNOWN_SENDER", _C.PERMISSION_DENIED, True, "sender is not known to this node")
    SENDER_MISMATCH = ("SENDER_MISMATCH", _C.PERMISSION_DENIED, True, "sender code is not the certificate's code")
    UNTRUSTED_CERT = ("UNTRUSTED_CERT", _C.PERMISSION_DENIED, True, "certificate does not chain to a trust anchor")
    CERT_EXPIRED = ("CERT_EXPIRED", _C.PERMISSION_DENIED, True, "certificate is outside its validity period")
    BAD_TRACE = ("BAD_TRACE", _C.PERMISSION_DENIED, True, "trace entry does not verify")
    PEER_MISMATCH = ("PEER_MISMATCH", _C.PERMISSION_DENIED, True, "last trace entry is not the connecting peer")
    NOT_FOR_THIS_NODE = ("NOT_FOR_THIS_NODE", _C.FAILED_PRECONDITION, True, "recipient is not served by this node")
    EXPIRED = ("EXPIRED", _C.FAILED_PRECONDITION, True, "message is past its lifetime")
    DUPLICATE_CONFLICT = ("DUPLICATE_CONFLICT", _C.ALREADY_EXISTS, True, "message id already used for other content")
    UNKNOWN_RECIPIENT = ("UNKNOWN_RECIPIENT", _C.NOT_FOUND, True, "no agency with that code is registered")
    WRONG_PARENT = ("WRONG_PARENT", _C.PERMISSION_DENIED, True, "this node is not the parent of that code")
    BAD_STEP = ("BAD_STEP", _C.FAILED_PRECONDITION, True, "that status may not follow the current one")
    NOT_RECIPIENT = ("NOT_RECIPIENT", _C.PERMISSION_DENIED, True, "only the document's recipient may report its status")
    NOT_ORIGINAL_SENDER = ("NOT_ORIGINAL_SENDER", _C.PERMISSION_DENIED, True, "only the document's sender may change it")
    UNAUTHENTICATED = ("UNAUTHENTICATED", _C.UNAUTHENTICATED, True, "missing or wrong API token")
    NOT_FOUND = ("NOT_FOUND", _C.NOT_FOUND, True, "no such message")
    INVALID_REQUEST = ("INVALID_REQUEST", _C.INVALID_ARGUMENT, True, "request is not valid")
    UNREACHABLE = ("UNREACHABLE", _C.UNAVAILABLE, False, "peer did not answer")
    BAD_RECEIPT = ("BAD_RECEIPT", _C.DATA_LOSS, False, "receipt does not verify")
    INTERNAL = ("INTERNAL", _C.INTERNAL, False, "internal error")
    TOO_MANY_STREAMS = ("TOO_MANY_STREAMS", _C.RESOURCE_EXHAUSTED, False, "too many streams are open")
    BAD_TIME = ("BAD_TIME", _C.INVALID_ARGUMENT, True, "a time in the envelope is out of range")
    NOT_A_NEIGHBOUR = ("NOT_A_NEIGHBOUR", _C.PERMISSION_DENIED, True,
                       "only a parent, child or configured peer may hand over")
    OFF_ROUTE = ("OFF_ROUTE", _C.PERMISSION_DENIED, True, "the envelope's route does not pass from that peer to this node")
    CERT_IN_USE = ("CERT_IN_USE", _C.PERMISSION_DENIED, True,
                   "another certificate is registered for this code; a renewal must be signed by its key")
    OVER_LIMIT = ("OVER_LIMIT", _C.INVALID_ARGUMENT, True, "a count or length is over this node's limit")
    RATE_LIMITED = ("RATE_LIMITED", _C.RESOURCE_EXHAUSTED, False, "too many requests from this peer")
    NOT_REGISTERED_YET = ("NOT_REGISTERED_YET", _C.UNAVAILABLE, False,
                          "the code rule places the agency under a node it has not registered with yet")
    PURGED = ("PURGED", _C.ABORTED, True, "an administrator removed the message from a queue")
    FROM_NOT_ALLOWED = ("FROM_NOT_ALLOWED", _C.PERMISSION_DENIED, True,
                        "this node may not send for the agency the document's From names")
    AMBIGUOUS_DOCUMENT = ("AMBIGUOUS_DOCUMENT", _C.FAILED_PRECONDITION, True,
                          "several documents carry that DocumentId; name the message")
    CERT_REVOKED = ("CERT_REVOKED", _C.PERMISSION_DENIED, True, "the certificate is on the CA's revocation list")
    KEY_REUSED = ("KEY_REUSED", _C.ALREADY_EXISTS, True, "that client key was used for another request")
    CHECKPOINT_CONFLICT = ("CHECKPOINT_CONFLICT", _C.ALREADY_EXISTS, True,
                           "a checkpoint at that seq with another head was taken before")
    BAD_SEAL = ("BAD_SEAL", _C.INVALID_ARGUMENT, True, "the sealed payload does not open")
    NOT_SEALED_FOR_ME = ("NOT_SEALED_FOR_ME", _C.FAILED_PRECONDITION, True,
                         "the payload is sealed to another key than this node's seal key")
    SEAL_KEY_MISSING = ("SEAL_KEY_MISSING", _C.FAILED_PRECONDITION, True,
                        "the recipient publishes no seal key and sealing.mode is required")
    CRL_OUTDATED = ("CRL_OUTDATED", _C.FAILED_PRECONDITION, True,
                    "the CRL is not newer than the one this node holds")
    CRL_STALE = ("CRL_STALE", _C.UNAVAILABLE, False,
                 "this node's CRL is past its next update; it takes no mail until it has a fresh one")
    PARK_FULL = ("PARK_FULL", _C.RESOURCE_EXHAUSTED, False,
                 "this peer has too much mail waiting here for agencies that have not registered yet")
    CERT_NOT_REGISTERED = ("CERT_NOT_REGISTERED", _C.PERMISSION_DENIED, False,
                           "the agency registered here with another certificate than the one presented")
    UNSIGNED_FIELDS = ("UNSIGNED_FIELDS", _C.INVALID_ARGUMENT, True,
                       "the envelope carries fields outside its signed bytes that this node does not know")
    NOT_A_HOP = ("NOT_A_HOP", _C.NOT_FOUND, True,
                 "that code is not a next hop of this node: no parent, child or peer by it, nothing queued for it")
    HELD = ("HELD", _C.FAILED_PRECONDITION, True, "the operator holds that next hop or message: release it first")
    UNPRINTABLE = ("UNPRINTABLE", _C.INVALID_ARGUMENT, True,
                   "the text holds control characters (a newline, a tab, a terminal escape)")
    NOT_QUEUED = ("NOT_QUEUED", _C.FAILED_PRECONDITION, True,
                  "the message no longer waits in this node's queue (delivered, refused, expired or purged)")
    METHOD_NOT_ALLOWED = ("METHOD_NOT_ALLOWED", _C.UNIMPLEMENTED, True,
                          "the HTTP/JSON face takes another HTTP method on that path")
    PEER_BUSY = ("PEER_BUSY", _C.RESOURCE_EXHAUSTED, False,
                 "this peer already has as many registry calls in progress here as it may")
    REGISTRY_BUSY = ("REGISTRY_BUSY", _C.RESOURCE_EXHAUSTED, False,
                     "this node is answering as many registry calls as it gives them; delivery is served apart")
    CHILD_BUSY = ("CHILD_BUSY", _C.RESOURCE_EXHAUSTED, False,
                  "the child on the way to that code has as many questions outstanding as it may")
    SIGNATURE_BUDGET = ("SIGNATURE_BUDGET", _C.RESOURCE_EXHAUSTED, False,
                        "this peer has had as many signatures checked as it may for now")
    BACKUP_UNSIGNED = ("BACKUP_UNSIGNED", _C.FAILED_PRECONDITION, True,
                       "the backup carries no signature of the node that made it")
    BACKUP_BAD_SIGNATURE = ("BACKUP_BAD_SIGNATURE", _C.DATA_LOSS, True,
                            "the backup's manifest signature does not verify: it was changed after it was made")
    BACKUP_FOREIGN_KEY = ("BACKUP_FOREIGN_KEY", _C.PERMISSION_DENIED, True,
                          "the backup was signed by another key than this node's")
    NOT_PERMITTED = ("NOT_PERMITTED", _C.PERMISSION_DENIED, True, "this client's token does not allow that call")
    BAD_ENDPOINT = ("BAD_ENDPOINT", _C.INVALID_ARGUMENT, True,
                    "an endpoint must be host:port (a DNS name or IP address, port 1-65535)")
    CASE_TWIN = ("CASE_TWIN", _C.INVALID_ARGUMENT, True,
                 "the code differs from a QCVN 102 code only by letter case")
    NOTICE_OFF_ROUTE = ("NOTICE_OFF_ROUTE", _C.PERMISSION_DENIED, True,
                        "a non-delivery notice from a node the message did not pass, or about a message "
                        "that did not go that way")
    TOO_MANY_CONNECTIONS = ("TOO_MANY_CONNECTIONS", _C.RESOURCE_EXHAUSTED, False,
                            "too many connections are open to this server")
    NOT_HOSTED = ("NOT_HOSTED", _C.NOT_FOUND, False,
                  "this host serves no agency by that code (or the call named none, or more than one)")
    OTHER_AGENCY = ("OTHER_AGENCY", _C.PERMISSION_DENIED, True,
                    "this token belongs to another agency of the host")
    AGENCY_BUSY = ("AGENCY_BUSY", _C.RESOURCE_EXHAUSTED, False,
                   "this agency already has its share of the host's workers busy")
    SUCCESSION_NOT_COMPETENT = ("SUCCESSION_NOT_COMPETENT", _C.PERMISSION_DENIED, True,
                                "a succession may be issued only by the parent of the codes it retires")
    SUCCESSION_TOO_LARGE = ("SUCCESSION_TOO_LARGE", _C.INVALID_ARGUMENT, True,
                            "a succession list is over its bounds (codes, records, reason, bytes)")
    SUCCESSION_BAD_SIGNATURE = ("SUCCESSION_BAD_SIGNATURE", _C.PERMISSION_DENIED, True,
                                "a succession list is not signed by its issuer's certified key")
    SUCCESSION_CYCLE = ("SUCCESSION_CYCLE", _C.INVALID_ARGUMENT, True,
                        "a succession would make a code succeed itself or retire a code twice")
    SUCCESSION_STALE = ("SUCCESSION_STALE", _C.FAILED_PRECONDITION, True,
                        "a succession list is not newer than the one this node holds from its issuer")
    RECIPIENT_RETIRED = ("RECIPIENT_RETIRED", _C.FAILED_PRECONDITION, True,
                         "the recipient is retired: its successor answers for it (metadata: successor)")
    RETIRE_NOT_SUCCESSOR = ("RETIRE_NOT_SUCCESSOR", _C.FAILED_PRECONDITION, True,
                            "no succession this node holds retires its code into that agency")
    NOT_RETIRING = ("NOT_RETIRING", _C.FAILED_PRECONDITION, True, "this node is not retiring")
    NODE_RETIRING = ("NODE_RETIRING", _C.FAILED_PRECONDITION, True,
                     "this node is retiring: send new documents from its successor (metadata: successor)")
    TAKEOVER_NOT_PREDECESSOR = ("TAKEOVER_NOT_PREDECESSOR", _C.FAILED_PRECONDITION, True,
                                "no succession this node holds retires that agency into it")
    TAKEOVER_TOO_LARGE = ("TAKEOVER_TOO_LARGE", _C.INVALID_ARGUMENT, True,
                          "the mailbox to take over is over its bounds (rows, bytes, one envelope)")
    TAKEOVER_NOT_DRAINED = ("TAKEOVER_NOT_DRAINED", _C.FAILED_PRECONDITION, True,
                            "the predecessor's backup still holds envelopes waiting to leave it")
    TAKEOVER_REVOKED = ("TAKEOVER_REVOKED", _C.PERMISSION_DENIED, True,
                        "the predecessor's certificate was revoked for another reason than its retirement")
    TAKEOVER_SEAL_KEY = ("TAKEOVER_SEAL_KEY", _C.INVALID_ARGUMENT, True,
                         "the seal key given is not the one the predecessor's documents are sealed to")
    NOT_A_SUCCESSOR = ("NOT_A_SUCCESSOR", _C.PERMISSION_DENIED, True,
                       "the document's counterpart is retired, and this agency is not its successor")
    SUCCESSION_NOT_COVERING = ("SUCCESSION_NOT_COVERING", _C.PERMISSION_DENIED, True,
                               "the succession list answered for a code does not retire it")
    SUCCESSION_UNCERTAIN = ("SUCCESSION_UNCERTAIN", _C.UNAVAILABLE, False,
                            "whether the document's counterpart is retired cannot be told now: retried")
    HISTORY_NOT_TAKEN_OVER = ("HISTORY_NOT_TAKEN_OVER", _C.UNAVAILABLE, False,
                              "a successor that does not hold its predecessors' history yet: retried")
    HAND_OVER_IN_PROGRESS = ("HAND_OVER_IN_PROGRESS", _C.FAILED_PRECONDITION, False,
                             "this node's mailbox is being handed over already: wait for that call's answer")

    def __new__(cls, wire: str, code: grpc.StatusCode, permanent: bool, public_message: str) -> "Reason":
        member = object.__new__(cls)
        member._value_ = wire
        member.grpc_code = code
        member.permanent = permanent  # a peer that gets it gives up on the envelope instead of retrying
        member.public_message = public_message
        return member

    @property
    def wire(self) -> str:
        return self.value

    @classmethod
    def from_wire(cls, wire: str | None) -> "Reason | None":
        """The member for a wire string a peer sent, or None (an unknown or newer reason)."""
        try:
            return cls(wire)
        except ValueError:
            return None


REASON_METADATA_KEY = "lienthong-reason"  # trailing metadata with the wire string, for clients without ErrorInfo
MAX_DETAIL = 400  # characters of a public detail (see Rejected)


class Rejected(Exception):
    """A request or envelope refused for a stable reason; `detail` is safe to show the caller.

    `field` names the request field at fault (a BadRequest field violation on the wire);
    `metadata` is more machine-readable context (ErrorInfo metadata: `current_status`,
    `allowed`, ...), so a client never has to read it out of the text."""

    def __init__(self, reason: Reason, detail: str = "", *, field: str | None = None,
                 metadata: Mapping[str, str] | None = None) -> None:
        self.reason = reason
        self.detail = detail = bounded(detail)
        self.field = field
        self.metadata = dict(metadata or {})
        super().__init__(f"{reason.wire}: {detail or reason.public_message}")

    @property
    def public_text(self) -> str:
        """Reason and detail in one line, for logs and the audit trail (not for a gRPC status)."""
        return f"{self.reason.wire}: {self.public_detail}"

    @property
    def public_detail(self) -> str:
        return self.detail or self.reason.public_message


def too_large(what: str, size: int, limit: int) -> Rejected:
    """TOO_LARGE with the limit (and the size) as metadata, so a client reads them, not the text."""
    return Rejected(Reason.TOO_LARGE, f"{what} is {size} bytes, limit {limit}",
                    metadata={"limit": str(limit), "size": str(size)})


def bounded(text: str, limit: int = MAX_DETAIL) -> str:
    """A detail as it may travel and be stored: printable, at most `limit` characters.

    Details echo what a peer or a packet sent (a header field, an element's text, a peer's own
    refusal); unbounded, one refused envelope wrote its size into the audit log and the node's
    log, and a refusal over gRPC's trailer limit reached its caller without its reason."""
    if len(text) <= limit and text.isprintable():
        return text
    text = "".join(ch if ch.isprintable() else "?" for ch in text[:limit + 1])
    return text if len(text) <= limit else text[:limit - 1] + "…"


@contextlib.contextmanager
def blaming(field: str, *reasons: Reason) -> Iterator[None]:
    """Refusals of `reasons` inside that name no field get `field`, their text unchanged: a lower layer
    knows the value it refused (a message id, a code), the servicer knows which request field held it."""
    try:
        yield
    except Rejected as r:
        if r.field or r.reason not in reasons:
            raise
        raise Rejected(r.reason, r.detail, field=field, metadata=r.metadata) from None


@contextlib.contextmanager
def naming(where: str) -> Iterator[None]:
    """Refusals inside get `where` in front of their detail (`documents[3]: ...`) and their field."""
    try:
        yield
    except Rejected as r:
        raise Rejected(r.reason, f"{where}: {r.public_detail}", field=f"{where}.{r.field}" if r.field else where,
                       metadata=r.metadata) from None
