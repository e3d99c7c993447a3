"""Envelopes waiting for (or past) hand-over to a next hop.

States: pending → delivered (on a valid receipt) | rejected (permanent refusal) |
expired (past its lifetime). Rows are never deleted: they are the sent register.
"""
from __future__ import annotations

from dataclasses import dataclass
from hashlib import sha256

from ..pb import envelope_pb2 as pb
from . import audit
from .database import Database
from .quiet import no_pending_mail

PENDING, DELIVERED, REJECTED, EXPIRED = "pending", "delivered", "rejected", "expired"
# not stored: how a pending or delivered envelope of ours reads while its recipient has not registered (Waits)
NOT_REGISTERED_YET = "not_registered_yet"
_NOTICE = int(pb.NOTICE)
# the state a client sees: NOT_REGISTERED_YET until the recipient's node answers (a status) or a relay gives up
# (a non-delivery notice about it in our mailbox)
SEND_STATE_SQL = (
    "(CASE WHEN outbox.waits_at IS NOT NULL AND outbox.state IN ('pending', 'delivered')"
    " AND NOT EXISTS (SELECT 1 FROM status_in s0 WHERE s0.doc_message_id = outbox.message_id)"
    f" AND NOT EXISTS (SELECT 1 FROM inbox n0 WHERE n0.ref_message_id = outbox.message_id AND n0.kind = {_NOTICE})"
    f" THEN '{NOT_REGISTERED_YET}' ELSE outbox.state END)")
KIND_WORDS = {pb.STATUS: "status", pb.NOTICE: "notice"}  # an audit row says what it is about when not a document


@dataclass(frozen=True)
class Pending:
    seq: int
    message_id: str
    sender: str
    recipient: str
    kind: int
    priority: int
    expires_ms: int
    envelope: bytes
    ref_message_id: str = ""
    created_ms: int = 0
    attempts: int = 0


@dataclass(frozen=True)
class Waits:
    """An envelope of ours for an agency not registered yet: the node that keeps it meanwhile, and until when."""
    at: str
    until_ms: int


def enqueue_in(conn, header: pb.Header, envelope: bytes, next_hop: str, subject: str, now_ms: int,
               origin: str = "local", doc_id: str | None = None, parked: "Park | None" = None,
               waits: Waits | None = None, by: str | None = None) -> None:
    """`by`: the local API client that asked for it, named in the audit row."""
    conn.execute(
        "INSERT INTO outbox (message_id, sender, recipient, next_hop, kind, priority, subject, origin,"
        " created_ms, expires_ms, doc_id, ref_message_id, parked_by, park_until_ms, waits_at, waits_until_ms)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (header.message_id, header.sender, header.recipient, next_hop, header.kind, header.priority,
         subject, origin, header.created_ms, header.expires_ms, doc_id, header.ref_message_id,
         parked.peer if parked else None, parked.until_ms if parked else None,
         waits.at if waits else None, waits.until_ms if waits else None),
    )
    conn.execute("INSERT INTO outbox_envelope (message_id, raw) VALUES (?,?)", (header.message_id, envelope))
    kind = "" if header.kind == pb.DOCUMENT else f"{KIND_WORDS.get(header.kind, 'envelope')} "
    audit.append(conn, now_ms, audit.SENT, header.message_id, next_hop,
                 f"{kind}to {header.recipient}" + (f" by client {by}" if by else ""))


@dataclass(frozen=True)
class Park:
    """Relayed mail for a node that has not registered yet: whose quota it counts against (its origin, the
    envelope's signed sender; stored as `parked_by`), and how long it may wait."""
    peer: str
    until_ms: int


# parked rows still waiting for a node that has no endpoint here (one that registered no longer counts)
_STILL_PARKED = ("parked_by = ? AND state = 'pending' AND next_hop NOT IN"
                 " (SELECT code FROM registry WHERE endpoint != '')")


def parked_usage(db: Database, peer: str) -> tuple[int, int]:
    """(envelopes, bytes) parked for `peer` (an origin) that still wait for a node to register (its quota)."""
    r = db.query_one("SELECT count(*) AS n, coalesce(sum(length(raw)), 0) AS size"
                     " FROM outbox JOIN outbox_envelope USING (message_id) WHERE " + _STILL_PARKED, (peer,))
    return r["n"], r["size"]


def park_ended(db: Database, now_ms: int, limit: int = 500) -> list[dict]:
    """Parked envelopes whose wait is over, each with whether its next hop has registered since."""
    if no_pending_mail(db):
        return []
    return db.query(
        "SELECT seq, message_id, sender, recipient, next_hop, kind, priority, expires_ms, ref_message_id,"
        " park_until_ms, created_ms, EXISTS (SELECT 1 FROM registry r WHERE r.code = outbox.next_hop"
        " AND r.endpoint != '') AS registered FROM outbox"
        " WHERE parked_by IS NOT NULL AND state = 'pending' AND park_until_ms < ? LIMIT ?", (now_ms, limit))


def unpark(conn, message_ids: list[str]) -> None:
    """Its node registered: an ordinary queued envelope from now on (kept until its own expiry)."""
    conn.executemany("UPDATE outbox SET parked_by = NULL, park_until_ms = NULL WHERE message_id = ?",
                     [(m,) for m in message_ids])


def next_batch(db: Database, next_hop: str, limit: int, max_bytes: int, skip: set[str] = frozenset(),
               now_ms: int | None = None) -> list[Pending]:
    """Most urgent first, then oldest; at least one envelope, at most `max_bytes` together.

    `skip`: ids already on the wire (another worker's batch); `now_ms`: leave out those deferred past it."""
    skipping = f" AND message_id NOT IN ({','.join('?' * len(skip))})" if skip else ""
    rows = db.query(
        "SELECT seq, message_id, sender, recipient, kind, priority, expires_ms, raw AS envelope, ref_message_id,"
        " created_ms, attempts"
        " FROM outbox JOIN outbox_envelope USING (message_id)"
        f" WHERE next_hop = ? AND state = 'pending' AND held = 0{skipping}"
        " AND (not_before_ms IS NULL OR not_before_ms <= ?) AND (retry_after_ms IS NULL OR retry_after_ms <= ?)"
        " ORDER BY priority DESC, seq LIMIT ?",
        (next_hop, *skip, *[now_ms if now_ms is not None else 2**62] * 2, limit),
    )
    batch, size = [], 0
    for r in rows:
        size += len(r["envelope"])
        if batch and size > max_bytes:
            break
        batch.append(Pending(**r))
    return batch


def pending_at_least(db: Database, next_hop: str, n: int) -> bool:
    """Whether `next_hop` has `n` or more envelopes waiting (counts no further: backlogs can be long)."""
    return db.query_one("SELECT count(*) AS n FROM (SELECT 1 FROM outbox WHERE next_hop = ? AND state = 'pending'"
                        " LIMIT ?)", (next_hop, n))["n"] >= n


def mark_delivered(conn, delivered: list[tuple[str, pb.Receipt]], peer: str, now_ms: int) -> None:
    """(message id, receipt) pairs the next hop took custody of, in one statement each."""
    stored = [(m, r.SerializeToString()) for m, r in delivered]  # encoded once, for the row and its audit line
    conn.executemany(
        "UPDATE outbox SET state = 'delivered', delivered_ms = ?, receipt = ?, attempts = attempts + 1,"
        " reason = NULL WHERE message_id = ? AND state = 'pending'",
        [(now_ms, raw, m) for m, raw in stored],
    )
    # the row names the receipt it was handed over on (its SHA-256): the chain then vouches for that receipt
    audit.append_many(conn, [(now_ms, audit.DELIVERED, m, peer, f"receipt sha256 {sha256(raw).hexdigest()}")
                             for m, raw in stored])


def mark_final(conn, message_id: str, peer: str, state: str, reason: str, now_ms: int) -> bool:
    """Settle a pending envelope for good; False (and nothing written) if it is no longer pending: the
    caller read it before another transaction delivered or settled it, and must tell nobody of a failure."""
    settled = conn.execute(
        "UPDATE outbox SET state = ?, reason = ?, attempts = attempts + 1 WHERE message_id = ? AND state = 'pending'",
        (state, reason, message_id),
    ).rowcount > 0
    if settled:
        audit.append(conn, now_ms, audit.REJECTED_OUT if state == REJECTED else audit.EXPIRED, message_id, peer, reason)
    return settled


def replace_envelopes(conn, envelopes: list[tuple[str, bytes]]) -> None:
    """A pending envelope of ours made again (sealed at hand-over: node.exchange.late_seal); same message id."""
    conn.executemany("UPDATE outbox_envelope SET raw = ? WHERE message_id = ?", [(raw, m) for m, raw in envelopes])


def defer(conn, message_ids: list[str], until_ms: int, error: str) -> None:
    """Not claimed before `until_ms` (an envelope waiting for its recipient's seal key: late_seal)."""
    conn.executemany(
        "UPDATE outbox SET attempts = attempts + 1, reason = ?, not_before_ms = ? WHERE message_id = ?"
        " AND state = 'pending'", [(error, until_ms, m) for m in message_ids])


def undefer(conn, next_hop: str) -> int:
    """Deferred envelopes for `next_hop` may go at once (the link came back: their lookups may pass now)."""
    return conn.execute("UPDATE outbox SET not_before_ms = NULL WHERE next_hop = ? AND state = 'pending'"
                        " AND not_before_ms IS NOT NULL", (next_hop,)).rowcount


def hold_back(conn, until: list[tuple[str, int]], error: str) -> None:
    """Envelopes a next hop refused for now on their own account (PARK_FULL): not claimed before their time.
    Kept apart from `defer`: `undefer` (the link came back) does not touch them."""
    conn.executemany(
        "UPDATE outbox SET attempts = attempts + 1, reason = ?, retry_after_ms = ? WHERE message_id = ?"
        " AND state = 'pending'", [(error, when, m) for m, when in until])


def release_held_back(conn, next_hop: str) -> int:
    """Envelopes held back for `next_hop` (`hold_back`) may go at once: an operator's retry."""
    return conn.execute("UPDATE outbox SET retry_after_ms = NULL WHERE next_hop = ? AND state = 'pending'"
                        " AND retry_after_ms IS NOT NULL", (next_hop,)).rowcount


def note_attempt(conn, message_ids: list[str], error: str) -> None:
    conn.executemany(
        "UPDATE outbox SET attempts = attempts + 1, reason = ? WHERE message_id = ? AND state = 'pending'",
        [(error, m) for m in message_ids],
    )


def expired_pending(db: Database, now_ms: int, limit: int = 500) -> list[dict]:
    if no_pending_mail(db):
        return []
    return db.query(
        "SELECT message_id, sender, recipient, next_hop, kind, priority FROM outbox"
        " WHERE state = 'pending' AND expires_ms < ? LIMIT ?",
        (now_ms, limit),
    )


def hops_with_pending(db: Database) -> list[str]:
    if no_pending_mail(db):
        return []
    return [r["next_hop"] for r in db.query("SELECT DISTINCT next_hop FROM outbox WHERE state = 'pending'")]


def list_sent(db: Database, *, after_seq: int = 0, limit: int = 100, state: str = "", origin: str = "local") -> list[dict]:
    latest = ("(SELECT {} FROM status_in s WHERE s.doc_message_id = outbox.message_id"
              " ORDER BY s.issued_ms DESC, s.status_code DESC, s.seq DESC LIMIT 1)")
    sql = (f"SELECT seq, message_id, recipient, next_hop, kind, {SEND_STATE_SQL} AS state, attempts, created_ms,"
           f" delivered_ms, reason, receipt, subject, {latest.format('status_code')} AS latest_status,"
           f" {latest.format('issued_ms')} AS latest_status_ms, waits_at, waits_until_ms, held_for"
           " FROM outbox WHERE seq > ? AND origin = ?")
    params: list = [after_seq, origin]
    if state:
        sql += f" AND {SEND_STATE_SQL} = ?"
        params.append(state)
    return db.query(sql + " ORDER BY seq LIMIT ?", (*params, limit))


@dataclass(frozen=True)
class HandedOver:
    """Where one envelope of ours went: who sent it, to whom, and the hop it was queued for."""
    sender: str
    recipient: str
    next_hop: str
    kind: int


def handed_over(db: Database, message_id: str) -> HandedOver | None:
    row = db.query_one("SELECT sender, recipient, next_hop, kind FROM outbox WHERE message_id = ?", (message_id,))
    return HandedOver(row["sender"], row["recipient"], row["next_hop"], row["kind"]) if row else None


def seq_in(conn, message_id: str) -> int:
    """The entry's seq (what ListSent pages by), inside a transaction; 0 if there is none."""
    row = conn.execute("SELECT seq FROM outbox WHERE message_id = ?", (message_id,)).fetchone()
    return row[0] if row else 0


def get(db: Database, message_id: str) -> dict | None:
    return db.query_one("SELECT outbox.*, raw AS envelope FROM outbox JOIN outbox_envelope USING (message_id)"
                        " WHERE message_id = ?", (message_id,))


@dataclass(frozen=True)
class DocEnvelope:
    """One recipient's envelope of a send, as Track shows it."""
    message_id: str
    recipient: str
    state: str
    delivered_ms: int | None
    reason: str | None
    waits_at: str | None = None
    waits_until_ms: int | None = None
    successor_of: str | None = None  # the retired code it was first addressed to (node.exchange.follow)


def of_doc(db: Database, doc_id: str) -> list[DocEnvelope]:
    """The envelopes of one of our sends, in the order they were queued."""
    return [DocEnvelope(**r) for r in db.query(
        f"SELECT message_id, recipient, {SEND_STATE_SQL} AS state, delivered_ms, reason, waits_at, waits_until_ms,"
        " successor_of FROM outbox WHERE doc_id = ? AND origin = 'local' ORDER BY seq", (doc_id,))]


def envelope(db: Database, message_id: str) -> bytes | None:
    row = db.query_one("SELECT raw FROM outbox_envelope WHERE message_id = ?", (message_id,))
    return row["raw"] if row else None


def recipient_of_document(db: Database, message_id: str) -> str | None:
    """Who a document envelope of ours was addressed to (None: not one of our documents)."""
    row = db.query_one("SELECT recipient FROM outbox WHERE message_id = ? AND origin = 'local' AND kind = ?",
                       (message_id, pb.DOCUMENT))
    return row["recipient"] if row else None


def counts(db: Database) -> dict[str, int]:
    return {r["state"]: r["n"] for r in db.query("SELECT state, count(*) AS n FROM outbox GROUP BY state")}


def queue_summary(db: Database) -> dict[str, dict]:
    """Per next hop with mail waiting: its depth, how many of them are parked (for an agency not registered
    here yet), how many of ours are kept home (until their recipient's seal key can be had: node.exchange.
    late_seal), and when the oldest envelope was made."""
    return {r["next_hop"]: r for r in db.query(
        "SELECT next_hop, count(*) AS depth, count(parked_by) AS parked, count(not_before_ms) AS kept_home,"
        " min(created_ms) AS oldest_ms FROM outbox"
        " WHERE state = 'pending' GROUP BY next_hop ORDER BY next_hop")}


# ---- one message at a time (the Admin API's queue tools) ------------------------------------

_QUEUED = ("SELECT o.seq, o.message_id, o.sender, o.recipient, o.next_hop, o.kind, length(e.raw) AS size,"
           " o.created_ms, o.attempts, coalesce(o.reason, '') AS last_error, o.held,"
           " coalesce(p.held, 0) AS hop_held, o.parked_by IS NOT NULL AS parked,"
           " coalesce(o.park_until_ms, 0) AS park_until_ms, o.origin, o.expires_ms,"
           " coalesce(o.not_before_ms, 0) AS not_before_ms, o.state"
           " FROM outbox o JOIN outbox_envelope e USING (message_id) LEFT JOIN peer_state p ON p.code = o.next_hop")


def queued(db: Database, *, hop: str = "", parked: bool = False, after_seq: int = 0, limit: int = 100) -> list[dict]:
    """Envelopes waiting here (own, relayed, parked), in queue order, from after `after_seq`."""
    sql, params = _QUEUED + " WHERE o.state = 'pending' AND o.seq > ?", [after_seq]
    if hop:
        sql += " AND o.next_hop = ?"
        params.append(hop)
    if parked:
        sql += " AND o.parked_by IS NOT NULL"
    return db.query(sql + " ORDER BY o.seq LIMIT ?", (*params, limit))


def queued_one(db: Database, message_id: str) -> dict | None:
    """One envelope of the outbox as the queue tools show it (whatever its state), or None."""
    return db.query_one(_QUEUED + " WHERE o.message_id = ?", (message_id,))


def set_held(conn, message_id: str, held: bool) -> bool:
    """Hold or release one pending envelope; False when it is not pending."""
    return conn.execute("UPDATE outbox SET held = ? WHERE message_id = ? AND state = 'pending'",
                        (int(held), message_id)).rowcount > 0


def due_now(conn, message_id: str) -> None:
    """One pending envelope may go at the next attempt (its own wait forgotten, a held-back one's too)."""
    conn.execute("UPDATE outbox SET not_before_ms = NULL, retry_after_ms = NULL WHERE message_id = ?"
                 " AND state = 'pending'", (message_id,))
