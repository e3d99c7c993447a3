"""Backup of a running node under load, restore, and exactly-once delivery afterwards (real processes).

A sends to B. A is backed up while a thread keeps sending; A is then stopped, its data directory
moved aside, the backup restored into an empty one, and A started again. Whatever A committed
before the backup began is in it; what it shows delivered is not sent again; what it shows
pending is sent again and B, which took it after the backup, stores it nowhere twice."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import sqlite3
import tarfile
import threading
from pathlib import Path

import grpc
import pytest

from node import backup
from node.cli import main
from node.envelope import Signer
from node.harness import nodes
from node.harness.nodes import NodeSpec
from node.harness.waiting import EventWaiter
from node.pb import envelope_pb2 as pb
from node.store import audit, outbox
from node.store.database import Database

A, B = "000.00.01.H53", "000.00.02.H53"
TIMEOUT = 30.0


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("backup")
    ha, hb = nodes.pair(root, NodeSpec(A, "Sở A"), NodeSpec(B, "Sở B"))
    handles = [ha, hb]
    try:
        for h in handles:
            nodes.start(h)
        nodes.wait_healthy(handles, TIMEOUT)
        yield root, ha, hb
    finally:
        for h in handles:
            nodes.terminate(h)


def drained(client, timeout: float = TIMEOUT) -> None:
    """Until the node's own sends are all delivered: checked on every delivery event, after a first check."""
    with EventWaiter(client, inbox=False) as ev:
        ev.wait(lambda _: not client.sent_all(state="pending"), timeout)


def rows_of(mailbox: Path) -> dict[str, str]:
    db = Database(mailbox)
    try:
        return {r["message_id"]: r["state"] for r in outbox.list_sent(db, limit=1_000_000)}
    finally:
        db.close()


def audit_events(mailbox: Path, event: str) -> list[str]:
    db = Database(mailbox)
    try:
        return [r["message_id"] for r in audit.recent(db, limit=1_000_000, event=event)]
    finally:
        db.close()


def test_a_backup_under_load_restores_to_a_node_that_delivers_exactly_once(pair, capsys):
    root, ha, hb = pair
    a, cfg = ha.client(), str(ha.config)
    with EventWaiter(a, inbox=False) as ev:  # some delivered before the backup ...
        first = [e.message_id for r in a.send_batch([(pb.Document(subject=f"trước {i}"), [B]) for i in range(20)])
                 for e in r.envelopes]
        ev.wait(lambda _: set(first) <= ev.ids("delivered"), TIMEOUT)
    assert main(["hold", "--config", cfg, B]) == 0  # ... and some pending in it, for certain

    committed: list[str] = []
    progress, stop = threading.Condition(), threading.Event()

    def load() -> None:
        """A client sending all along, as a vendor would: each batch under its own client key, retried
        until answered, so a call that committed but timed out (a loaded machine) is not lost to the
        count; an id counts once Send has answered (committed)."""
        i = 0
        while not stop.is_set():
            batch = [(pb.Document(subject=f"tải {i}-{k}"), [B]) for k in range(5)]
            while True:
                try:
                    resp = a.send_batch(batch, client_key=f"load-{i}")
                    break
                except grpc.RpcError as e:
                    assert e.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE), e
            with progress:
                committed.extend(e.message_id for r in resp for e in r.envelopes)
                progress.notify_all()
            i += 1

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        with progress:  # the backup starts with the load well under way
            assert progress.wait_for(lambda: len(committed) >= 50 or not loader.is_alive(), TIMEOUT)
            assert loader.is_alive()
            before = list(committed)
        backups = root / "backups"
        backups.mkdir(mode=0o700)
        capsys.readouterr()
        assert main(["backup", "--config", cfg, "--to", str(backups)]) == 0
        with progress:
            during = len(committed)
    finally:
        stop.set()
        loader.join(TIMEOUT)
    assert not loader.is_alive()
    out = capsys.readouterr().out
    [file] = backups.glob(f"lienthong-{A}-*.tar")
    assert str(file) in out and (file.stat().st_mode & 0o077) == 0
    with tarfile.open(file) as tar:
        assert tar.getnames() == ["manifest.json", "manifest.sig", "mailbox.sqlite3"]
        manifest = json.loads(tar.extractfile("manifest.json").read())
    assert manifest["node"] == A and manifest["schema_version"] == manifest["migrations"][-1]
    assert manifest["sha256"] in out and manifest["rows"]["outbox"] >= len(first) + len(before)
    assert during >= len(before)

    assert main(["release", "--config", cfg, B]) == 0
    drained(a)
    everything = set(first) | set(committed)
    assert nodes.terminate(ha) == 0

    data = ha.dir / "data"
    data.rename(ha.dir / "data-before-restore")
    capsys.readouterr()
    assert main(["restore", "--from", str(file), "--config", cfg]) == 0
    assert "sha256 verified" in capsys.readouterr().out
    assert (data.stat().st_mode & 0o777) == 0o700 and (data / "mailbox.sqlite3").stat().st_mode & 0o077 == 0
    in_backup = rows_of(data / "mailbox.sqlite3")
    assert set(first) | set(before) <= set(in_backup)  # nothing committed before the backup is lost
    delivered_then = {m for m, s in in_backup.items() if s == outbox.DELIVERED}
    pending_then = {m for m, s in in_backup.items() if s == outbox.PENDING}
    assert set(first) <= delivered_then and pending_then, (len(delivered_then), len(pending_then))
    assert len(in_backup) == manifest["rows"]["outbox"]

    nodes.start(ha)
    nodes.wait_healthy([ha], TIMEOUT)
    a = ha.client()
    assert main(["release", "--config", cfg, B]) == 0  # the hold was in the backup too
    drained(a)

    b_mailbox = hb.dir / "data" / "mailbox.sqlite3"
    received, duplicates = audit_events(b_mailbox, audit.RECEIVED), audit_events(b_mailbox, audit.DUPLICATE)
    assert sorted(received) == sorted(everything)  # each stored exactly once, none lost
    assert not set(duplicates) & delivered_then     # what the backup shows delivered was not sent again
    assert set(duplicates) == pending_then          # what it shows pending was, and B answered from its store
    inbox = [e.message_id for e in hb.client().inbox_all()]
    assert len(inbox) == len(set(inbox)) and set(inbox) == everything


def test_restore_refuses_a_used_directory_another_node_and_a_damaged_file(pair, tmp_path, capsys):
    root, ha, hb = pair
    cfg_b = str(hb.config)
    out = tmp_path / "b"
    out.mkdir()
    made = []
    for _ in range(3):
        assert main(["backup", "--config", cfg_b, "--to", str(out), "--keep", "2"]) == 0
        made += [p for p in sorted(out.glob(f"lienthong-{B}-*.tar")) if p not in made]
    kept = sorted(out.glob(f"lienthong-{B}-*.tar"))
    assert len(kept) == 2 and kept == made[1:]
    said = capsys.readouterr().out  # --keep says what it removed, by name, and when it removed nothing
    assert said.count(f"--keep 2: nothing removed (2 or fewer backups of {B} in {out})") == 2
    assert f"--keep 2: removed 1 older backup of {B}:\nremoved {made[0]}\n" in said
    with pytest.raises(SystemExit) as refused:  # argparse's usage error: nothing is backed up or removed
        main(["backup", "--config", cfg_b, "--to", str(out), "--keep", "0"])
    assert refused.value.code == 2 and "--keep: expected a whole number of backups, 1 or more" in capsys.readouterr().err
    assert sorted(out.glob(f"lienthong-{B}-*.tar")) == kept
    file = kept[-1]
    capsys.readouterr()
    assert main(["backup", "--config", cfg_b, "--to", str(file)]) == 1  # never overwrites
    assert "exists" in capsys.readouterr().err

    assert main(["restore", "--from", str(file), "--config", cfg_b]) == 2  # B's data directory is in use
    err = capsys.readouterr().err
    assert "node.data_dir" in err and "not empty" in err

    assert main(["restore", "--from", str(file), "--config", str(ha.config)]) == 1  # a backup of B is not A's
    err = capsys.readouterr().err
    assert "BACKUP_FOREIGN_KEY" in err and f"the key of {B}" in err

    # the database member with one byte changed: the digest says so, and nothing is left in the directory
    damaged = tmp_path / "damaged.tar"
    with tarfile.open(file) as src, tarfile.open(damaged, "w") as dst:
        for m in src.getmembers():
            data = bytearray(src.extractfile(m).read())
            if m.name == "mailbox.sqlite3":
                data[len(data) // 2] ^= 0xFF
            dst.addfile(m, io.BytesIO(bytes(data)))
    fresh = hb.dir / "fresh.yaml"  # beside the keys its paths name
    fresh.write_text(hb.config.read_text().replace("data_dir: data", f"data_dir: {tmp_path / 'restored'}"))
    assert main(["restore", "--from", str(damaged), "--config", str(fresh)]) == 1
    err = capsys.readouterr().err
    assert "damaged" in err and "SHA-256" in err
    assert not (tmp_path / "restored" / "mailbox.sqlite3").exists()
    assert main(["restore", "--from", str(file), "--config", str(fresh)]) == 0  # a failed restore can be retried
    assert "sha256 verified" in capsys.readouterr().out


def rewritten(src: Path, dst: Path, *, database=None, manifest=None, drop: tuple[str, ...] = (),
              signer: Path | None = None) -> Path:
    """A copy of backup `src` with its database file edited by `database(path)` (then the manifest's SHA-256 and
    size recomputed, as an attacker would), its manifest edited by `manifest(dict)`, members dropped, and signed
    again with the node key in directory `signer` (as the holder of another node's key would)."""
    work = dst.with_suffix(".work")
    work.mkdir()
    with tarfile.open(src) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    if database is not None:
        db = work / "mailbox.sqlite3"
        db.write_bytes(members["mailbox.sqlite3"])
        database(db)
        members["mailbox.sqlite3"] = db.read_bytes()
        m = json.loads(members["manifest.json"])
        m["sha256"], m["size"] = hashlib.sha256(members["mailbox.sqlite3"]).hexdigest(), len(members["mailbox.sqlite3"])
        members["manifest.json"] = json.dumps(m, ensure_ascii=False, indent=1).encode()
    if manifest is not None:
        m = json.loads(members["manifest.json"])
        manifest(m)
        members["manifest.json"] = json.dumps(m, ensure_ascii=False, indent=1).encode()
    if signer is not None:
        other = Signer.from_files(signer / "node.key", signer / "node.pem")
        m = json.loads(members["manifest.json"])
        m["signer_cert"] = base64.b64encode(other.cert_der).decode()
        members["manifest.json"] = json.dumps(m, ensure_ascii=False, indent=1).encode()
        members["manifest.sig"] = backup.sign_manifest(other, members["manifest.json"])
    with tarfile.open(dst, "w") as tar:
        for name, data in members.items():
            if name not in drop:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return dst


def redirect_outbox(db: Path) -> None:
    """Every envelope the backup shows pending now goes to the attacker's code, and its receipt
    state says delivered: the same row counts, so only the signature can tell."""
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE outbox SET next_hop = '000.00.66.H53', recipient = '000.00.66.H53'")
    conn.close()


@pytest.mark.parametrize("name, edit, reason", [
    ("edited, SHA-256 recomputed", dict(database=redirect_outbox), "BACKUP_BAD_SIGNATURE"),
    ("manifest's rows edited", dict(manifest=lambda m: m["rows"].update(outbox=0)), "BACKUP_BAD_SIGNATURE"),
    ("signature removed", dict(drop=("manifest.sig",)), "BACKUP_UNSIGNED"),
    ("signature removed, format 1", dict(drop=("manifest.sig",), manifest=lambda m: m.update(
        format="lienthong-backup/1")), "BACKUP_UNSIGNED"),
    ("edited, signed again by another node's key", dict(database=redirect_outbox, signer=A), "BACKUP_FOREIGN_KEY"),
])
def test_restore_refuses_a_backup_this_node_did_not_sign_as_it_is_and_writes_nothing(pair, tmp_path, capsys, name,
                                                                                     edit, reason):
    root, ha, hb = pair
    out = tmp_path / "backups"
    out.mkdir()
    assert main(["backup", "--config", str(hb.config), "--to", str(out)]) == 0
    [file] = out.glob("*.tar")
    if edit.get("signer") == A:
        edit = {**edit, "signer": ha.dir / "keys"}
    bad = rewritten(file, tmp_path / "bad.tar", **edit)
    fresh = hb.dir / f"fresh-{abs(hash(name))}.yaml"
    target = tmp_path / "restored"
    fresh.write_text(hb.config.read_text().replace("data_dir: data", f"data_dir: {target}"))
    capsys.readouterr()
    assert main(["restore", "--from", str(bad), "--config", str(fresh)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"lienthong: {reason}: ") and (reason != "BACKUP_FOREIGN_KEY" or f"the key of {A}" in err)
    assert not target.exists() or [p.name for p in target.iterdir()] == []
    assert main(["restore", "--from", str(file), "--config", str(fresh)]) == 0  # the backup as made restores
