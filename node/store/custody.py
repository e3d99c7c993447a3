"""Taking custody: record an accepted envelope and its receipt in one durable transaction.

A node answers "received" only after this commit returns. The `received` table is the
dedup key at every hop: a message id seen before gets the stored receipt back and is
stored nowhere a second time.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import Reason, Rejected
from ..pb import envelope_pb2 as pb
from . import audit, inbox, outbox
from .database import Database


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


def accept(
    db: Database,
    items: list[Incoming],
    make_receipts: Callable[[list[tuple[str, bytes]]], list[pb.Receipt]],
    now_ms: int,
    on_store: Callable[[object, Incoming], None] | None = None,
) -> list[pb.Receipt | Rejected]:
    """Store every new item, answer duplicates with their stored receipt; one commit for all.

    `make_receipts` signs once for every new item of the batch (see node.receipts).
    `on_store(conn, item)` runs in the same transaction for each new item of our own
    mail, so what it records (and any automatic reply it queues) commits with it."""
    results: list[pb.Receipt | Rejected | None] = [None] * len(items)
    fresh: dict[str, int] = {}  # message id -> index of its first new occurrence in this batch
    repeats: list[tuple[int, int]] = []  # (index, index of the first occurrence) within this batch
    audit_rows: list[tuple] = []
    with db.transaction() as conn:
        seen = _already_received(conn, {item.message_id for item in items})
        for i, item in enumerate(items):
            first = fresh.get(item.message_id)
            row = seen.get(item.message_id) if first is None else (items[first].digest, None)
            if row is None:
                fresh[item.message_id] = i
                continue
            if row[0] != item.digest:
                audit_rows.append((now_ms, audit.REJECTED_IN, item.message_id, item.from_peer, Reason.DUPLICATE_CONFLICT.name))
                results[i] = Rejected(Reason.DUPLICATE_CONFLICT, f"message {item.message_id} was received with other content")
                continue
            audit_rows.append((now_ms, audit.DUPLICATE, item.message_id, item.from_peer, ""))
            if first is None:
                results[i] = pb.Receipt.FromString(row[1])
            else:
                repeats.append((i, first))
        new = list(fresh.values())
        receipts = make_receipts([(items[i].message_id, items[i].digest) for i in new])
        conn.executemany(
            "INSERT INTO received (message_id, envelope_sha256, receipt, from_peer, received_ms) VALUES (?,?,?,?,?)",
            [(items[i].message_id, items[i].digest, r.SerializeToString(), items[i].from_peer, now_ms)
             for i, r in zip(new, receipts)],
        )
        for i, receipt in zip(new, receipts):
            item, h = items[i], items[i].header
            results[i] = receipt
            if item.next_hop is None:
                business = item.payload.document.business.business_doc_type if item.payload is not None \
                    and item.payload.WhichOneof("body") == "document" else 0
                inbox.add_in(conn, h, subject=item.subject, now_ms=now_ms, envelope=item.raw, business_doc_type=business)
                if on_store is not None:
                    on_store(conn, item)
            else:
                outbox.enqueue_in(conn, h, item.raw, item.next_hop, item.subject, now_ms, origin="relay")
            audit_rows.append((now_ms, audit.RECEIVED, item.message_id, item.from_peer, f"from {h.sender}"))
        audit.append_many(conn, audit_rows)
    for i, first in repeats:  # a repeat inside the batch gets the receipt of its first occurrence
        results[i] = results[first]
    return results  # type: ignore[return-value]


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


def record_rejection(db: Database, now_ms: int, message_id: str, peer: str, reason: Rejected) -> None:
    with db.transaction() as conn:
        audit.append(conn, now_ms, audit.REJECTED_IN, message_id, peer, reason.public_text)


def stored_receipt(db: Database, message_id: str) -> pb.Receipt | None:
    row = db.query_one("SELECT receipt FROM received WHERE message_id = ?", (message_id,))
    return pb.Receipt.FromString(row["receipt"]) if row else None
