"""The audit hash chain: appended rows chain; an edited, deleted or reordered row is named; the migration
chains rows written before it."""
from __future__ import annotations

import sqlite3

import pytest
import sqlite_utils

from node.audit.chain import GENESIS, entry_hash, walk
from node.store import audit
from node.store.database import Database
from node.store.schema import MIGRATIONS


def _filled(tmp_path, n=8) -> Database:
    db = Database(tmp_path / "m.sqlite3")
    with db.transaction() as tx:
        for i in range(n):
            audit.append(tx, 1000 + i, audit.SENT, f"m{i}", "000.00.00.H01", f"to {i}")
    return db


def _rows(path):
    ro = audit.ReadOnly(path)
    try:
        return list(ro.rows())
    finally:
        ro.close()


def _tamper(path, *sql):
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("DROP TRIGGER audit_no_delete")
    for s in sql:
        conn.execute(s)
    conn.commit()
    conn.close()


def test_rows_are_chained_from_genesis_and_an_intact_chain_walks_clean(tmp_path):
    db = _filled(tmp_path)
    rows = _rows(db.path)
    assert [r.seq for r in rows] == list(range(1, 9))
    assert rows[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:]))
    assert rows[3].hash == entry_hash(4, 1003, "sent", "m3", "000.00.00.H01", "to 3", rows[2].hash)
    w = walk(rows)
    assert w.intact and w.count == 8 and (w.head_seq, w.head_hash) == (8, rows[-1].hash)
    assert audit.head(db) == (8, rows[-1].hash)


@pytest.mark.parametrize("sql, kind, seq", [
    ("UPDATE audit SET detail = 'to nowhere' WHERE seq = 4", "edited", 4),
    ("UPDATE audit SET time_ms = time_ms + 1 WHERE seq = 1", "edited", 1),
    ("DELETE FROM audit WHERE seq = 5", "deleted", 6),
])
def test_an_edited_or_deleted_row_is_named(tmp_path, sql, kind, seq):
    db = _filled(tmp_path)
    db.close()
    _tamper(db.path, sql)
    problems = walk(_rows(db.path)).problems
    assert [(p.kind, p.seq) for p in problems] == [(kind, seq)], problems


def test_an_edit_with_its_hash_recomputed_is_named_at_the_edited_row(tmp_path):
    db = _filled(tmp_path)
    db.close()
    rows = _rows(db.path)
    forged = entry_hash(3, rows[2].time_ms, "sent", "m2", "000.00.00.H01", "to elsewhere", rows[1].hash)
    conn = sqlite3.connect(db.path)
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("UPDATE audit SET detail = 'to elsewhere', hash = ? WHERE seq = 3", (forged,))
    conn.commit()
    conn.close()
    assert [(p.kind, p.seq) for p in walk(_rows(db.path)).problems] == [("edited", 3)]


def test_a_swapped_pair_is_named_reordered(tmp_path):
    db = _filled(tmp_path)
    db.close()
    _tamper(db.path, "UPDATE audit SET seq = -1 WHERE seq = 5", "UPDATE audit SET seq = 5 WHERE seq = 6",
            "UPDATE audit SET seq = 6 WHERE seq = -1")
    problems = walk(_rows(db.path)).problems
    assert [(p.kind, p.seq) for p in problems] == [("reordered", 5), ("reordered", 6)], problems
    assert "swapped" in problems[0].detail


def test_the_migration_chains_rows_written_before_it(tmp_path):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    MIGRATIONS.apply(sqlite_utils.Database(conn), stop_before="0010_audit_chain")
    conn.executemany("INSERT INTO audit (time_ms, event, message_id, peer, detail) VALUES (?,?,?,?,?)",
                     [(5, "sent", "a", "p", "x"), (6, "delivered", None, "p", "")])
    conn.commit()
    conn.close()
    db = Database(path)
    with db.transaction() as tx:
        audit.append(tx, 7, audit.RECEIVED, "b", "q", "from q")
    rows = _rows(path)
    assert [(r.seq, r.event, r.message_id) for r in rows] == [(1, "sent", "a"), (2, "delivered", ""), (3, "received", "b")]
    assert walk(rows).intact
    with pytest.raises(sqlite3.IntegrityError):  # still append-only by trigger
        with db.transaction() as tx:
            tx.execute("DELETE FROM audit WHERE seq = 1")


def _intact(db: Database) -> list:
    rows = db.query(f"SELECT {audit.COLUMNS} FROM audit ORDER BY seq")
    prev = GENESIS
    for i, r in enumerate(rows, 1):
        assert r["seq"] == i and r["prev_hash"] == prev
        assert r["hash"] == entry_hash(i, r["time_ms"], r["event"], r["message_id"], r["peer"], r["detail"], prev)
        prev = r["hash"]
    return [r["message_id"] for r in rows]


def test_a_transaction_reads_the_chains_head_once_and_again_after_a_savepoint_is_rolled_back(tmp_path):
    """Appends in one transaction chain from the head it left (not a SELECT per append); a savepoint rolled
    back takes its rows with it, so the rows after it chain from the head before it, not from a row undone."""
    db = Database(tmp_path / "m.sqlite3")
    try:
        with db.transaction() as tx:
            audit.append(tx, 1, audit.SENT, "before")
        heads = []
        db.db.conn.set_trace_callback(lambda sql: heads.append(sql) if "ORDER BY seq DESC" in sql else None)
        with db.transaction() as tx:
            for i in range(5):
                audit.append(tx, 2, audit.SENT, f"a{i}")
            with pytest.raises(RuntimeError):
                with db.transaction():
                    audit.append(tx, 3, audit.SENT, "undone")
                    raise RuntimeError("this part fails")
            audit.append(tx, 4, audit.SENT, "after")
        db.db.conn.set_trace_callback(None)
        assert len(heads) == 2  # once at the start, once after the rollback
        assert _intact(db) == ["before", "a0", "a1", "a2", "a3", "a4", "after"]
    finally:
        db.close()
