"""Delivery counters: this agency's own, computed from the mailbox tables, and those its
children reported for their subtrees on their heartbeats (table `subtree_stats`).

Own counters are aggregate queries over the tables the exchange fills (see
`node.stats` for what each counter means); nothing is counted in Python row by row.
"""
from __future__ import annotations

import contextlib
import sqlite3
import weakref
from typing import Iterator

from ..pb import envelope_pb2 as pb
from ..pb import stats_pb2 as spb
from .database import Database, open_read_only

DOCUMENT = pb.DOCUMENT

# What this agency did: a predecessor's history it took over (rows `held_for` that predecessor, node.takeover)
# stays counted under the predecessor's own code, as its node reported it, so it is left out here; the held
# rows are counted on partial indexes (none without a takeover) and subtracted, so the totals keep their indexes.
_TOTALS = """
SELECT
  (SELECT count(*) FROM docs WHERE kind = :doc)
    - (SELECT count(*) FROM docs WHERE held_for IS NOT NULL AND kind = :doc)                       AS docs_sent,
  (SELECT count(*) FROM outbox WHERE origin = 'local' AND kind = :doc)
    - (SELECT count(*) FROM outbox WHERE held_for IS NOT NULL AND origin = 'local' AND kind = :doc) AS envelopes_sent,
  (SELECT count(*) FROM inbox WHERE kind = :doc)
    - (SELECT count(*) FROM inbox WHERE held_for IS NOT NULL AND kind = :doc)                      AS docs_received,
  (SELECT count(*) FROM status_out)
    - (SELECT count(*) FROM status_out WHERE held_for IS NOT NULL)                                 AS statuses_sent,
  (SELECT count(*) FROM status_in)
    - (SELECT count(*) FROM status_in WHERE held_for IS NOT NULL)                                  AS statuses_received
"""

# Distinct codes by skipping through the status_code index: one probe per distinct code (and past the held rows
# of that code, none without a takeover).
_DISTINCT_CODES = """
WITH RECURSIVE c(code) AS (
  SELECT min(status_code) FROM status_out WHERE held_for IS NULL
  UNION ALL
  SELECT (SELECT min(status_code) FROM status_out WHERE status_code > c.code AND held_for IS NULL)
  FROM c WHERE c.code IS NOT NULL)
SELECT count(code) AS distinct_codes_returned FROM c
"""

# Received documents by the number of distinct status codes returned on each: group over the
# (doc_message_id, status_code) index, keep documents with 3 or more, then check they are
# received documents (by this agency: not held for a predecessor).
_ANSWERED = """
SELECT coalesce(sum(g.n >= 3), 0) AS docs_answered_3, coalesce(sum(g.n >= 5), 0) AS docs_answered_5
FROM (SELECT doc_message_id, count(DISTINCT status_code) AS n FROM status_out INDEXED BY status_out_doc_code
      GROUP BY doc_message_id HAVING n >= 3) AS g
JOIN inbox AS i ON i.message_id = g.doc_message_id AND i.kind = :doc AND i.held_for IS NULL
"""


@contextlib.contextmanager
def _reader(db: Database) -> Iterator[sqlite3.Connection]:
    """A read-only connection of its own, in one read transaction (a consistent snapshot).

    WAL lets it read while the node writes, so counting a large mailbox never holds the
    writer's lock; it is not one of the pool's readers, so a long count never keeps
    delivery and the API waiting for one.
    """
    conn = open_read_only(db.path, isolation_level=None, check_same_thread=False)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")
    finally:
        conn.close()


def own_counters(db: Database, code: str, name: str, now_ms: int, children: list[str] = ()) -> spb.AgencyStats:
    """This agency's counters as of now_ms: a few aggregate queries over one snapshot, made again only when
    something was committed since the last count (`Database.commits`). Every heartbeat asks; an idle
    agency's mailbox has not changed, so it costs no connection and no query (a host with a thousand)."""
    seen = db.commits  # read before the snapshot: the snapshot holds at least every commit counted here
    last = _counted.get(db)
    if last is not None and last[0] == seen:
        values = last[1]
    else:
        params = {"doc": DOCUMENT}
        with _reader(db) as conn:
            values = dict(conn.execute(_TOTALS, params).fetchone())
            values.update(conn.execute(_DISTINCT_CODES).fetchone())
            values.update(conn.execute(_ANSWERED, params).fetchone())
        _counted[db] = (seen, values)
    return spb.AgencyStats(code=code, name=name, as_of_ms=now_ms, children=children, **values)


_counted: "weakref.WeakKeyDictionary[Database, tuple[int, dict]]" = weakref.WeakKeyDictionary()  # the last count


def store_child_subtree(db: Database, child_code: str, rows: list[tuple[spb.AgencyStats, spb.SignedStats]],
                        now_ms: int) -> None:
    """Replace everything `child_code` reported before with this report (one transaction).

    Rows are (the counters, as signed by their agency); the signed bytes are what is kept
    and passed on. A code listed twice in one report keeps its newest `as_of_ms`."""
    newest: dict[str, tuple[spb.AgencyStats, spb.SignedStats]] = {}
    for stats, signed in rows:
        if stats.code and (stats.code not in newest or stats.as_of_ms > newest[stats.code][0].as_of_ms):
            newest[stats.code] = (stats, signed)
    with db.transaction(durable=False) as conn:  # repaired by the next heartbeat
        conn.execute("DELETE FROM subtree_stats WHERE via_child = ?", (child_code,))
        conn.executemany(
            "INSERT INTO subtree_stats (via_child, code, as_of_ms, stats, received_ms) VALUES (?,?,?,?,?)",
            [(child_code, st.code, st.as_of_ms, signed.SerializeToString(deterministic=True), now_ms)
             for st, signed in newest.values()])


def forget_child(db: Database, child_code: str) -> None:
    """Drop what a child reported (for when it leaves this node)."""
    with db.transaction() as conn:
        conn.execute("DELETE FROM subtree_stats WHERE via_child = ?", (child_code,))


def subtree_signed(db: Database) -> list[spb.SignedStats]:
    """Every stored report row as its agency signed it, ordered by code then as_of."""
    rows = db.query("SELECT stats FROM subtree_stats ORDER BY code, as_of_ms, via_child")
    return [spb.SignedStats.FromString(r["stats"]) for r in rows]


def subtree(db: Database) -> list[spb.AgencyStats]:
    """Every stored row from every child, ordered by code then as_of (duplicates possible across children)."""
    return [spb.AgencyStats.FromString(s.stats) for s in subtree_signed(db)]
