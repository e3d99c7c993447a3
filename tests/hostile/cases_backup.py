"""Backups edited by whoever can write where they are kept, restored by the victim's operator.

D's backup is taken while D runs (`lienthong backup`); the attacker edits the copy: the mailbox
changed and the manifest's SHA-256 and size recomputed to match, or the whole manifest signed again
with the key of the insider M. `lienthong restore` with D's config (into a fresh data directory)
must refuse it with its stable reason and write nothing; the untouched backup restores.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import sqlite3
import tarfile
import tempfile
from pathlib import Path

import yaml

from node import backup
from node.cli import main as cli
from node.errors import Reason

from .core import Observed, Scene, case
from .world import D, M

RESTORE = "`lienthong backup` at D, the file edited, `lienthong restore` with D's config"


def run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        status = cli(list(args))
    return status, out.getvalue()


def restored(s: Scene, edit) -> Observed:
    """Back D up, edit the file with `edit(members)`, restore it into a fresh directory with D's keys."""
    w = s.w
    home = w.cli_root / f"case-{len(list(w.cli_root.iterdir()))}"
    home.mkdir()
    node_dir = Path(w.cluster.nodes[D].dir)
    config = yaml.safe_load(Path(w.cluster.nodes[D].config).read_text())
    config["node"]["data_dir"] = str(home / "restored")
    config["tls"] = {**config["tls"], "key": str(node_dir / config["tls"]["key"]),
                     "cert": str(node_dir / config["tls"]["cert"]),
                     "trust_anchors": [str(node_dir / p) for p in config["tls"]["trust_anchors"]]}
    fresh = home / "node.yaml"
    fresh.write_text(yaml.safe_dump(config, allow_unicode=True))
    status, out = run("backup", "--config", str(w.cluster.nodes[D].config), "--to", str(home))
    assert status == 0, out
    [made] = home.glob("lienthong-*.tar")
    with tarfile.open(made) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    edit(members)
    bad = home / "edited.tar"
    with tarfile.open(bad, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    status, out = run("restore", "--from", str(bad), "--config", str(fresh))
    assert status == 1 and not (home / "restored").exists(), out
    reason = out.split("lienthong: ", 1)[1].split(":", 1)[0]
    status, ok = run("restore", "--from", str(made), "--config", str(fresh))  # the backup as made restores
    assert status == 0, ok
    found = Reason.from_wire(reason)
    assert found is not None, out
    return Observed(found.grpc_code.name, found.wire, detail=out).allowing(paths=[home])


def with_database(members: dict[str, bytes], change) -> None:
    """The database changed by `change(connection)`, the manifest's digest and size written to match."""
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch) / "mailbox.sqlite3"
        tmp.write_bytes(members["mailbox.sqlite3"])
        conn = sqlite3.connect(tmp)
        with conn:
            change(conn)
        conn.close()
        members["mailbox.sqlite3"] = tmp.read_bytes()
    m = json.loads(members["manifest.json"])
    m["sha256"], m["size"] = hashlib.sha256(members["mailbox.sqlite3"]).hexdigest(), len(members["mailbox.sqlite3"])
    members["manifest.json"] = json.dumps(m, ensure_ascii=False, indent=1).encode()


def forged_inbox(conn: sqlite3.Connection) -> None:
    """What D received, said to be from M: the same row counts, so only the signature can tell."""
    conn.execute("UPDATE inbox SET sender = ?", (M,))


@case("backup", "D's backup edited, its SHA-256 recomputed", "DATA_LOSS", "BACKUP_BAD_SIGNATURE", via=RESTORE)
def _(s):
    return restored(s, lambda members: with_database(members, forged_inbox))


@case("backup", "D's backup edited and signed again with the insider's key", "PERMISSION_DENIED",
      "BACKUP_FOREIGN_KEY", via=RESTORE)
def _(s):
    def resign(members: dict[str, bytes]) -> None:
        with_database(members, forged_inbox)
        m = json.loads(members["manifest.json"])
        m["signer_cert"] = base64.b64encode(s.w.signer(M).cert_der).decode()
        members["manifest.json"] = json.dumps(m, ensure_ascii=False, indent=1).encode()
        members["manifest.sig"] = backup.sign_manifest(s.w.signer(M), members["manifest.json"])
    observed = restored(s, resign)
    assert f"the key of {M}" in observed.detail, observed.detail
    return observed


@case("backup", "D's backup with its signature removed", "FAILED_PRECONDITION", "BACKUP_UNSIGNED", via=RESTORE)
def _(s):
    def strip(members: dict[str, bytes]) -> None:
        with_database(members, forged_inbox)
        del members["manifest.sig"]
    return restored(s, strip)
