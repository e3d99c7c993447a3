"""When messages passed one node, read from its mailbox without touching the node (a read-only
connection of its own; WAL lets a running node go on): what `scripts/bench-cluster` breaks a relayed
document's time down by, hop by hop."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .database import in_chunks, open_read_only


@dataclass(frozen=True)
class Passage:
    message_id: str
    custody_receipt: bytes | None  # the receipt this node signed when it took custody (None: it made the message)
    created_ms: int | None         # in its outbox: the envelope's creation (the sender's custody)
    delivered_ms: int | None       # in its outbox: stamped with the time of the attempt that handed it over
    next_receipt: bytes | None     # in its outbox: that receipt
    envelope: bytes | None         # in its mailbox (the recipient): the envelope as stored, with every relay mark


def read(mailbox: Path, message_ids: list[str]) -> dict[str, Passage]:
    conn = open_read_only(mailbox)
    try:
        out: dict[str, Passage] = {}
        for chunk, marks in in_chunks(message_ids):
            received = dict(conn.execute(f"SELECT message_id, receipt FROM received WHERE message_id IN ({marks})",
                                         chunk).fetchall())
            sent = {m: (c, d, r) for m, c, d, r in conn.execute(
                f"SELECT message_id, created_ms, delivered_ms, receipt FROM outbox WHERE message_id IN ({marks})",
                chunk)}
            kept = dict(conn.execute(f"SELECT message_id, raw FROM inbox_envelope WHERE message_id IN ({marks})",
                                     chunk).fetchall())
            for m in chunk:
                c, d, r = sent.get(m, (None, None, None))
                out[m] = Passage(m, received.get(m), c, d, r, kept.get(m))
        return out
    finally:
        conn.close()
