"""Taking custody: record an accepted envelope and its receipt in one durable transaction.

A node answers "received" only after this commit returns. The `received` table is the
dedup key at every hop: a message id seen before gets the stored receipt back and is
stored nowhere a second time.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

from ..errors import Reason, Rejected
from ..pb import envelope_pb2 as pb
from ..incidents import log_incident
from . import audit, inbox, outbox
from .database import Database, Transaction


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


def accept(
    db: Database,
    items: list[Incoming],
    make_receipts: Callable[[list[tuple[str, bytes]]], list[pb.Receipt]],
    now_ms: int,
    authorize: Callable[[Incoming, Mapping[str, str]], None] | None = None,
    on_store: Callable[[Transaction, Incoming], None] | None = None,
) -> list[pb.Receipt | Rejected]:
    """Store every new item, answer duplicates with their stored receipt; one commit for all.

    Every item gets its own outcome. Duplicates are settled first; then, for our own
    mail, `authorize(item, earlier)` decides against what is stored and the new
    documents ahead in this batch (`earlier`: message id -> sender), so a decoy reusing
    a stored message id cannot vouch for a forged revoke. `make_receipts` signs once for
    every item still standing (see node.receipts). Each item is stored in a savepoint
    with `on_store(tx, item)` (what it records, and any automatic reply it queues, commit
    with it); an item that fails there is rolled back and refused alone: with the reason
    `on_store` raised (a Rejected), else INTERNAL."""
    results: list[pb.Receipt | Rejected | None] = [None] * len(items)
    fresh: dict[str, int] = {}  # message id -> index of its first new occurrence in this batch
    repeats: list[tuple[int, int]] = []  # (index, index of the first occurrence) within this batch
    audit_rows: list[tuple] = []

    def refuse(i: int, why: Rejected) -> None:
        results[i] = why
        audit_rows.append((now_ms, audit.REJECTED_IN, items[i].message_id, items[i].from_peer, why.public_text))

    with db.transaction() as tx:
        ids = {item.message_id for item in items}
        seen = _already_received(tx, ids)
        taken = _used_elsewhere(tx, ids - set(seen))
        for i, item in enumerate(items):
            first = fresh.get(item.message_id)
            row = seen.get(item.message_id) if first is None else (items[first].digest, None)
            if row is None:
                if item.message_id in taken:
                    refuse(i, Rejected(Reason.DUPLICATE_CONFLICT, f"message id {item.message_id} is in use here"))
                    continue
                fresh[item.message_id] = i
                continue
            if row[0] != item.digest:
                refuse(i, Rejected(Reason.DUPLICATE_CONFLICT, f"message {item.message_id} was received with other content"))
                continue
            audit_rows.append((now_ms, audit.DUPLICATE, item.message_id, item.from_peer, ""))
            if first is None:
                results[i] = pb.Receipt.FromString(row[1])
            else:
                repeats.append((i, first))
        new: list[int] = []
        earlier: dict[str, str] = {}  # new documents of ours ahead in this batch
        for i in fresh.values():
            item = items[i]
            if item.next_hop is None and authorize is not None:
                try:
                    authorize(item, earlier)
                except Rejected as r:
                    refuse(i, r)
                    continue
                if item.header.kind == pb.DOCUMENT:
                    earlier[item.message_id] = item.header.sender
            new.append(i)
        receipts = make_receipts([(items[i].message_id, items[i].digest) for i in new])
        for i, receipt in zip(new, receipts):
            item = items[i]
            try:
                with db.transaction():  # a savepoint: this item alone is undone if it fails
                    _store(tx, item, receipt, now_ms, on_store)
            except Rejected as r:  # refused while stored (its automatic reply cannot be made): a refusal, not a bug
                refuse(i, r)
                continue
            except Exception:
                correlation_id = log_incident(f"storing {item.message_id} from {item.from_peer}")
                refuse(i, Rejected(Reason.INTERNAL, f"could not be stored (correlation id {correlation_id})"))
                continue
            results[i] = receipt
            kind = "" if item.header.kind == pb.DOCUMENT else f"{outbox.KIND_WORDS.get(item.header.kind, 'envelope')} "
            audit_rows.append((now_ms, audit.RECEIVED, item.message_id, item.from_peer,
                               f"{kind}from {item.header.sender} sha256 {item.digest.hex()}"))
        audit.append_many(tx, audit_rows)
    for i, first in repeats:  # a repeat inside the batch gets the outcome of its first occurrence
        results[i] = results[first]
    return results  # type: ignore[return-value]


def _store(tx: Transaction, item: Incoming, receipt: pb.Receipt, now_ms: int,
           on_store: Callable[[Transaction, Incoming], None] | None) -> None:
    h = item.header
    tx.execute("INSERT INTO received (message_id, envelope_sha256, receipt, from_peer, received_ms) VALUES (?,?,?,?,?)",
               (item.message_id, item.digest, receipt.SerializeToString(), item.from_peer, now_ms))
    if item.next_hop is None:
        business = item.payload.document.business.business_doc_type if item.payload is not None \
            and item.payload.WhichOneof("body") == "document" else 0
        inbox.add_in(tx, h, subject=item.subject, now_ms=now_ms, envelope=item.raw, business_doc_type=business)
        if on_store is not None:
            on_store(tx, item)
    else:
        outbox.enqueue_in(tx, h, item.raw, item.next_hop, item.subject, now_ms, origin="relay", parked=item.parked)


def _used_elsewhere(tx: Transaction, message_ids: set[str]) -> set[str]:
    """Ids not received before but already naming a message here (one we sent, or made for ourselves):
    storing them would collide, so such an envelope is refused instead of failing the batch."""
    ids = list(message_ids)
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        found.update(m for (m,) in tx.execute(
            f"SELECT message_id FROM outbox WHERE message_id IN ({marks})"
            f" UNION SELECT message_id FROM inbox WHERE message_id IN ({marks})", chunk + chunk))
    return found


def _already_received(conn, message_ids: set[str]) -> dict[str, tuple[bytes, bytes]]:
    """message id -> (envelope digest, stored receipt) for the ids taken into custody before."""
    ids = list(message_ids)
    found: dict[str, tuple[bytes, bytes]] = {}
    for start in range(0, len(ids), 500):  # well under SQLite's limit on bound parameters
        chunk = ids[start:start + 500]
        found.update((m, (d, r)) for m, d, r in conn.execute(
            f"SELECT message_id, envelope_sha256, receipt FROM received WHERE message_id IN ({','.join('?' * len(chunk))})",
            chunk))
    return found


def record_rejections(db: Database, now_ms: int, peer: str, refused: list[tuple[str, Rejected]]) -> None:
    """Envelopes refused before custody, in one bookkeeping commit (a batch of bad envelopes costs one write)."""
    with db.transaction(durable=False) as tx:
        audit.append_many(tx, [(now_ms, audit.REJECTED_IN, m, peer, r.public_text) for m, r in refused])


def received_ids(db: Database, message_ids: list[str]) -> set[str]:
    """Which of these ids were taken into custody before (a retry of one is answered, not counted again)."""
    found: set[str] = set()
    for start in range(0, len(message_ids), 500):
        chunk = message_ids[start:start + 500]
        found.update(r["message_id"] for r in db.query(
            f"SELECT message_id FROM received WHERE message_id IN ({','.join('?' * len(chunk))})", chunk))
    return found


def stored_receipt(db: Database, message_id: str) -> pb.Receipt | None:
    row = db.query_one("SELECT receipt FROM received WHERE message_id = ?", (message_id,))
    return pb.Receipt.FromString(row["receipt"]) if row else None
