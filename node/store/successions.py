"""Succession lists held (one per issuer) and the re-addressing of our own mail to a successor."""
from __future__ import annotations

from dataclasses import dataclass

from ..pb import envelope_pb2 as pb
from . import audit
from .database import Database


def lists(db: Database) -> list[tuple[str, int, bytes]]:
    """(issuer, number, signed list bytes) of every list held."""
    return [(r["issuer"], r["number"], r["signed"])
            for r in db.query("SELECT issuer, number, signed FROM succession_lists ORDER BY issuer")]


def put(db: Database, issuer: str, number: int, signed: bytes, now_ms: int) -> None:
    """Durable: a restart must never go back to an older list (a retired code would take mail again)."""
    with db.transaction() as conn:
        conn.execute("INSERT INTO succession_lists (issuer, number, signed, taken_ms) VALUES (?,?,?,?)"
                     " ON CONFLICT(issuer) DO UPDATE SET number = excluded.number, signed = excluded.signed,"
                     " taken_ms = excluded.taken_ms", (issuer, number, signed, now_ms))


@dataclass(frozen=True)
class Queued:
    """An envelope of ours still waiting here, addressed to a code now retired."""
    message_id: str
    recipient: str
    envelope: bytes


def own_queued_for(db: Database, codes: list[str], limit: int = 1000) -> list[Queued]:
    """Our own documents not handed over yet (pending, parked or kept home) addressed to one of `codes`."""
    if not codes:
        return []
    marks = ",".join("?" * len(codes))
    return [Queued(r["message_id"], r["recipient"], r["raw"]) for r in db.query(
        "SELECT o.message_id, o.recipient, e.raw FROM outbox o JOIN outbox_envelope e USING (message_id)"
        f" WHERE o.origin = 'local' AND o.state = 'pending' AND o.kind = ? AND o.recipient IN ({marks})"
        " ORDER BY o.seq LIMIT ?", (pb.DOCUMENT, *codes, limit))]


@dataclass(frozen=True)
class Readdressed:
    message_id: str
    asked: str          # the retired code it was addressed to
    successor: str
    next_hop: str
    envelope: bytes     # made again for the successor, same message id


def readdress_in(conn, moved: list[Readdressed], now_ms: int) -> int:
    """Re-address envelopes of ours in one transaction (the caller's); those no longer pending are left alone.
    Returns how many moved. Waiting for a registration or parked here no longer applies: the successor is
    another agency, asked for afresh at hand-over (node.exchange.late_seal)."""
    n = 0
    for m in moved:
        cur = conn.execute(
            "UPDATE outbox SET recipient = ?, next_hop = ?, successor_of = COALESCE(successor_of, ?),"
            " waits_at = NULL, waits_until_ms = NULL, parked_by = NULL, park_until_ms = NULL, not_before_ms = NULL"
            " WHERE message_id = ? AND state = 'pending' AND recipient = ?",
            (m.successor, m.next_hop, m.asked, m.message_id, m.asked))
        if cur.rowcount:
            conn.execute("UPDATE outbox_envelope SET raw = ? WHERE message_id = ?", (m.envelope, m.message_id))
            audit.append(conn, now_ms, audit.SENT, m.message_id, m.next_hop,
                         f"re-addressed from {m.asked} to its successor {m.successor}")
            n += 1
    return n


def addressed_to_successor_in(conn, message_id: str, asked: str) -> None:
    """A new envelope of ours addressed to the successor of the code `asked` for (Track shows both)."""
    conn.execute("UPDATE outbox SET successor_of = ? WHERE message_id = ?", (asked, message_id))


def own_waiting_recipients(db: Database, limit: int) -> list[str]:
    """Recipients our pending envelopes wait for (kept home or parked for a registration), oldest first."""
    return [r["recipient"] for r in db.query(
        "SELECT recipient, min(seq) AS first FROM outbox WHERE origin = 'local' AND state = 'pending'"
        " AND waits_at IS NOT NULL GROUP BY recipient ORDER BY first LIMIT ?", (limit,))]


@dataclass(frozen=True)
class Refused:
    """A document of ours a relay refused because its recipient is retired, not sent to a successor yet."""
    message_id: str
    recipient: str
    doc_id: str | None
    subject: str
    envelope: bytes


RETIRED_NOTICE = "not delivered: RECIPIENT_RETIRED"  # the subject a non-delivery notice of that reason is stored with


def refused_as_retired(db: Database, limit: int) -> list[Refused]:
    """Our documents whose non-delivery notice says their recipient is retired, not yet followed (not a predecessor's
    we hold since a takeover: its history, not ours to send again)."""
    return [Refused(r["message_id"], r["recipient"], r["doc_id"], r["subject"], r["raw"]) for r in db.query(
        "SELECT o.message_id, o.recipient, o.doc_id, o.subject, e.raw FROM inbox n"
        " JOIN outbox o ON o.message_id = n.ref_message_id JOIN outbox_envelope e ON e.message_id = o.message_id"
        " WHERE n.kind = ? AND n.subject = ? AND o.origin = 'local' AND o.kind = ? AND o.followed_by IS NULL"
        " AND o.held_for IS NULL"
        " ORDER BY n.seq LIMIT ?", (pb.NOTICE, RETIRED_NOTICE, pb.DOCUMENT, limit))]


def followed_in(conn, message_id: str, by: str) -> bool:
    """Mark a refused document of ours as sent again to the successor (`by`); False if it was already."""
    return conn.execute("UPDATE outbox SET followed_by = ? WHERE message_id = ? AND followed_by IS NULL",
                        (by, message_id)).rowcount == 1


def relayed_queued_for(db: Database, codes: list[str], limit: int = 1000) -> list[tuple[str, "object"]]:
    """Documents relayed through us, still queued here (parked included), for one of `codes`: (next hop, Pending)."""
    from .outbox import Pending  # the outbox's own row type: what the dispatcher's give_up takes
    if not codes:
        return []
    marks = ",".join("?" * len(codes))
    return [(r["next_hop"], Pending(r["seq"], r["message_id"], r["sender"], r["recipient"], r["kind"], r["priority"],
                                    r["expires_ms"], r["raw"], r["ref_message_id"] or "")) for r in db.query(
        "SELECT o.seq, o.message_id, o.sender, o.recipient, o.kind, o.priority, o.expires_ms, o.ref_message_id,"
        " o.next_hop, e.raw FROM outbox o JOIN outbox_envelope e USING (message_id)"
        f" WHERE o.origin != 'local' AND o.state = 'pending' AND o.kind = ? AND o.recipient IN ({marks})"
        " ORDER BY o.seq LIMIT ?", (pb.DOCUMENT, *codes, limit))]
