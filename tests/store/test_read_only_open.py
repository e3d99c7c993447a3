"""A mailbox read from outside its node (a harness watching a running process) is found by its path,
whatever characters the path holds: `?`, `#` and `%` are quoted into the file: URI, not read as its query."""
from __future__ import annotations

from node.store import registry
from node.store.database import Database


def test_children_are_counted_in_a_mailbox_whose_path_holds_uri_characters(tmp_path):
    folder = tmp_path / "odd?mode=rw#x%20"
    folder.mkdir()
    db = Database(folder / "m.sqlite3")
    try:
        registry.upsert(db, registry.Child("000.00.00.G01", "child", 2, "127.0.0.1:1", b"r", b"s", 1, 1),
                        durable=True)
        assert registry.count_in_file(folder / "m.sqlite3") == 1
    finally:
        db.close()
