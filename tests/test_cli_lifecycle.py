"""The lifecycle commands, end to end through the CLI against a small in-process tree."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from node.cli import main
from node.harness.inproc import start_tree
from node.harness.waiting import EventWaiter

P, D, S, R = "000.00.00.H53", "000.00.35.H53", "000.23.35.H53", "000.11.35.H53"
sys.path.insert(0, str(Path(__file__).parent))  # tests/ is not a package (importlib mode)
from edxml_samples import DIR as SAMPLES  # noqa: E402


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    t = start_tree(tmp_path_factory.mktemp("cli"), {P: None, D: P, S: D, R: D})
    yield t
    t.stop()


def run(capsys, *argv) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def cfg(tree, code) -> str:
    return str(tree[code][1].config)


def test_directory_and_lookup(tree, capsys):
    status, out, _ = run(capsys, "directory", "--config", cfg(tree, S), "--parent", P, "--recursive", "--level", "3")
    codes = [line.split()[0] for line in out.splitlines()[1:]]
    assert status == 0 and codes == sorted([S, R])
    status, out, _ = run(capsys, "lookup", "--config", cfg(tree, S), R)
    assert status == 0 and f"parent {D}" in out and "reachable" in out


def test_send_status_track_revoke(tree, capsys):
    with EventWaiter(tree.client(R), sent=False) as ev:
        status, out, _ = run(capsys, "send", "--config", cfg(tree, S), "--to", R, "--subject", "Kế hoạch")
        assert status == 0
        doc_id = re.search(r"document (\w+)", out).group(1)
        mid = re.search(r"(\w{32})\s+-> ", out).group(1)
        ev.wait(lambda evs: mid in {e.message_id for e in evs}, timeout=30)
    status, _, err = run(capsys, "status", "--config", cfg(tree, R), mid, "06")  # wrong step: one line, exit 1
    assert status == 1 and len(err.strip().splitlines()) == 1 and "current status 01" in err
    with EventWaiter(tree.client(S), sent=False) as ev:
        status, out, _ = run(capsys, "status", "--config", cfg(tree, R), mid, "03", "--staff", "Trần B",
                             "--description", "đã vào sổ")
        assert status == 0 and out.startswith("status 03 sent")
        sender = tree.client(S)  # the 01 may have come before we subscribed: ask Track on each arrival
        ev.wait(lambda evs: [st.status_code for st in sender.track(doc_id).recipients[0].statuses] == ["01", "03"],
                timeout=30)
    status, out, _ = run(capsys, "track", "--config", cfg(tree, S), doc_id)
    assert status == 0
    assert re.search(r"01 .*\n.*03 .*Trần B\s+đã vào sổ", out)
    assert f"path  {S} -> {D} -> {R}" in out
    with EventWaiter(tree.client(R), sent=False) as ev:
        status, out, _ = run(capsys, "revoke", "--config", cfg(tree, S), doc_id, "--reason", "nhầm")
        assert status == 0 and out.startswith("revoke ")
        ev.wait(lambda evs: len(evs) >= 1, timeout=30)
    [entry] = [e for e in tree.client(R).inbox_all() if e.message_id == mid]
    assert entry.state == "revoked"


def test_import_and_export(tree, capsys, tmp_path):
    packet = tmp_path / "edoc_new.edxml"  # the sample's From is 002.00.20.H13; S may only send as S
    packet.write_bytes((SAMPLES / "edoc_new.edxml").read_bytes().replace(b"002.00.20.H13", S.encode(), 1))
    status, _, err = run(capsys, "import", "--config", cfg(tree, D), str(packet), "--to", R)
    assert status != 0 and "FROM_NOT_ALLOWED" in err
    with EventWaiter(tree.client(R), sent=False) as ev:
        status, out, err = run(capsys, "import", "--config", cfg(tree, S), str(packet), "--to", R)
        assert status == 0 and "stray" in err
        mid = re.search(r"(\w{32})\s+-> ", out).group(1)
        ev.wait(lambda evs: mid in {e.message_id for e in evs}, timeout=30)
    target = tmp_path / "out.edxml"
    status, out, _ = run(capsys, "export", "--config", cfg(tree, R), mid, "--out", str(target))
    assert status == 0 and target.read_bytes().startswith(b"<?xml")
    assert b"7816/VPCP" in target.read_bytes()
