"""Custody's rows: an accepted envelope, its receipt, and the dedup that answers a repeat.

A node answers "received" only after the commit holding these rows returns
(node.exchange.custody_commit runs that transaction). The `received` table is the
dedup key at every hop: a message id seen before gets the stored receipt back and is
stored nowhere a second time. These functions only read and write rows they are handed:
receipts and automatic replies are made (signed, sealed) before the transaction.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..errors import Reason, Rejected
from ..pb import envelope_pb2 as pb
from . import audit, inbox, outbox
from .database import Database, Transaction, in_chunks


@dataclass
class Incoming:
    message_id: str
    digest: bytes
    raw: bytes
    header: pb.Header
    from_peer: str
    subject: str
    next_hop: str | None  # None: for this node's own mailbox; else relay onwards
    payload: pb.Payload | None = None  # parsed, for our own mail
    path: list | None = None           # verified (code, time_ms) hops, for our own mail
    parked: outbox.Park | None = None  # relayed to a child that has not registered yet (node.exchange.intake)
    envelope: pb.Envelope | None = None  # `raw` as intake parsed and verified it, for our own mail (read, not parsed again)
    # what the documents layer records about our own mail, made before the transaction (its automatic 01
    # signed and sealed already): each called with the transaction, in this envelope's savepoint
    writes: tuple[Callable[[Transaction], object], ...] = ()
    # a status or change from the successor of the document's retired counterpart: that counterpart, as checked
    # against a succession before the transaction (node.documents.successors)
    answering_for: str = ""


@dataclass
class Settled:
    """A batch's duplicates settled against what is stored, inside the custody transaction."""

    outcomes: list  # per item: a stored receipt, a refusal, or None (still standing)
    fresh: list[int]  # indexes of the first occurrence of every id new here, in batch order
    repeats: list[tuple[int, int]]  # (index, index of its first occurrence) within the batch
    audit_rows: list[tuple] = field(default_factory=list)

    def refuse(self, items: list[Incoming], i: int, why: Rejected, now_ms: int) -> None:
        self.outcomes[i] = why
        self.audit_rows.append((now_ms, audit.REJECTED_IN, items[i].message_id, items[i].from_peer, why.public_text))

    def results(self) -> list:
        for i, first in self.repeats:  # a repeat inside the batch gets the outcome of its first occurrence
            self.outcomes[i] = self.outcomes[first]
        return self.outcomes


def settle(tx: Transaction, items: list[Incoming], now_ms: int) -> Settled:
    """Duplicates first: an id received before with the same digest gets its stored receipt back, with
    other content (or naming a message of ours) DUPLICATE_CONFLICT; a repeat inside the batch gets the
    outcome of its first occurrence. What stands is `fresh`."""
    done = Settled([None] * len(items), [], [])
    fresh: dict[str, int] = {}  # message id -> index of its first new occurrence in this batch
    ids = {item.message_id for item in items}
    seen = _already_received(tx, ids)
    taken = _used_elsewhere(tx, ids - set(seen))
    for i, item in enumerate(items):
        first = fresh.get(item.message_id)
        row = seen.get(item.message_id) if first is None else (items[first].digest, None)
        if row is None:
            if item.message_id in taken:
                done.refuse(items, i, Rejected(Reason.DUPLICATE_CONFLICT, f"message id {item.message_id} is in use here"),
                            now_ms)
                continue
            fresh[item.message_id] = i
            continue
        if row[0] != item.digest:
            done.refuse(items, i, Rejected(Reason.DUPLICATE_CONFLICT,
                                           f"message {item.message_id} was received with other content"), now_ms)
            continue
        done.audit_rows.append((now_ms, audit.DUPLICATE, item.message_id, item.from_peer, ""))
        if first is None:
            done.outcomes[i] = pb.Receipt.FromString(row[1])
        else:
            done.repeats.append((i, first))
    done.fresh = list(fresh.values())
    return done


def store(tx: Transaction, item: Incoming, receipt: pb.Receipt, now_ms: int) -> None:
    """The envelope's rows: its `received` row (with the receipt made for it) and its mailbox or outbox entry.
    What the documents layer records about it (`item.writes`) is written by the caller in the same savepoint."""
    h = item.header
    tx.execute("INSERT INTO received (message_id, envelope_sha256, receipt, from_peer, received_ms) VALUES (?,?,?,?,?)",
               (item.message_id, item.digest, receipt.SerializeToString(), item.from_peer, now_ms))
    if item.next_hop is None:
        business = item.payload.document.business.business_doc_type if item.payload is not None \
            and item.payload.WhichOneof("body") == "document" else 0
        inbox.add_in(tx, h, subject=item.subject, now_ms=now_ms, envelope=item.raw, business_doc_type=business)
    else:
        outbox.enqueue_in(tx, h, item.raw, item.next_hop, item.subject, now_ms, origin="relay", parked=item.parked)


def replace_receipt(tx: Transaction, message_id: str, receipt: pb.Receipt) -> None:
    """The receipt of an envelope stored in this transaction, signed again over the batch as it stood."""
    tx.execute("UPDATE received SET receipt = ? WHERE message_id = ?", (receipt.SerializeToString(), message_id))


def received_row(item: Incoming, now_ms: int) -> tuple:
    """The audit row of an envelope stored."""
    kind = "" if item.header.kind == pb.DOCUMENT else f"{outbox.KIND_WORDS.get(item.header.kind, 'envelope')} "
    return (now_ms, audit.RECEIVED, item.message_id, item.from_peer,
            f"{kind}from {item.header.sender} sha256 {item.digest.hex()}")


def _used_elsewhere(tx: Transaction, message_ids: set[str]) -> set[str]:
    """Ids not received before but already naming a message here (one we sent, or made for ourselves):
    storing them would collide, so such an envelope is refused instead of failing the batch."""
    found: set[str] = set()
    for chunk, marks in in_chunks(list(message_ids)):
        found.update(m for (m,) in tx.execute(
            f"SELECT message_id FROM outbox WHERE message_id IN ({marks})"
            f" UNION SELECT message_id FROM inbox WHERE message_id IN ({marks})", chunk + chunk))
    return found


def _already_received(conn, message_ids: set[str]) -> dict[str, tuple[bytes, bytes]]:
    """message id -> (envelope digest, stored receipt) for the ids taken into custody before."""
    found: dict[str, tuple[bytes, bytes]] = {}
    for chunk, marks in in_chunks(list(message_ids)):
        found.update((m, (d, r)) for m, d, r in conn.execute(
            f"SELECT message_id, envelope_sha256, receipt FROM received WHERE message_id IN ({marks})", chunk))
    return found


def record_rejections(db: Database, now_ms: int, peer: str, refused: list[tuple[str, Rejected]]) -> None:
    """Envelopes refused before custody, in one bookkeeping commit (a batch of bad envelopes costs one write)."""
    with db.transaction(durable=False) as tx:
        audit.append_many(tx, [(now_ms, audit.REJECTED_IN, m, peer, r.public_text) for m, r in refused])


def received_ids(db: Database, message_ids: list[str]) -> set[str]:
    """Which of these ids were taken into custody before (a retry of one is answered, not counted again)."""
    found: set[str] = set()
    for chunk, marks in in_chunks(message_ids):
        found.update(r["message_id"] for r in db.query(
            f"SELECT message_id FROM received WHERE message_id IN ({marks})", chunk))
    return found


def stored_receipt(db: Database, message_id: str) -> pb.Receipt | None:
    row = db.query_one("SELECT receipt FROM received WHERE message_id = ?", (message_id,))
    return pb.Receipt.FromString(row["receipt"]) if row else None
