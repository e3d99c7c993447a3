"""All SQL lives in node/store/: a module elsewhere that runs SQL fails this test.

Why: the tables' invariants (custody, dedup, status rules) are kept by the store modules;
SQL scattered through the layers above is how they get broken without anyone noticing.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

NODE = Path(__file__).resolve().parents[2] / "node"
ALLOWED = (NODE / "store", NODE / "pb")
# sqlite3's and sqlite_utils' own calls; names the store's own functions also have (backup, upsert, insert) are
# left out: a call of them elsewhere is the store's, as it should be
SQL_CALLS = {"execute", "executemany", "executescript", "query", "query_one", "connect", "cursor", "iterdump",
             "insert_all", "upsert_all", "rows_where", "delete_where"}
SQL_TEXT = re.compile(r"^\s*(SELECT\b.*\bFROM|INSERT\s+(OR\s+\w+\s+)?INTO|REPLACE\s+INTO|UPDATE\s+\w+\s+SET|"
                      r"DELETE\s+FROM|WITH\s+(RECURSIVE\s+)?\w+.*\bAS\s*\(|CREATE\s+(TABLE|INDEX|TRIGGER)|"
                      r"ALTER\s+TABLE|DROP\s+|PRAGMA\s)", re.S)


def offences(path: Path, root: Path = NODE.parent) -> list[str]:
    where = path.relative_to(root)
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in SQL_CALLS:
            found.append(f"{where}:{n.lineno}: .{n.func.attr}(...)")
        elif isinstance(n, ast.Constant) and isinstance(n.value, str) and SQL_TEXT.match(n.value):
            found.append(f"{where}:{n.lineno}: SQL text {n.value[:40]!r}")
        elif isinstance(n, ast.JoinedStr):  # an f-string: its parts read together ("SELECT {cols} FROM t")
            text = "".join(v.value if isinstance(v, ast.Constant) else "x" for v in n.values)
            if SQL_TEXT.match(text):
                found.append(f"{where}:{n.lineno}: SQL f-string {text[:40]!r}")
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in n.names] if isinstance(n, ast.Import) else [n.module or ""]
            if any(name.split(".")[0] in ("sqlite3", "sqlite_utils") for name in names):
                found.append(f"{where}:{n.lineno}: imports {', '.join(names)}")
    return found


def test_no_module_outside_the_store_runs_sql():
    found = [o for p in sorted(NODE.rglob("*.py")) if not p.is_relative_to(ALLOWED[0]) and not p.is_relative_to(ALLOWED[1])
             for o in offences(p)]
    assert found == [], "SQL outside node/store/:\n" + "\n".join(found)


def test_the_check_catches_each_kind_of_sql(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('import sqlite3\n'
                      'db.query_one("SELECT * FROM docs WHERE doc_id = ?", (x,))\n'
                      'conn.execute(q)\n'
                      'q = "INSERT OR IGNORE INTO t VALUES (1)"\n'
                      'note = "Select a recipient from the list"\n'
                      'q = f"SELECT {cols} FROM {table}"\n'
                      'q = "WITH RECURSIVE c(x) AS (SELECT 1) SELECT x FROM c"\n'
                      'q = "REPLACE INTO t VALUES (1)"\n'
                      'rows = db["t"].rows_where("a = 1")\n'
                      'cur = conn.cursor()\n'
                      'items.insert(0, x)\n')
    found = offences(sample, tmp_path)
    assert sorted(int(f.split(":")[1]) for f in found) == [1, 2, 2, 3, 4, 6, 7, 8, 9, 10], found
