"""A retired predecessor's mailbox taken over by its successor (node/takeover.py does the checks).

`Predecessor` reads a copy of the predecessor's mailbox (from its signed backup) on a read-only
connection of its own that trusts nothing in the file's schema (`trusted_schema` off: no view or
trigger in it can call a function). Only the predecessor's own history is read: its inbox
(documents, statuses, notices addressed to it, with the receipts it signed) and its own sends
(`origin = 'local'` outbox rows, their `docs`, the statuses returned on them, the statuses it
reported); mail it relayed for others is not its history and is left out.

`import_in` writes them into this node's mailbox inside the caller's transaction, marked with the
predecessor's code (`held_for`): a row whose message id (doc id) is here already is left as it is,
so a second takeover of the same backup (or of a later one) adds only what is new, and writes
nothing at all when nothing is.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from . import audit
from .database import Database, open_read_only

INBOX = ("message_id", "sender", "kind", "priority", "subject", "received_ms", "acked_ms", "ref_message_id",
         "business_doc_type")
OUTBOX = ("message_id", "sender", "recipient", "next_hop", "kind", "priority", "subject", "origin", "state",
          "attempts", "created_ms", "expires_ms", "delivered_ms", "reason", "receipt", "doc_id", "ref_message_id",
          "waits_at", "waits_until_ms", "successor_of", "followed_by")
DOCS = ("doc_id", "created_ms", "kind", "subject", "document_id", "business_doc_type", "ref_doc_id")
PROGRESS = ("message_id", "sender", "status", "pending_request", "state", "changed_by", "document_id",
            "state_before", "changed_by_before")
STATUS_IN = ("status_message_id", "doc_message_id", "recipient", "status_code", "issued_ms", "status", "received_ms")
STATUS_OUT = ("doc_message_id", "status_code", "status_message_id", "issued_ms")
REQUIRED = {"inbox", "inbox_envelope", "received", "outbox", "outbox_envelope", "docs", "doc_progress",
            "status_in", "status_out"}


class NotAMailbox(Exception):
    """The copy is not a lienthong mailbox this version can read (a table missing, not a database)."""


@dataclass(frozen=True)
class Size:
    """What a predecessor's mailbox holds, counted before anything of it is read into memory."""
    inbox: int            # rows of its inbox (documents, statuses, notices addressed to it)
    sent: int             # envelopes it sent itself (documents, statuses, changes)
    largest: int          # bytes of its largest envelope
    pending: int          # envelopes still waiting to leave it (its own and relayed): it is not drained


@dataclass(frozen=True)
class Envelope:
    """One envelope of the predecessor's history, as the import's check sees it."""
    role: str             # "received" (its inbox) or "sent" (its own outbox)
    message_id: str
    raw: bytes


@dataclass(frozen=True)
class Imported:
    inbox: int            # inbox rows new here
    sent: int             # sent envelopes new here
    resealed: int         # of them, sealed to the predecessor, their content key wrapped for our seal key
    already: int          # rows of the backup that were here already (a second takeover)


class Predecessor:
    def __init__(self, path: Path) -> None:
        try:
            self.conn = open_read_only(path, timeout=5)
            self.conn.execute("PRAGMA trusted_schema = OFF")
            tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as e:
            raise NotAMailbox(f"not a mailbox ({e})") from None
        if REQUIRED - tables:
            self.conn.close()
            raise NotAMailbox(f"no {sorted(REQUIRED - tables)[0]} table in it")
        self._columns = {t: {r[1] for r in self.conn.execute(f'PRAGMA table_info("{t}")')} for t in REQUIRED}

    def close(self) -> None:
        self.conn.close()

    def _select(self, table: str, columns: tuple[str, ...], alias: str) -> str:
        """The columns, each NULL when this copy's (older) schema has none such."""
        have = self._columns[table]
        return ", ".join(f"{alias}.{c}" if c in have else f"NULL AS {c}" for c in columns)

    def size(self) -> Size:
        one = self.conn.execute
        return Size(
            inbox=one("SELECT count(*) FROM inbox").fetchone()[0],
            sent=one("SELECT count(*) FROM outbox WHERE origin = 'local'").fetchone()[0],
            largest=max(one("SELECT coalesce(max(length(raw)), 0) FROM inbox_envelope").fetchone()[0],
                        one("SELECT coalesce(max(length(raw)), 0) FROM outbox_envelope WHERE message_id IN"
                            " (SELECT message_id FROM outbox WHERE origin = 'local')").fetchone()[0]),
            pending=one("SELECT count(*) FROM outbox WHERE state = 'pending'").fetchone()[0])

    def received(self) -> Iterator[tuple[dict, bytes, bytes | None]]:
        """(inbox row, envelope, the receipt it signed or None), oldest first."""
        cur = self.conn.execute(
            f"SELECT {self._select('inbox', INBOX, 'i')}, e.raw, r.receipt FROM inbox i"
            " JOIN inbox_envelope e ON e.message_id = i.message_id"
            " LEFT JOIN received r ON r.message_id = i.message_id ORDER BY i.seq")
        for row in cur:
            yield dict(zip(INBOX, row[:len(INBOX)])), row[len(INBOX)], row[len(INBOX) + 1]

    def sent(self) -> Iterator[tuple[dict, bytes]]:
        """(outbox row of its own, envelope), oldest first."""
        cur = self.conn.execute(
            f"SELECT {self._select('outbox', OUTBOX, 'o')}, e.raw FROM outbox o"
            " JOIN outbox_envelope e ON e.message_id = o.message_id WHERE o.origin = 'local' ORDER BY o.seq")
        for row in cur:
            yield dict(zip(OUTBOX, row[:len(OUTBOX)])), row[len(OUTBOX)]

    def envelopes(self) -> Iterator[Envelope]:
        """Every envelope `received` and `sent` yield, in the same order, without their rows."""
        for row, raw, _ in self.received():
            yield Envelope("received", row["message_id"], raw)
        for row, raw in self.sent():
            yield Envelope("sent", row["message_id"], raw)

    def rows(self, table: str, columns: tuple[str, ...], order: str) -> Iterator[dict]:
        for row in self.conn.execute(f"SELECT {self._select(table, columns, 't')} FROM {table} t ORDER BY {order}"):
            yield dict(zip(columns, row))


def _insert(conn, table: str, row: dict) -> bool:
    """INSERT OR IGNORE one row; True when it is new here."""
    cols = list(row)
    return conn.execute(f"INSERT OR IGNORE INTO {table} ({', '.join(cols)}) VALUES ({','.join('?' * len(cols))})",
                        [row[c] for c in cols]).rowcount == 1


def import_in(conn, predecessor: str, source: Predecessor, check: Callable[[Envelope], bytes | None],
              now_ms: int, backup: str) -> Imported:
    """Copy the predecessor's history into this mailbox, in the caller's transaction, every row marked
    `held_for` = `predecessor`. `check` is called on every envelope before it is written: it raises (and the
    caller's transaction rolls back: nothing is kept) or returns the content key wrapped for our seal key
    (None: plain, or not ours to open); node.takeover checks them all before and hands the wraps in here. `backup`
    names the source in the audit row."""
    inbox = sent = resealed = already = 0
    # what was imported here now: the rows beside the envelopes (documents sent, progress, statuses) are kept only
    # for those, so a backup cannot put rows about this node's own mail, or about nothing, into its mailbox
    received_ids: set[str] = set()
    sent_ids: set[str] = set()
    doc_ids: set[str] = set()
    for row, raw, receipt in source.received():
        wrap = check(Envelope("received", row["message_id"], raw))
        if not _insert(conn, "inbox", {**row, "held_for": predecessor}):
            already += 1
            continue
        received_ids.add(row["message_id"])
        conn.execute("INSERT OR IGNORE INTO inbox_envelope (message_id, raw) VALUES (?,?)", (row["message_id"], raw))
        conn.execute("INSERT OR IGNORE INTO held (message_id, held_for, receipt, content_wrap) VALUES (?,?,?,?)",
                     (row["message_id"], predecessor, receipt, wrap))
        inbox, resealed = inbox + 1, resealed + (wrap is not None)
    for row, raw in source.sent():
        wrap = check(Envelope("sent", row["message_id"], raw))
        if not _insert(conn, "outbox", {**row, "held_for": predecessor}):
            already += 1
            continue
        sent_ids.add(row["message_id"])
        if row["doc_id"]:
            doc_ids.add(row["doc_id"])
        conn.execute("INSERT OR IGNORE INTO outbox_envelope (message_id, raw) VALUES (?,?)",
                     (row["message_id"], raw))
        conn.execute("INSERT OR IGNORE INTO held (message_id, held_for, receipt, content_wrap) VALUES (?,?,?,?)",
                     (row["message_id"], predecessor, None, wrap))
        sent, resealed = sent + 1, resealed + (wrap is not None)
    if not (inbox or sent):
        return Imported(0, 0, 0, already)
    for row in source.rows("docs", DOCS, "created_ms"):
        if row["doc_id"] in doc_ids:
            _insert(conn, "docs", {**row, "held_for": predecessor})
    for row in source.rows("doc_progress", PROGRESS, "message_id"):
        if row["message_id"] in received_ids:
            _insert(conn, "doc_progress", row)
    for row in source.rows("status_in", STATUS_IN, "seq"):  # returned on a document it sent
        if row["doc_message_id"] in sent_ids:
            _insert(conn, "status_in", {**row, "held_for": predecessor})
    for row in source.rows("status_out", STATUS_OUT, "seq"):  # it returned on a document it received
        if row["doc_message_id"] in received_ids:
            _insert(conn, "status_out", {**row, "held_for": predecessor})
    conn.execute("INSERT INTO takeovers (predecessor, backup_sha256, taken_ms, inbox, sent, resealed)"
                 " VALUES (?,?,?,?,?,?)", (predecessor, backup, now_ms, inbox, sent, resealed))
    audit.append(conn, now_ms, audit.TAKEOVER, "", predecessor,
                 f"took over {inbox} received and {sent} sent envelopes of {predecessor} ({resealed} resealed for our "
                 f"seal key) from backup sha256 {backup}")
    return Imported(inbox, sent, resealed, already)


@dataclass(frozen=True)
class Takeover:
    predecessor: str
    backup_sha256: str
    taken_ms: int
    inbox: int
    sent: int
    resealed: int


def takeovers(db: Database) -> list[Takeover]:
    """Every takeover done here, oldest first."""
    return [Takeover(**r) for r in db.query("SELECT predecessor, backup_sha256, taken_ms, inbox, sent, resealed"
                                            " FROM takeovers ORDER BY seq")]


def counts(db: Database) -> dict[str, dict[str, int]]:
    """predecessor -> {"inbox": n, "sent": n}: envelopes taken over from it, over every takeover."""
    return {r["predecessor"]: {"inbox": r["inbox"], "sent": r["sent"]} for r in db.query(
        "SELECT predecessor, sum(inbox) AS inbox, sum(sent) AS sent FROM takeovers GROUP BY predecessor")}


def held_receipt(db: Database, message_id: str) -> bytes | None:
    """The receipt the predecessor signed for a message of its inbox we hold for it."""
    row = db.query_one("SELECT receipt FROM held WHERE message_id = ?", (message_id,))
    return row["receipt"] if row else None


def content_wrap(db: Database, message_id: str) -> bytes | None:
    """The content key of a held envelope sealed to the predecessor, wrapped for our seal key (None: none)."""
    row = db.query_one("SELECT content_wrap FROM held WHERE message_id = ?", (message_id,))
    return row["content_wrap"] if row else None


def held_for(db: Database, message_id: str) -> str | None:
    row = db.query_one("SELECT held_for FROM held WHERE message_id = ?", (message_id,))
    return row["held_for"] if row else None
