"""What an evidence bundle is made of, read from a mailbox a node may be running on (read-only connection).

Envelope bytes and receipts are kept for good: outbox rows are the sent register (never deleted,
`outbox_envelope` and `outbox.receipt` with them), received envelopes stay in `inbox_envelope`
with the receipt this node signed in `received`. So a bundle can be made for any message this
node ever sent or received, however long ago it was delivered. A message taken over from a retired predecessor
(node.takeover) is found the same way, with the receipts the predecessor signed (`held`), its content key
wrapped for this node when it was sealed to the predecessor, and the succession lists this node holds, which
link the predecessor to it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..pb import envelope_pb2 as pb
from .database import open_read_only

SENT, RECEIVED = "sent", "received"


@dataclass
class Held:
    """One envelope as this node holds it, with its receipts (serialised Receipt)."""
    message_id: str
    envelope: bytes
    receipts: list[bytes] = field(default_factory=list)
    content_wrap: bytes | None = None  # held for a predecessor, sealed to it: its content key wrapped for us


@dataclass
class Found:
    role: str                 # sent (our own document) | received (addressed to us)
    document: Held
    statuses: list[Held]
    held_for: str | None = None  # taken over from this retired predecessor (node.takeover)
    succession_lists: list[bytes] = field(default_factory=list)  # every signed list held, when held_for


class Mailbox:
    def __init__(self, path: Path) -> None:
        self.conn = open_read_only(path)
        self.conn.execute("BEGIN")  # one read transaction: the bundle is the mailbox as of one commit

    def close(self) -> None:
        self.conn.close()

    def _all(self, sql: str, params=()) -> list[tuple]:
        return self.conn.execute(sql, params).fetchall()

    def candidates(self, ref: str) -> list[str]:
        """Message ids `ref` may name: itself, the envelopes of a send (doc id), or messages with that DocumentId."""
        found = [m for (m,) in self._all(
            "SELECT message_id FROM outbox WHERE message_id = ? AND origin = 'local'"
            " UNION SELECT message_id FROM inbox WHERE message_id = ?", (ref, ref))]
        if found:
            return found
        return [m for (m,) in self._all(
            "SELECT message_id FROM outbox WHERE origin = 'local' AND kind = ? AND doc_id IN"
            " (SELECT doc_id FROM docs WHERE doc_id = ? OR document_id = ?)"
            " UNION SELECT message_id FROM doc_progress WHERE document_id = ?",
            (pb.DOCUMENT, ref, ref, ref))]

    def _received(self, message_id: str) -> list[bytes]:
        return [r for (r,) in self._all("SELECT receipt FROM received WHERE message_id = ? UNION ALL"
                                        " SELECT receipt FROM held WHERE message_id = ? AND receipt IS NOT NULL",
                                        (message_id, message_id))]

    def _wrap(self, message_id: str) -> bytes | None:
        row = self._all("SELECT content_wrap FROM held WHERE message_id = ?", (message_id,))
        return row[0][0] if row else None

    def _held(self, found: Found) -> Found:
        """The wraps of a predecessor's envelopes, and what links it to us, when the message is held for one."""
        row = self._all("SELECT held_for, content_wrap FROM held WHERE message_id = ?", (found.document.message_id,))
        for h in found.statuses:
            h.content_wrap = self._wrap(h.message_id)
        if row:
            found.held_for, found.document.content_wrap = row[0]
            found.succession_lists = [s for (s,) in self._all("SELECT signed FROM succession_lists ORDER BY issuer")]
        return found

    def find(self, message_id: str) -> Found | None:
        sent = self._all("SELECT e.raw, o.receipt FROM outbox o JOIN outbox_envelope e USING (message_id)"
                         " WHERE o.message_id = ? AND o.origin = 'local'", (message_id,))
        if sent:
            raw, receipt = sent[0]
            doc = Held(message_id, raw, [receipt] if receipt else [])
            statuses = [Held(m, r, self._received(m)) for m, r in self._all(
                "SELECT i.message_id, e.raw FROM inbox i JOIN inbox_envelope e USING (message_id)"
                " WHERE i.ref_message_id = ? AND i.kind = ? ORDER BY i.seq", (message_id, pb.STATUS))]
            return self._held(Found(SENT, doc, statuses))
        got = self._all("SELECT raw FROM inbox_envelope WHERE message_id = ?", (message_id,))
        if got:
            doc = Held(message_id, got[0][0], self._received(message_id))
            statuses = [Held(m, r, [rc] if rc else []) for m, r, rc in self._all(
                "SELECT o.message_id, e.raw, o.receipt FROM outbox o JOIN outbox_envelope e USING (message_id)"
                " WHERE o.ref_message_id = ? AND o.kind = ? AND o.origin = 'local' ORDER BY o.seq",
                (message_id, pb.STATUS))]
            return self._held(Found(RECEIVED, doc, statuses))
        return None
