"""Envelopes this node originates: documents, statuses, changes and non-delivery notices.

`EnvelopeMaker` is the one way an envelope is made: checked, sealed with this node's
key, size-limited, and queued inside a transaction, on the outbox of its next hop or,
for a notice to ourselves, in our own mailbox. `Outgoing` sends on behalf of the
agency: it looks recipients up in the tree first (outside any transaction), records one
that nobody has as refused with a notice, commits a whole send at once (a `docs` row
grouping one envelope per recipient, for tracking and later changes) and wakes the next
hops once the commit is done. `prepare_in` makes one envelope with no transaction open
and `store_in` queues it inside a caller's transaction, so an automatic reply (status 01),
signed and sealed before custody's transaction, commits together with what caused it. `within`, on
`post` and `post_many`, runs inside that one commit with what was posted (the local API
records an idempotency key's answer there), never around the lookups before it.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

from .. import envelope as env_mod
from ..clock import Clock
from .. import events, fields
from ..codes import is_identifier, is_qcvn
from ..envelope import Signer
from ..events import EventSink, NoEvents
from ..errors import Reason, Rejected, naming, too_large
from ..identity import sealing
from ..limits import Limits, check_document, over
from ..pb import envelope_pb2 as pb
from ..store import documents, inbox, outbox, retirement, successions
from ..api import clients
from ..store.database import Database, Transaction
from .protocols import Waker
from .routing import Router

MAX_LIFETIME_S = env_mod.MAX_LIFETIME_MS // 1000

log = logging.getLogger(__name__)


def subject_of(payload: pb.Payload) -> str:
    """A summary for mailbox listings, kept as the sender wrote it (the API hands data over unchanged);
    whatever shows it escapes it there: the log formatter, the CLI (node.terminal)."""
    which = payload.WhichOneof("body")
    if which == "document":
        return payload.document.subject
    if which == "status":
        return f"status {payload.status.status_code}"
    return f"not delivered: {payload.notice.reason}"


@dataclass(frozen=True)
class Sealed:
    header: pb.Header
    raw: bytes
    hop: str                       # next hop; "" when there is none
    refused: Rejected | None = None  # the tree says the recipient does not exist
    waits: outbox.Waits | None = None  # the tree says the recipient has not registered (yet): where it waits
    awaited: bool = False  # its hop is a child of ours that has not registered (yet): parked there (queue_in)
    successor_of: str = ""         # the code asked for, retired: the envelope is addressed to its successor


@dataclass
class Posted:
    doc_id: str
    envelopes: list[tuple[str, str]]            # (recipient, message id)
    hops: set[str] = field(default_factory=set)  # next hops woken once committed
    waits: dict[str, outbox.Waits] = field(default_factory=dict)  # message id -> where it waits for a registration
    successor_of: dict[str, str] = field(default_factory=dict)  # message id -> the retired code asked for


class EnvelopeMaker:
    def __init__(self, signer: Signer, router: Router, clock: Clock, *, lifetime_s: float, max_size: int,
                 limits: Limits = Limits(), seal_key: sealing.SealKey | None = None,
                 seal_mode: str = "required", previous_seal_keys: list[sealing.SealKey] | None = None) -> None:
        self.signer, self.router, self.clock = signer, router, clock
        self.lifetime_s, self.max_size, self.limits = lifetime_s, max_size, limits
        self.seal_key = seal_key    # ours: each sealed envelope also wraps its content key for us
        self.seal_mode = seal_mode  # sealing.mode (node.config.SealingSettings)
        # retired keys (sealing.previous_keys): they still open what was sealed to them, and seal nothing
        self.opening_keys = [k for k in (seal_key, *(previous_seal_keys or ())) if k is not None]
        # message id -> the content key of a predecessor's envelope we hold, wrapped for us (node.takeover); None
        # when this node took nothing over
        self.held_wrap: Callable[[str], bytes | None] | None = None

    @property
    def sealing(self) -> bool:
        return self.seal_key is not None and self.seal_mode != "off"

    def content(self, payload: pb.Payload) -> sealing.Content | None:
        """The payload encrypted once, for every envelope of one send (None when we do not seal)."""
        return sealing.Content.encrypt(payload.SerializeToString(), self.code) if self.sealing else None

    def opener(self, data: bytes, header: pb.Header) -> bytes:
        """Open a payload sealed to us (intake, and our own mailbox and sent copies when read), with the key it
        was sealed to: the current one, or a retired one (a rotation leaves mail in flight and sent copies)."""
        if not self.opening_keys:
            raise Rejected(Reason.NOT_SEALED_FOR_ME, "this node has no seal key")
        try:
            return sealing.open_payload(data, header, sealing.key_for(data, self.opening_keys))
        except Rejected as r:  # sealed to a predecessor whose mailbox we took over: its key, wrapped for us
            held = self.held_wrap(header.message_id) if r.reason is Reason.NOT_SEALED_FOR_ME and self.held_wrap \
                else None
            if held is None:
                raise
            return sealing.open_held(data, header, held, self.opening_keys)

    def sealer(self, payload: pb.Payload, recipient: str, seal_to: bytes, content: sealing.Content | None,
               *, clear_ok: bool = False):
        """How the payload for `recipient` is written: a sealer (node.envelope.seal), or None for clear.

        `seal_to`: the recipient's published seal key (b"": none known). In clear only when sealing is
        off, or the mode is `preferred` (or `clear_ok`: a notice about an envelope that went in clear)
        and no key is known; `required` refuses that send (SEAL_KEY_MISSING) rather than leak it."""
        if not self.sealing:
            return None
        if not seal_to:
            if self.seal_mode == "required" and not clear_ok:
                raise Rejected(Reason.SEAL_KEY_MISSING, f"{recipient} publishes no seal key (sealing.mode: required)",
                               metadata={"recipient": recipient})
            if not clear_ok:  # a notice or reply about mail that went in clear, or a send refused here: expected
                log.warning("sending to %s in clear: no seal key is known for it (sealing.mode: %s)", recipient,
                            self.seal_mode)
            return None
        shared = content or sealing.Content.encrypt(payload.SerializeToString(), self.code)
        own = self.seal_key
        return lambda header: sealing.seal(shared, header, seal_to, own)

    def readdress(self, raw: bytes, recipient: str, *, new_id: bool = False) -> tuple[pb.Header, bytes]:
        """A new document of ours made again for another recipient (a retired agency's successor), in clear: kept
        here until the successor's seal key is had and sealed at hand-over (late_seal), as any envelope of ours
        made while the tree could not be asked. With its first message id and times, or (`new_id`: the first
        was handed over and refused on the way) a new id, its expiry kept. LookupError for anything but a new
        document: a change or status about one sent before the succession is the retired agency's history."""
        env = pb.Envelope.FromString(raw)
        header = pb.Header.FromString(env.header)
        payload = pb.Payload.FromString(self.opener(env.payload, header) if header.seal != pb.PLAIN else env.payload)
        if payload.WhichOneof("body") != "document" or payload.document.business.business_doc_type or \
                header.ref_message_id:
            raise LookupError("only a new document follows a succession (history handover is not built)")
        if header.expires_ms <= self.clock.now_ms():
            raise LookupError("past its lifetime")
        return env_mod.seal(self.signer, recipient, payload, clock=self.clock, priority=header.priority,
                            lifetime_s=self.lifetime_s, message_id=None if new_id else header.message_id,
                            created_ms=None if new_id else header.created_ms, expires_ms=header.expires_ms)

    def reseal(self, env: pb.Envelope, header: pb.Header, seal_to: bytes) -> bytes:
        """The envelope made again, sealed to `seal_to`, with its first message id, times and fields: one we
        made in clear because the recipient's key could not be looked up when it was sent (late_seal)."""
        payload = pb.Payload.FromString(env.payload)
        content = sealing.Content.encrypt(env.payload, self.code)
        own = self.seal_key
        _, raw = env_mod.seal(self.signer, header.recipient, payload, clock=self.clock, priority=header.priority,
                              lifetime_s=self.lifetime_s, ref_message_id=header.ref_message_id,
                              message_id=header.message_id, created_ms=header.created_ms,
                              expires_ms=header.expires_ms, sealer=lambda h: sealing.seal(content, h, seal_to, own))
        return raw

    @property
    def code(self) -> str:
        return self.signer.code

    def check(self, recipients: list[str], priority: int, lifetime_s: float | None) -> None:
        """What a client may ask for: real, distinct agency codes other than ours; priority and lifetime in range."""
        if not recipients:
            raise Rejected(Reason.INVALID_REQUEST, "at least one recipient is needed", field="recipients")
        if len(recipients) > self.limits.recipients_per_send:
            raise over("recipients", len(recipients), self.limits.recipients_per_send, "recipients")
        if len(set(recipients)) != len(recipients):
            raise Rejected(Reason.INVALID_REQUEST, "a recipient is listed twice", field="recipients")
        if not 0 <= priority <= 4:
            raise Rejected(Reason.INVALID_REQUEST, f"priority must be 0..4, got {priority}", field="priority")
        if lifetime_s is not None and not 0 < lifetime_s <= MAX_LIFETIME_S:
            raise Rejected(Reason.INVALID_REQUEST,
                           f"lifetime must be 1 s .. {MAX_LIFETIME_S // 86400} days, got {lifetime_s} s",
                           field="lifetime_seconds")
        for i, r in enumerate(recipients):
            if r == self.signer.code:
                raise Rejected(Reason.INVALID_REQUEST, "a node does not send to itself", field=f"recipients[{i}]")
            fields.check_code(r, f"recipients[{i}]")
            if not is_identifier(r):
                raise Rejected(Reason.INVALID_REQUEST, f"recipient {r!r} is not an agency code", field=f"recipients[{i}]")

    def seal(self, payload: pb.Payload, recipient: str, hop: str, *, priority: int = 0,
             lifetime_s: float | None = None, ref_message_id: str = "", refused: Rejected | None = None,
             seal_to: bytes = b"", content: sealing.Content | None = None, clear_ok: bool = False,
             waits: outbox.Waits | None = None, successor_of: str = "") -> Sealed:
        """Sign (and, with a seal key for the recipient, seal) one envelope; see `sealer` for when in clear."""
        sealer = self.sealer(payload, recipient, seal_to, content, clear_ok=clear_ok or refused is not None)
        header, raw = env_mod.seal(self.signer, recipient, payload, clock=self.clock, priority=priority,
                                   lifetime_s=lifetime_s or self.lifetime_s, ref_message_id=ref_message_id,
                                   sealer=sealer)
        if len(raw) > self.max_size:
            raise too_large("envelope", len(raw), self.max_size)
        if waits is not None:  # it cannot wait there past its own lifetime
            waits = outbox.Waits(waits.at, min(waits.until_ms, header.expires_ms))
        # asked of the tree here, not in the transaction that queues it (an automatic 01 is made before custody's);
        # only for a hop with no address: awaited_child names a child without one, so a hop we can reach (a
        # peer, our parent, a registered child: every 01 and most mail) is not worked out again from the codes
        awaited = bool(hop) and recipient != self.code and self.router.address(hop) is None \
            and self.router.awaited_child(recipient) == hop
        return Sealed(header, raw, hop, refused, waits, awaited, successor_of)

    def next_hop(self, recipient: str) -> str:
        """Raises LookupError when the tree has no route."""
        hop = self.router.next_hop(recipient)
        if hop is None:
            raise LookupError(f"{recipient} is this node")
        return hop

    def queue_in(self, tx: Transaction, sealed: Sealed, subject: str, *, origin: str = "local",
                 doc_id: str | None = None) -> None:
        """Queue for the next hop, or put in our own mailbox when it is for us (a notice to ourselves)."""
        now = self.clock.now_ms()
        if sealed.header.recipient == self.signer.code:
            inbox.add_in(tx, sealed.header, subject=subject, now_ms=now, envelope=sealed.raw)
        else:
            h, parked = sealed.header, None
            if sealed.awaited:  # a child not registered (yet)
                parked = outbox.Park(self.code, min(now + int(self.limits.park_for * 1000), h.expires_ms))
            outbox.enqueue_in(tx, h, sealed.raw, sealed.hop or "-", subject, now, origin=origin,
                              doc_id=doc_id, parked=parked, waits=sealed.waits,
                              by=clients.current() if origin == "local" else None)


class Refuser(Protocol):
    def refuse(self, tx: Transaction, sealed: Sealed, subject: str, doc_id: str | None) -> None:
        """Record a new envelope that cannot be delivered at all, with a notice to us."""


class Outgoing:
    def __init__(self, db: Database, maker: EnvelopeMaker, queues: Waker, refuser: Refuser, *,
                 lookup: Callable[[str], object] | None = None,
                 seal_key_of: Callable[[str], bytes] | None = None, events_: EventSink = NoEvents(),
                 successor_of: Callable[[str], str | None] | None = None) -> None:
        self.db, self.maker, self.queues, self.refuser = db, maker, queues, refuser
        # who answers now for a retired code (its successions followed, node.registry.directory), None if not retired
        self.successor_of = successor_of
        self.events = events_  # a send whose recipient has not registered yet is told to watchers at once
        self.lookup = lookup  # raises Rejected(UNKNOWN_RECIPIENT) when nobody in the tree has the code
        self.seal_key_of = seal_key_of  # a recipient's published seal key, from its signed record (a lookup)

    def post(self, payload: pb.Payload, recipients: list[str], *, priority: int = 0,
             lifetime_s: float | None = None, ref_message_id: str | Mapping[str, str] = "",
             ref_doc_id: str | None = None, within: Callable[[Transaction, Posted], Any] | None = None,
             require_registered: bool = False) -> Posted:
        """Queue one envelope per recipient in a single commit.

        `within(tx, posted)` runs inside that commit, after the envelopes are stored; what it raises
        rolls the whole send back. `require_registered`: refuse the send unless the tree confirms every
        recipient registered (instead of queueing it to wait for a registration)."""
        if not ref_message_id:  # a change to a document sent before may still go (its history); a new one not
            self._not_retiring()
        sealed = [(payload, self._prepare(payload, recipients, priority, lifetime_s, ref_message_id,
                                          require_registered))]
        return self._commit(sealed, ref_doc_id, within and (lambda tx, posted: within(tx, posted[0])))[0]

    def post_many(self, items: list[tuple[pb.Payload, list[str], int, float | None, bool]], *,
                  within: Callable[[Transaction, list[Posted]], Any] | None = None) -> list[Posted]:
        """(payload, recipients, priority, lifetime, require_registered) each; every item checked and sealed,
        then one commit. A refusal names the item (`documents[i]: ...`) and nothing is stored."""
        self._not_retiring()
        sealed = []
        for i, (payload, recipients, priority, lifetime_s, required) in enumerate(items):
            with naming(f"documents[{i}]"):
                sealed.append((payload, self._prepare(payload, recipients, priority, lifetime_s, "", required)))
        return self._commit(sealed, None, within)

    def _not_retiring(self) -> None:
        """A retiring node takes no new document to send: its agency sends from its successor now."""
        retiring = retirement.successor(self.db)
        if retiring is not None:
            raise Rejected(Reason.NODE_RETIRING, f"this node is retiring into {retiring[0]}: send new documents "
                           f"from {retiring[0]}", metadata={"successor": retiring[0]})

    def prepare_in(self, payload: pb.Payload, recipient: str, *, priority: int = 0, ref_message_id: str = "",
                   seal_to: bytes = b"", clear_ok: bool = False) -> list[Sealed]:
        """One envelope to `recipient` checked, routed, signed and sealed, with no transaction open (an automatic
        01 is made before the custody transaction, node.exchange.custody_commit); `store_in` queues it.

        No directory lookup here: the recipient is someone who just wrote to us, so the tree has a route
        back, and `seal_to` is the seal key its envelope carried (signed by it), if it was sealed."""
        self.maker.check([recipient], priority, None)
        hop, refused, _ = self._route(recipient, lookup=False)
        return [self.maker.seal(payload, recipient, hop, priority=priority, ref_message_id=ref_message_id,
                                refused=refused, seal_to=seal_to, clear_ok=clear_ok)]

    def store_in(self, tx: Transaction, payload: pb.Payload, sealed: list[Sealed]) -> Posted:
        """Queue envelopes made by `prepare_in` inside the caller's transaction; their hops are woken after it."""
        return self._store(tx, payload, sealed, None)

    # ---- steps ----------------------------------------------------------------------

    def _prepare(self, payload, recipients, priority, lifetime_s, ref_message_id,
                 require_registered: bool = False) -> list[Sealed]:
        """Checked, routed and sealed: everything that may refuse happens before the transaction."""
        self.maker.check(recipients, priority, lifetime_s)
        if payload.WhichOneof("body") == "document":
            check_document(payload.document, self.maker.limits)
        looked: dict[str, object] = {}  # recipient -> its lookup's answer or refusal: asked once per send
        addressed = self._follow(recipients, looked)
        routes = []
        for i, r in enumerate(recipients):
            if r not in addressed:
                continue  # retired, and its successor is already a recipient of this send
            with naming(f"recipients[{i}]"):
                routes.append((addressed[r], r, self._route(addressed[r], lookup=True, required=require_registered,
                                                            looked=looked)))
        content = self.maker.content(payload)  # encrypted once; each envelope wraps its key for its recipient
        made = []
        for r, asked, (hop, refused, waits) in routes:
            seal_to = self._seal_to(r) if refused is None else b""
            made.append(self.maker.seal(payload, r, hop, priority=priority, lifetime_s=lifetime_s, refused=refused,
                                        # keyed by the code asked for: a change to a retired recipient goes to its
                                        # successor about the document first sent to the retired code
                                        ref_message_id=ref_message_id.get(asked, ref_message_id.get(r, ""))
                                        if isinstance(ref_message_id, Mapping) else ref_message_id,
                                        seal_to=seal_to or b"", content=content, clear_ok=seal_to is None,
                                        waits=waits, successor_of="" if asked == r else asked))
        return made

    def _follow(self, recipients: list[str], looked: dict[str, object]) -> dict[str, str]:
        """code asked for -> code addressed: a retired agency's successor instead of it (one envelope per agency:
        two retired codes merged into one, or a retired code and its successor, make one envelope). Each
        recipient is looked up here, once (`looked` keeps the answer for _route); only an answer carrying a
        succession makes it follow the chain."""
        out: dict[str, str] = {}
        taken: set[str] = set()
        for i, r in enumerate(recipients):
            final = None
            if self.successor_of is not None and self.lookup is not None and r not in self.maker.router.peers:
                try:
                    looked[r] = entry = self.lookup(r)
                except Rejected as e:
                    looked[r] = e
                    entry = None
                if entry is not None and entry.HasField("succession"):
                    with naming(f"recipients[{i}]"):
                        final = self.successor_of(r)
            if final == self.maker.code:
                raise Rejected(Reason.INVALID_REQUEST, f"{r} is retired: this node's agency is its successor",
                               field=f"recipients[{i}]")
            addressed = final or r
            if addressed in taken:
                continue
            taken.add(addressed)
            out[r] = addressed
        return out

    def _seal_to(self, recipient: str) -> bytes | None:
        """The recipient's seal key by its signed record (b"" if it publishes none); None when the lookup
        cannot finish now: the envelope is then made in clear but kept here, and sealed before it leaves
        (node.exchange.late_seal), so a send while the tree is unreachable is taken and never leaks."""
        if not self.maker.sealing or self.seal_key_of is None:
            return b""
        try:
            return self.seal_key_of(recipient)
        except Rejected as r:
            log.info("the seal key of %s cannot be looked up now (%s): sealed at hand-over", recipient,
                     r.public_text)
            return None

    def _commit(self, sealed_items, ref_doc_id: str | None, within=None) -> list[Posted]:
        with self.db.transaction() as tx:
            posted = [self._store(tx, payload, sealed, ref_doc_id) for payload, sealed in sealed_items]
            if within is not None:
                within(tx, posted)
            return posted

    def _store(self, tx: Transaction, payload: pb.Payload, sealed: list[Sealed], ref_doc_id: str | None) -> Posted:
        now = self.maker.clock.now_ms()
        subject = subject_of(payload)
        doc = payload.document if payload.WhichOneof("body") == "document" else None
        posted = Posted(uuid.uuid4().hex, [(s.header.recipient, s.header.message_id) for s in sealed])
        documents.add_in(tx, documents.SentDocument(
            posted.doc_id, now, sealed[0].header.kind, subject, doc.document_id if doc else "",
            doc.business.business_doc_type if doc else 0, ref_doc_id))
        for s in sealed:
            if s.refused is None:
                self.maker.queue_in(tx, s, subject, doc_id=posted.doc_id)
                posted.hops.add(s.hop)
                if s.successor_of:
                    successions.addressed_to_successor_in(tx, s.header.message_id, s.successor_of)
                    posted.successor_of[s.header.message_id] = s.successor_of
                    tx.on_commit(lambda h=s.header, asked=s.successor_of, hop=s.hop: self.events.emit(
                        events.READDRESSED, message_id=h.message_id, recipient=h.recipient, successor_of=asked,
                        peer=hop, kind=h.kind, time_ms=now))
                if s.waits is not None:
                    posted.waits[s.header.message_id] = s.waits
                    self._tell_waiting(tx, s)
            else:  # nobody in the tree has this code: recorded as refused, with a notice to us
                self.refuser.refuse(tx, s, subject, posted.doc_id)
        for hop in posted.hops:
            tx.on_commit(lambda hop=hop: self.queues.wake(hop))
        return posted

    def _tell_waiting(self, tx: Transaction, s: Sealed) -> None:
        h, waits, now = s.header, s.waits, self.maker.clock.now_ms()
        seq = outbox.seq_in(tx, h.message_id)
        tx.on_commit(lambda: self.events.emit(
            events.NOT_REGISTERED_YET, message_id=h.message_id, peer=waits.at, recipient=h.recipient, kind=h.kind,
            time_ms=now, reason=Reason.NOT_REGISTERED_YET.wire, waits_until_ms=waits.until_ms, seq=seq))

    def _route(self, recipient: str, lookup: bool, required: bool = False,
               looked: Mapping[str, object] | None = None) -> tuple[str, Rejected | None, outbox.Waits | None]:
        """(next hop, None, None); (hop or "", why, None) when the tree says the recipient does not exist;
        (hop, None, where it waits) when the tree places it under a node it has not registered with yet.

        A code of no scheme the tree can place that nobody holds is a mistyped request, refused at once
        (INVALID_REQUEST). `required` (Send's require_registered): anything but a record found is refused."""
        waits = None
        if lookup and self.lookup is not None and recipient not in self.maker.router.peers:
            try:
                known = (looked or {}).get(recipient)
                if isinstance(known, Rejected):
                    raise known
                if known is None:
                    self.lookup(recipient)
            except Rejected as r:
                if r.reason is Reason.UNKNOWN_RECIPIENT and not is_qcvn(recipient):
                    raise Rejected(Reason.INVALID_REQUEST, f"recipient {recipient!r} is not a QCVN 102 agency code "
                                   "and no agency in the tree holds it", field="") from None
                if required:
                    raise _not_registered(recipient, r) from None
                if r.reason is Reason.UNKNOWN_RECIPIENT:
                    return "", r, None
                if r.reason is Reason.NOT_REGISTERED_YET:
                    waits = self._waits(r)
                # else the lookup could not finish (a hop is down): route by the tree and let relays decide
        try:
            return self.maker.next_hop(recipient), None, waits
        except LookupError as e:
            return "", Rejected(Reason.UNKNOWN_RECIPIENT, str(e)), None

    def _waits(self, r: Rejected) -> outbox.Waits | None:
        """Where the mail waits, and until when. Sealing on (the default): here, kept home until the recipient's
        record and seal key can be had (late_seal), at most our limits.park_for; a relay's "not yet" never makes
        it leave in clear. Sealing off: at the node that answered "not yet", which parks it (its park_for)."""
        if self.maker.sealing:
            return outbox.Waits(self.maker.code, self.maker.clock.now_ms() + int(self.maker.limits.park_for * 1000))
        at = r.metadata.get("waits_at", "")  # a peer's words: kept only if it is a code
        park_for_s = r.metadata.get("park_for_s", "")
        if not park_for_s.isdigit() or not 0 < int(park_for_s) <= MAX_LIFETIME_S:
            park_for_s = self.maker.limits.park_for  # an older relay: ours is the default they share
        return outbox.Waits(at if is_identifier(at) else "", self.maker.clock.now_ms() + int(float(park_for_s) * 1000))


def _not_registered(recipient: str, r: Rejected) -> Rejected:
    """require_registered: the send is refused now, saying what the tree answered."""
    if r.reason is Reason.UNKNOWN_RECIPIENT:
        return Rejected(Reason.UNKNOWN_RECIPIENT, f"no agency {recipient} is registered (require_registered)",
                        field="")
    if r.reason is Reason.NOT_REGISTERED_YET:
        at = r.metadata.get("waits_at", "")
        return Rejected(Reason.UNKNOWN_RECIPIENT, f"{recipient} has not registered"
                        + (f" with {at}" if is_identifier(at) else "") + " (require_registered)",
                        field="", metadata={"waits_at": at} if is_identifier(at) else None)
    return Rejected(Reason.UNREACHABLE, f"whether {recipient} is registered cannot be checked now "
                    f"({r.reason.wire}); retry, or send without require_registered to queue it", field="")
