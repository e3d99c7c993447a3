"""Children registered with this node, and odd codes learned from their heartbeats."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .database import Database, in_chunks, open_read_only


@dataclass(frozen=True)
class Child:
    code: str
    name: str
    level: int
    endpoint: str
    record: bytes
    signature: bytes
    registered_ms: int
    last_seen_ms: int
    previous_cert: bytes | None = None  # the certificate this registration renewed (node.registry.pins)


def upsert(db: Database, child: Child, *, durable: bool = False) -> None:
    """durable=False: a lost write is repaired by the child's next registration (a certificate that
    changed is written durably: node.registry.pins holds the child's mail to it)."""
    with db.transaction(durable=durable) as conn:
        conn.execute(
            "INSERT INTO registry (code, name, level, endpoint, record, signature, registered_ms, last_seen_ms,"
            " previous_cert) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(code) DO UPDATE SET name = excluded.name,"
            " level = excluded.level, endpoint = excluded.endpoint, record = excluded.record,"
            " signature = excluded.signature, registered_ms = excluded.registered_ms,"
            " last_seen_ms = excluded.last_seen_ms, previous_cert = excluded.previous_cert",
            (child.code, child.name, child.level, child.endpoint, child.record, child.signature,
             child.registered_ms, child.last_seen_ms, child.previous_cert),
        )


def touch(db: Database, code: str, now_ms: int, odd_codes: dict[str, str]) -> dict[str, str] | None:
    """Record a heartbeat and the odd codes it vouches for (replacing what it vouched for before).

    None if the code is not registered here; else the odd codes it vouched for before (a claim
    withdrawn or added changes routing at once)."""
    with db.transaction(durable=False) as conn:  # repaired by the next heartbeat
        cur = conn.execute("UPDATE registry SET last_seen_ms = ? WHERE code = ?", (now_ms, code))
        if cur.rowcount == 0:
            return None
        before = dict(conn.execute("SELECT code, parent FROM odd_codes WHERE via = ?", (code,)).fetchall())
        if before != odd_codes:
            conn.execute("DELETE FROM odd_codes WHERE via = ?", (code,))
            conn.executemany("INSERT INTO odd_codes (code, parent, via) VALUES (?,?,?)",
                             [(c, p, code) for c, p in odd_codes.items()])
        return before


def odd_code_holders(db: Database, codes: list[str]) -> dict[str, str]:
    """odd code -> the child whose heartbeat vouches for it, for `codes` only (a heartbeat asks about what it
    claims, not the whole table: a thousand odd children made each heartbeat read a thousand rows)."""
    out: dict[str, str] = {}
    for part, marks in in_chunks(codes):  # a heartbeat may claim limits.odd_codes_per_heartbeat
        out.update({r["code"]: r["via"] for r in db.query(
            f"SELECT code, via FROM odd_codes WHERE code IN ({marks})", tuple(part))})
    return out


def get(db: Database, code: str) -> Child | None:
    row = db.query_one("SELECT * FROM registry WHERE code = ?", (code,))
    return Child(**row) if row else None


def children(db: Database) -> list[Child]:
    return [Child(**r) for r in db.query("SELECT * FROM registry ORDER BY code")]


def child_codes(db: Database) -> list[str]:
    return [r["code"] for r in db.query("SELECT code FROM registry ORDER BY code")]


def odd_codes(db: Database) -> dict[str, str]:
    return {r["code"]: r["parent"] for r in db.query("SELECT code, parent FROM odd_codes")}


def count_in_file(mailbox: Path) -> int:
    """How many children the mailbox at `mailbox` holds, read from outside the node that owns it (a harness
    watching a running process, read-only); 0 while it cannot be read yet."""
    try:
        con = open_read_only(mailbox, timeout=1)
    except sqlite3.Error:
        return 0
    try:
        return con.execute("SELECT count(*) FROM registry").fetchone()[0]
    except sqlite3.Error:
        return 0
    finally:
        con.close()
