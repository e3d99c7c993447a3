"""Lookups by many ids bind them in slices (SQLite bounds the parameters of one statement): every id
is asked about once, those at the edges of a slice included."""
from __future__ import annotations

from node.store import custody
from node.store.database import IN_CHUNK, in_chunks


def test_values_are_cut_into_bounded_slices_with_their_placeholders():
    values = list(range(2 * IN_CHUNK + 1))
    got = list(in_chunks(values))
    assert [len(c) for c, _ in got] == [IN_CHUNK, IN_CHUNK, 1]
    assert all(marks == ",".join("?" * len(c)) for c, marks in got)
    assert [v for c, _ in got for v in c] == values
    assert list(in_chunks([])) == []


def test_ids_received_before_are_found_across_slices(db):
    ids = [f"m{i:05d}" for i in range(2 * IN_CHUNK + 201)]
    stored = {ids[0], ids[IN_CHUNK - 1], ids[IN_CHUNK], ids[-1]}
    with db.transaction() as tx:
        for m in stored:
            tx.execute("INSERT INTO received (message_id, envelope_sha256, receipt, from_peer, received_ms)"
                       " VALUES (?,?,?,?,?)", (m, b"d", b"r", "000.00.00.G01", 1))
    assert custody.received_ids(db, ids) == stored
