"""A restore from a backup is declared in the audit chain, not taken for tampering (real processes).

District D under province P checkpoints its chain to P every 300 ms. D is backed up, goes on working
(P takes checkpoints past the backup), stops, and is restored from the backup with `lienthong restore`.
`lienthong audit verify` then exits 0 and names the rows lost with the restore; P takes the restored
chain's checkpoints as a new branch (no CHECKPOINT_CONFLICT), keeping the old one. A "restore" written
with the file alone (no key) is still a log cut short, and an edit after a restore is still named."""
from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from node.audit.chain import entry_hash
from node.cli import main
from node.harness import nodes
from node.harness.inproc import FAST_REGISTRY
from node.harness.nodes import NodeSpec, audit_chain as _chain, mailbox_path as _mailbox
from node.harness.waiting import EventWaiter
from node.pb import envelope_pb2 as pb
from node.store import audit

P, D = "000.00.00.H53", "000.00.35.H53"
TIMEOUT = 60.0
EXTRA = {**FAST_REGISTRY, "audit": {"checkpoint_every": "300ms"}}



def _send_and_checkpoint(hd, subject: str) -> int:
    """D sends P a document; returns once P has taken a checkpoint of D's chain covering it."""
    d = hd.client()
    with EventWaiter(d, registry=True) as ev:
        mid = d.send(pb.Document(subject=subject), [P]).envelopes[0].message_id
        ev.wait(lambda _: mid in ev.ids("delivered"), TIMEOUT)
        head = _chain(hd.dir)[-1].seq
        ev.wait(lambda evs: any(e.type == "checkpoint" and e.peer == P and e.seq >= head for e in evs), TIMEOUT)
    return head


def _verify(capsys, node_dir: Path) -> tuple[int, str]:
    capsys.readouterr()
    status = main(["audit", "verify", "--config", str(node_dir / "node.yaml")])
    return status, capsys.readouterr().out


@pytest.fixture(scope="module")
def restored(tmp_path_factory):
    root = tmp_path_factory.mktemp("restore")
    ca = nodes.make_ca(root)
    addresses = {code: f"127.0.0.1:{nodes.free_port()}" for code in (P, D)}
    hp = nodes.prepare_node(root, ca, NodeSpec(P, "Tỉnh P", extra=EXTRA), addresses)
    hd = nodes.prepare_node(root, ca, NodeSpec(D, "Huyện D", peers={P: P}, parent=P, extra=EXTRA), addresses)
    try:
        nodes.start(hp)
        nodes.wait_healthy([hp], TIMEOUT)
        nodes.start_registered(hp, hd, TIMEOUT)
        _send_and_checkpoint(hd, "trước bản sao")
        backups = root / "backups"
        backups.mkdir(mode=0o700)
        assert main(["backup", "--config", str(hd.config), "--to", str(backups)]) == 0
        [backup] = backups.glob("*.tar")
        backup_seq = _chain(hd.dir)[-1].seq
        _send_and_checkpoint(hd, "sau bản sao")
        assert nodes.terminate(hd) == 0  # a clean stop hands P a last checkpoint
        conn = sqlite3.connect(f"{_mailbox(hp.dir).as_uri()}?mode=ro", uri=True)
        try:
            lost_to = conn.execute("SELECT max(seq) FROM child_checkpoint WHERE code = ?", (D,)).fetchone()[0]
        finally:
            conn.close()
        assert lost_to == _chain(hd.dir)[-1].seq > backup_seq  # P holds a checkpoint past the backup
        (hd.dir / "data").rename(hd.dir / "data-lost")
        yield root, hp, hd, backup, backup_seq, lost_to
    finally:
        for h in (hd, hp):
            nodes.terminate(h)


def test_a_restored_node_verifies_intact_naming_the_rows_lost_and_its_parent_takes_the_new_branch(restored, capsys):
    root, hp, hd, backup, backup_seq, lost_to = restored
    capsys.readouterr()
    assert main(["restore", "--from", str(backup), "--config", str(hd.config)]) == 0
    out = capsys.readouterr().out
    assert f"holds the chain up to seq {backup_seq}; the restore is recorded at seq {backup_seq + 1}" in out, out
    rows = _chain(hd.dir)
    assert rows[-1].seq == backup_seq + 1 and rows[-1].event == audit.RESTORED and backup.name in rows[-1].detail

    # before the node runs: P has not heard of the restore, and holds a checkpoint of the history given up
    status, text = _verify(capsys, hd.dir)
    assert status == 0, text
    assert f"RESTORED seq {backup_seq + 1}: restored" in text and f"from backup {backup.name}" in text, text
    assert f"at seq {lost_to}" in text and "of the history before the restore" in text, text
    assert f"rows {backup_seq + 1}..{lost_to} of the history before it were lost with the restore" in text, text
    assert "the parent has not taken the restore record yet" in text, text

    nodes.start(hd)  # D hands P its restore checkpoint, then checkpoints of the restored chain as it grows
    nodes.wait_healthy([hd], TIMEOUT)
    head = _send_and_checkpoint(hd, "sau khôi phục")
    assert head >= lost_to  # the restored chain has reached and passed seqs P held of the old one
    status, text = _verify(capsys, hd.dir)
    assert status == 0, text
    assert f"rows {backup_seq + 1}..{lost_to} of the history before it were lost with the restore" in text, text
    assert f"parent's copy at {P} at seq {head}" in text and "not taken the restore record" not in text, text
    assert "CHECKPOINT_CONFLICT" not in hd.log_path.read_text()
    assert f"{D} was restored from a backup ({backup.name}" in hp.log_path.read_text()
    conn = sqlite3.connect(f"{_mailbox(hp.dir).as_uri()}?mode=ro", uri=True)
    try:  # P keeps the checkpoint of the history given up
        assert conn.execute("SELECT count(*) FROM child_checkpoint WHERE code = ? AND branch = 0 AND seq = ?",
                            (D, lost_to)).fetchone()[0] == 1
    finally:
        conn.close()


def _copy(hd, tmp_path: Path, data: str = "data") -> Path:
    d = tmp_path / "D"
    shutil.copytree(hd.dir, d, ignore=shutil.ignore_patterns("lienthong.lock", "runtime.json", "data*"))
    shutil.copytree(hd.dir / data, d / "data", ignore=shutil.ignore_patterns("lienthong.lock"))
    return d


def test_an_edit_after_a_restore_is_still_named(restored, tmp_path, capsys):
    root, hp, hd, backup, backup_seq, lost_to = restored
    d = _copy(hd, tmp_path)
    conn = sqlite3.connect(_mailbox(d))
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("UPDATE audit SET detail = 'sửa' WHERE seq = ?", (backup_seq,))
    conn.commit()
    conn.close()
    status, text = _verify(capsys, d)
    assert status == 3 and f"BROKEN seq {backup_seq}: edited" in text, text


def test_a_restore_row_written_without_the_key_is_a_log_cut_short(restored, tmp_path, capsys):
    """An attacker with the old file (not the key) cuts the rows after seq N and chains a `restored` row
    onto it: nothing signed declares that restore, so the parent's checkpoint past it names the cut."""
    root, hp, hd, backup, backup_seq, lost_to = restored
    d = _copy(hd, tmp_path, "data-lost")
    conn = sqlite3.connect(_mailbox(d))
    conn.execute("DROP TRIGGER audit_no_delete")
    conn.execute("DELETE FROM audit WHERE seq > ?", (backup_seq,))
    conn.execute("DELETE FROM audit_checkpoint WHERE seq > ?", (backup_seq,))
    prev = conn.execute("SELECT hash FROM audit WHERE seq = ?", (backup_seq,)).fetchone()[0]
    row = (backup_seq + 1, 1, audit.RESTORED, "", "", "from backup x.tar")
    conn.execute("INSERT INTO audit (seq, time_ms, event, message_id, peer, detail, prev_hash, hash) VALUES "
                 "(?,?,?,?,?,?,?,?)", (*row, prev, entry_hash(*row, prev)))
    conn.commit()
    conn.close()
    status, text = _verify(capsys, d)
    assert status == 3, text
    assert "RESTORED" not in text and "BROKEN seq" in text, text
