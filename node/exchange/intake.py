"""Accept envelopes from a peer: verify every byte, take custody durably, answer with signed receipts.

Mail for a code the code rule places below us, whose child on the route has not registered (a
relay restored into an empty registry, a commune not set up yet, or a made-up code), is taken
and "parked": queued for that child, sent when it registers. A node cannot tell these cases
apart, so parking is bounded: per origin, the agency that signed the envelope
(`limits.parked_per_origin`, `parked_bytes_per_origin`; beyond it PARK_FULL, transient, so the peer
keeps the envelope and retries it alone) and in time (`limits.park_for`, then a non-delivery notice,
node.exchange.dispatcher). An insider parking mail for invented codes fills only its own quota, not
that of the relays that carried it (counted per relay, one stranger's junk blocked a province's mail).

What a batch makes us verify is bounded before any signature is checked: its relay marks all
together (`limits.marks_per_batch`, OVER_LIMIT) and the peer's signature budget (SIGNATURE_BUDGET)."""
from __future__ import annotations

import contextlib
import logging
import threading
import time

from .. import envelope as env_mod
from .. import events, logs
from .. import receipts
from ..clock import Clock
from ..envelope import Signer
from ..errors import Reason, Rejected
from ..identity.trust import TrustStore
from ..pb import envelope_pb2 as pb
from ..store import custody, inbox, outbox
from ..incidents import log_incident
from ..limits import Limits, SignatureBudget, over
from ..store.database import Database
from . import custody_commit
from .outgoing import subject_of
from ..events import EventSink, NoEvents
from ..metrics import NO_METRICS, Recorder
from .protocols import NO_PINS, PLAIN_MAIL, CertificatePins, LocalMail, Waker
from .routing import Router

log = logging.getLogger(__name__)


class Intake:
    def __init__(self, db: Database, signer: Signer, trust: TrustStore, router: Router, clock: Clock,
                 max_size: int, *, queues: Waker, local_mail: LocalMail = PLAIN_MAIL,
                 events_: EventSink = NoEvents(), limits: Limits = Limits(), metrics: Recorder = NO_METRICS,
                 opener: env_mod.Opener | None = None, pins: CertificatePins = NO_PINS,
                 signatures: SignatureBudget | None = None) -> None:
        self.metrics = metrics
        self.pins = pins  # a registered child hands over and marks only with the certificate it registered
        self.signatures = signatures or SignatureBudget(limits, clock.now)
        self.opener = opener  # our seal key: payloads sealed to us are opened here, before the lifecycle checks
        self.db, self.signer, self.trust, self.router = db, signer, trust, router
        self.clock, self.max_size, self.limits = clock, max_size, limits
        self.queues, self.local_mail, self.events = queues, local_mail, events_
        self._parking = threading.Lock()  # quota counted and custody committed as one step for parked mail

    def receive(self, raws: list[bytes], peer: str | None,
                peer_cert: bytes | None = None) -> list[pb.Receipt | Rejected]:
        """One outcome per envelope, in order; all accepted ones committed together.

        Each envelope is checked alone, everything its handlers will read included, before
        the custody transaction; one that fails is refused with its reason and the rest of
        the batch is stored. Nothing a peer sends escapes as an exception. A node that is not
        our parent, a registered child or a configured peer is refused as a whole
        (NOT_A_NEIGHBOUR) before anything is read; so is a registered child connecting with another
        certificate than the one it registered (`peer_cert`, CERT_NOT_REGISTERED)."""
        if peer is not None and not self.router.is_neighbour(peer):
            raise Rejected(Reason.NOT_A_NEIGHBOUR, f"{peer} is not a parent, child or configured peer of this node")
        if peer is not None and peer_cert is not None:
            self.pins.check(peer, peer_cert, "the hand-over")
        if len(raws) > self.limits.envelopes_per_batch:
            raise over("envelopes in one batch", len(raws), self.limits.envelopes_per_batch, "envelopes")
        started = time.perf_counter()
        parsed = [_parsed(raw) for raw in raws]  # parsed once: counted here, verified from it in _check
        marks = sum(len(env.trace) for env in parsed if env is not None)
        if marks > self.limits.marks_per_batch:  # refused whole, unread: no signature checked, no row recorded
            raise over("relay marks in one batch", marks, self.limits.marks_per_batch, "envelopes")
        self.signatures.charge(peer, len(raws) + marks, "envelopes and relay marks")
        results: list[pb.Receipt | Rejected | None] = [None] * len(raws)
        accepted: list[tuple[int, custody.Incoming]] = []
        refused: list[tuple[str, Rejected]] = []
        for i, raw in enumerate(raws):
            try:
                accepted.append((i, self._check(raw, parsed[i], peer)))
            except Rejected as r:
                results[i] = r
                refused.append((_message_id(raw), r))
            except Exception:
                results[i] = r = _incident(f"checking an envelope from {peer}", "checked")
                refused.append((_message_id(raw), r))
        checked = time.perf_counter()
        accepted = self._prepare_own(accepted, results, refused, peer)
        prepared = time.perf_counter()
        parking = any(item.parked for _, item in accepted)
        with self._parking if parking else _NO_LOCK:
            if parking:
                accepted = self._within_quota(accepted, results, refused)
            if refused:
                log.info("refused %d of %d envelopes from %s, first: %s", len(refused), len(raws), peer,
                         refused[0][1].public_text, extra=logs.fields(agency=peer, message_id=refused[0][0],
                                                                      reason=refused[0][1].reason))
                custody.record_rejections(self.db, self.clock.now_ms(), peer or "", refused)
            stored = custody_commit.take(
                self.db, [item for _, item in accepted],
                lambda pairs: receipts.issue(self.signer, pairs, self.clock),
                self.clock.now_ms(),
                authorize=self.local_mail.authorize,
            ) if accepted else []
        self.metrics.stages("in", {"check": checked - started, "prepare": prepared - checked,
                                   "custody": time.perf_counter() - prepared})
        if accepted:
            hops: set[str] = set()
            now = self.clock.now_ms()
            for (i, _), outcome in zip(accepted, stored):
                results[i] = outcome
            self._count(results)  # before the events: a watcher that saw one reads metrics that count it
            arrived = [item for item, outcome in zip((it for _, it in accepted), stored)
                       if isinstance(outcome, pb.Receipt) and item.next_hop is None]
            seqs = inbox.seqs_of(self.db, [it.header.message_id for it in arrived]) \
                if arrived and self.events.wants(events.ARRIVED) else {}  # ListInbox's seq: resume after it
            for (i, item), outcome in zip(accepted, stored):
                if not isinstance(outcome, pb.Receipt):
                    continue
                if item.next_hop is not None:
                    hops.add(item.next_hop)
                else:
                    h = item.header
                    code = item.payload.status.status_code if item.payload.WhichOneof("body") == "status" else ""
                    self.events.emit(events.ARRIVED, message_id=h.message_id, peer=h.sender, recipient=h.recipient,
                                     kind=h.kind, time_ms=now, ref_message_id=h.ref_message_id, status_code=code,
                                     seq=seqs.get(h.message_id, 0))
            for hop in hops:
                self.queues.wake(hop)
        else:
            self._count(results)
        return results  # type: ignore[return-value]

    def _within_quota(self, accepted: list[tuple[int, custody.Incoming]], results: list,
                      refused: list[tuple[str, Rejected]]) -> list[tuple[int, custody.Incoming]]:
        """The accepted items, less the parked ones over their origin's quota (refused PARK_FULL, kept by the peer).
        A retry of an envelope parked before is answered with its receipt, not counted again."""
        lim = self.limits
        seen = custody.received_ids(self.db, [item.message_id for _, item in accepted if item.parked])
        usage: dict[str, list[int]] = {}
        kept = []
        for i, item in accepted:
            if item.parked is None or item.message_id in seen:
                kept.append((i, item))
                continue
            origin = item.parked.peer
            used = usage.setdefault(origin, list(outbox.parked_usage(self.db, origin)))
            if used[0] + 1 > lim.parked_per_origin or used[1] + len(item.raw) > lim.parked_bytes_per_origin:
                results[i] = r = Rejected(
                    Reason.PARK_FULL, f"{origin} already has {used[0]} envelopes ({used[1]} bytes) waiting at "
                    f"{self.signer.code} for agencies not registered yet (limits.parked_per_origin "
                    f"{lim.parked_per_origin}, parked_bytes_per_origin {lim.parked_bytes_per_origin})",
                    metadata={"limit": str(lim.parked_per_origin)})
                refused.append((item.message_id, r))
                continue
            used[0] += 1
            used[1] += len(item.raw)
            seen.add(item.message_id)  # a second copy in this batch is a repeat, answered like the first
            kept.append((i, item))
        return kept

    def _count(self, results: list) -> None:
        self.metrics.received(len(results), [r.reason.name for r in results if isinstance(r, Rejected)])

    def _pinned_marks(self, v: env_mod.Verified) -> None:
        """Every mark by a child registered here (its signature as sender, its relay mark) is made with
        the certificate it registered: another one the CA issued for its code is not the agency."""
        self.pins.check(v.header.sender, v.envelope.sender_cert, "the sender's signature")
        for i, entry in enumerate(v.envelope.trace):
            self.pins.check(v.path[i + 1][0], entry.cert_der, f"relay mark trace[{i}]")

    def _check(self, raw: bytes, parsed: pb.Envelope | None, peer: str | None) -> custody.Incoming:
        v = env_mod.verify(raw, self.trust, max_size=self.max_size, clock=self.clock,
                           max_trace=self.limits.trace_length, opener=self.opener, parsed=parsed)
        h = v.header
        self._pinned_marks(v)
        if peer is not None and v.path[-1][0] != peer:
            raise Rejected(Reason.PEER_MISMATCH, f"connection is from {peer}, last trace entry is {v.path[-1][0]}")
        tree = self.router.chains()  # one view of the tree for the three questions, each chain looked up once
        if not self.router.serves(h.recipient, h.sender, tree):
            raise Rejected(Reason.NOT_FOR_THIS_NODE, f"{self.signer.code} does not serve {h.recipient}")
        if peer is not None and not self.router.passes_from(peer, h.sender, h.recipient, tree):
            raise Rejected(Reason.OFF_ROUTE, f"{h.sender} → {h.recipient} does not pass from {peer} to this node")
        successor = self.router.retired(h.recipient, h.sender) if h.kind == pb.DOCUMENT else None
        if successor:
            raise Rejected(Reason.RECIPIENT_RETIRED, f"{h.recipient} is retired: its successor is {successor}",
                           metadata={"successor": successor})
        parked = None
        try:
            route = self.router.route(h.recipient, tree)
        except LookupError as e:
            awaited = self.router.awaited_child(h.recipient)
            if awaited is None:
                raise Rejected(Reason.UNKNOWN_RECIPIENT, str(e)) from None
            route = (awaited, None)  # custody now; queued until the child registers (within a quota and park_for)
            # counted against the origin (the signed sender), not the relay that carried it
            parked = outbox.Park(h.sender, min(self.clock.now_ms() + int(self.limits.park_for * 1000), h.expires_ms))
        next_hop = route[0] if route else None
        payload = None
        if next_hop is None:
            try:
                payload = v.payload()  # opened here when sealed to us: BAD_SEAL / NOT_SEALED_FOR_ME if not
                self.local_mail.check(h, payload)
            except Rejected as r:
                raise _without_content(r) if v.sealed else r from None
            subject = subject_of(payload)
        else:
            # relays never open a payload (they have no key for it): they check the signature and the
            # digest of the sealed bytes (env_mod.verify) and hand on a copy with their own trace entry.
            # They do not judge Header.seal either: a scheme newer than this relay must still pass it,
            # and whatever does not open is refused by the recipient (BAD_SEAL) on the sender's signature
            raw = env_mod.append_trace(v.raw, v.envelope, self.signer, self.clock)
            subject = ""
        return custody.Incoming(h.message_id, v.digest, raw, h, peer or v.path[-1][0], subject, next_hop,
                                payload=payload, path=v.path, parked=parked,
                                envelope=v.envelope if next_hop is None else None)

    def _prepare_own(self, accepted: list[tuple[int, custody.Incoming]], results: list,
                     refused: list[tuple[str, Rejected]], peer: str | None) -> list[tuple[int, custody.Incoming]]:
        """What storing each envelope of ours records, its automatic 01 signed and sealed: here, before the
        custody transaction takes the writer. Not for an id received before (read off the writer; `received`
        rows are never deleted, so custody's dedup will answer it with its stored receipt): a retried batch
        is not made to sign and seal its 01s again. One whose 01 cannot be made is refused alone."""
        own = [item.message_id for _, item in accepted if item.next_hop is None]
        if not own:
            return accepted
        known = custody.received_ids(self.db, own)
        kept = []
        for i, item in accepted:
            # once per id: a later copy in this batch is settled by custody against the first (its outcome, or
            # DUPLICATE_CONFLICT) and never stored, so a batch of one envelope repeated signs one 01, not one each
            if item.next_hop is None and item.message_id not in known:
                try:
                    item.writes = self.local_mail.prepare(item)
                    known.add(item.message_id)
                except Rejected as r:
                    results[i] = r
                    refused.append((item.message_id, r))
                    continue
                except Exception:
                    results[i] = r = _incident(f"preparing {item.message_id} from {peer}", "taken")
                    refused.append((item.message_id, r))
                    continue
            kept.append((i, item))
        return kept


_NO_LOCK = contextlib.nullcontext()


def _incident(what: str, step: str) -> Rejected:
    """One envelope's unexpected failure (called while handling it): logged under a correlation id, which is
    all the peer learns of it; the rest of the batch goes on."""
    correlation_id = log_incident(what)
    return Rejected(Reason.INTERNAL, f"could not be {step} (correlation id {correlation_id})")


def _without_content(r: Rejected) -> Rejected:
    """A refusal of a sealed payload, as it may travel: the previous hop is a relay, which stores the
    refusal and puts it in the sender's non-delivery notice, so a detail that might quote the opened
    content (a status code, a name over a limit) is replaced by the reason's public message. Our own
    seal refusals name no content and keep their detail."""
    if r.reason in (Reason.BAD_SEAL, Reason.NOT_SEALED_FOR_ME):
        return r
    return Rejected(r.reason, r.reason.public_message, field=r.field, metadata=r.metadata)


def _parsed(raw: bytes) -> pb.Envelope | None:
    """The envelope parsed without checking anything, to count its relay marks before any signature and
    to be verified from (None if it does not parse: verify parses it again and refuses it MALFORMED)."""
    try:
        return pb.Envelope.FromString(raw)
    except Exception:
        return None


def _message_id(raw: bytes) -> str:
    try:
        return pb.Header.FromString(pb.Envelope.FromString(raw).header).message_id
    except Exception:
        return ""
