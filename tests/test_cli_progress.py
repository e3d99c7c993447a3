"""Long commands show a progress line on a terminal, and nothing when stderr is not one.

`lienthong backup`, `restore` and `audit verify` as real processes, once with stderr on a
pseudo-terminal (as an admin at a shell) and once on a pipe (as the backup timer's journal)."""
from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from node.config import load_config
from node.harness import nodes
from node.harness.nodes import NodeSpec
from node.runtime import Node
from node.store import audit

A = "000.00.01.H53"
ROOT = Path(__file__).resolve().parents[1]
ROWS = 2000


@pytest.fixture
def stopped_node(tmp_path, pki):
    """A node that ran once (its mailbox, with an audit chain of ROWS rows) and is not running."""
    h = nodes.prepare_node(tmp_path, pki.ca, NodeSpec(A, "Sở A"), {A: "127.0.0.1:0"})
    node = Node(load_config(h.config))
    try:
        with node.db.transaction() as tx:
            audit.append_many(tx, [(i, audit.SENT, f"m{i}", "000.00.02.H53", "") for i in range(1, ROWS + 1)])
    finally:
        node.db.close()
    return h


def run(args: list[str], tty: bool) -> tuple[int, str, str]:
    """The command's exit status, stdout, and what reached stderr (a pseudo-terminal, or a pipe)."""
    cmd = [sys.executable, "-m", "node", *args]
    if not tty:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT, stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout, p.stderr
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, cwd=ROOT)
        os.close(slave)
        got = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the process closed its end
                break
            if not chunk:
                break
            got += chunk
        out = p.stdout.read().decode()
        p.stdout.close()
        return p.wait(120), out, got.decode()
    finally:
        os.close(master)


def restore_config(h, name: str) -> Path:
    data = yaml.safe_load(h.config.read_text())
    data["node"]["data_dir"] = name
    path = h.dir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


@pytest.mark.parametrize("tty", [True, False], ids=["terminal", "pipe"])
def test_backup_restore_and_audit_verify_show_progress_on_a_terminal_only(stopped_node, tmp_path, tty):
    h = stopped_node
    to = tmp_path / f"backups-{tty}"
    to.mkdir()
    status, out, err = run(["backup", "--config", str(h.config), "--to", str(to)], tty)
    assert status == 0 and out.startswith("backup "), (out, err)
    [made] = to.glob("*.tar")
    if tty:
        assert "backup: copying the mailbox (" in err
        assert "backup: SHA-256 of the copy" in err and f"writing {made.name}" in err and "(100%)" in err
        assert err.endswith("\r") and err.rstrip("\r").endswith(" ")  # wiped: the shell's prompt starts clean
    else:
        assert err == ""

    status, out, err = run(["restore", "--from", str(made), "--config", str(restore_config(h, f"restored-{tty}"))], tty)
    assert status == 0 and out.startswith("restored "), (out, err)
    if tty:
        assert "restore: reading the mailbox" in err and "(100%)" in err and "restore: SQLite's integrity check" in err
    else:
        assert err == ""

    status, out, err = run(["audit", "verify", "--config", str(h.config), "--offline"], tty)
    assert status == 0, (out, err)
    if tty:
        assert f"audit verify: walking the chain {ROWS}/{ROWS} rows (100%)" in err
    else:
        assert err == ""
