"""The SQLite side of backup and restore (node/backup.py does the file format, digest and checks).

`snapshot` copies a live mailbox with SQLite's online backup API from a connection of its
own, opened read-only: the running node keeps its connection and its lock, and goes on
writing (WAL lets a writer and this reader work at once). The copy is taken in one step
(`pages=-1`), inside one read transaction, so it is the database as of one commit:
every transaction committed before the copy began is in it, none that committed after.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .database import open_read_only
from .schema import MIGRATIONS

MIGRATIONS_TABLE = "_sqlite_migrations"


@dataclass(frozen=True)
class Contents:
    """What a copy of a mailbox holds: its schema version (the migrations applied) and rows per table."""
    migrations: list[str]
    rows: dict[str, int]

    @property
    def schema_version(self) -> str:
        return self.migrations[-1] if self.migrations else ""


def known_migrations() -> list[str]:
    return [m.name for m in MIGRATIONS._migrations]


def snapshot(mailbox: Path, dest: Path) -> Contents:
    """Copy the mailbox at `mailbox` (a node may be running on it) into the new file `dest`, one file
    in rollback-journal mode (no -wal beside it), and say what it holds."""
    src = open_read_only(mailbox)
    try:
        dst = sqlite3.connect(str(dest))
        try:
            src.backup(dst)  # pages=-1: the whole database in one step, from one read transaction
            dst.execute("PRAGMA journal_mode=DELETE")
            dst.commit()
            return _contents(dst)
        finally:
            dst.close()
    finally:
        src.close()


def inspect(path: Path) -> tuple[Contents, str]:
    """What a copied mailbox holds, and SQLite's integrity check of it ("ok" when sound)."""
    conn = open_read_only(path, timeout=5)
    try:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        return _contents(conn), check
    except sqlite3.DatabaseError as e:
        return Contents([], {}), str(e)
    finally:
        conn.close()


def _contents(conn: sqlite3.Connection) -> Contents:
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    rows = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    migrations = []
    if MIGRATIONS_TABLE in tables:
        migrations = [r[0] for r in conn.execute(
            f"SELECT name FROM {MIGRATIONS_TABLE} WHERE migration_set = ? ORDER BY rowid", (MIGRATIONS.name,))]
    return Contents(migrations, rows)
