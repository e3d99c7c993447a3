"""Migrations applied in one transaction (node.store.schema.migrate): the schema and its record are exactly
what sqlite-utils' one-by-one replay makes, from a fresh mailbox or an older one; a failing migration
leaves the mailbox at the version it had."""
from __future__ import annotations

import sqlite3

import pytest
import sqlite_utils

from node.store import schema
from node.store.database import Database
from node.store.schema import MIGRATIONS, migrate, schema_of


def _replayed(path):
    """A mailbox migrated the way sqlite-utils does it: each migration committed on its own."""
    conn = sqlite3.connect(path)
    MIGRATIONS.apply(sqlite_utils.Database(conn))
    return conn


def _state(conn):
    names = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = ? ORDER BY rowid",
                                        (MIGRATIONS.name,))]
    return sorted(schema_of(conn)), names


@pytest.fixture
def no_kept_schema(monkeypatch):
    monkeypatch.setattr(schema._FreshSchema, "script", None)


def test_a_fresh_mailbox_has_the_replayed_schema_whether_replayed_or_scripted(tmp_path, no_kept_schema):
    expected = _state(_replayed(tmp_path / "replayed.sqlite3"))
    assert expected[1] == [m.name for m in MIGRATIONS._migrations]
    Database(tmp_path / "first.sqlite3").close()  # replays, in one transaction, and keeps the schema
    assert schema._FreshSchema.script is not None
    Database(tmp_path / "second.sqlite3").close()  # made from the kept script
    for name in ("first", "second"):
        conn = sqlite3.connect(tmp_path / f"{name}.sqlite3")
        assert _state(conn) == expected, name
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_an_older_mailbox_is_brought_to_the_current_version_keeping_its_rows(tmp_path, no_kept_schema):
    Database(tmp_path / "fresh.sqlite3").close()  # a kept script must not be used for a mailbox with tables
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    assert migrate(sqlite_utils.Database(conn), stop_before="0016_waits_for_registration")[-1] == "0015_audit_restore"
    conn.execute("INSERT INTO peer_state (code, failures) VALUES ('P', 3)")
    conn.commit()
    conn.close()
    db = Database(path)
    assert db.schema_version() == len(MIGRATIONS._migrations)
    assert db.query_one("SELECT failures FROM peer_state WHERE code = 'P'")["failures"] == 3
    db.close()
    assert _state(sqlite3.connect(path)) == _state(_replayed(tmp_path / "replayed.sqlite3"))


def test_a_failing_migration_leaves_the_mailbox_at_the_version_it_had(tmp_path, monkeypatch, no_kept_schema):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    migrate(sqlite_utils.Database(conn), stop_before="0016_waits_for_registration")
    before = _state(conn)
    conn.close()

    def broken(db):
        db.execute("CREATE TABLE half_way (x)")
        raise sqlite3.OperationalError("disk I/O error")
    monkeypatch.setattr(MIGRATIONS, "_migrations", [*MIGRATIONS._migrations,
                                                    MIGRATIONS._Migration("9999_broken", broken, True)])
    with pytest.raises(sqlite3.OperationalError):
        Database(path)
    assert _state(sqlite3.connect(path)) == before  # neither 0016.. nor half_way: all pending or none


def test_a_migration_that_seeds_rows_is_replayed_for_every_fresh_mailbox(tmp_path, monkeypatch, no_kept_schema):
    def seeds(db):
        db.execute("INSERT INTO peer_state (code) VALUES ('SEED')")
    monkeypatch.setattr(MIGRATIONS, "_migrations", [*MIGRATIONS._migrations,
                                                    MIGRATIONS._Migration("9999_seed", seeds, True)])
    Database(tmp_path / "a.sqlite3").close()
    assert schema._FreshSchema.script is None
    db = Database(tmp_path / "b.sqlite3")
    assert db.query_one("SELECT code FROM peer_state")["code"] == "SEED"
    db.close()


def test_a_kept_script_is_not_used_once_the_migrations_differ(tmp_path, monkeypatch, no_kept_schema):
    Database(tmp_path / "a.sqlite3").close()  # keeps the script of today's migrations

    def later(db):
        db.execute("CREATE TABLE later (x)")
    monkeypatch.setattr(MIGRATIONS, "_migrations", [*MIGRATIONS._migrations,
                                                    MIGRATIONS._Migration("9999_later", later, True)])
    db = Database(tmp_path / "b.sqlite3")  # replayed: the kept script knows nothing of 9999_later
    assert db.schema_version() == len(MIGRATIONS._migrations)
    assert db.query_one("SELECT count(*) AS n FROM later")["n"] == 0
    db.close()
