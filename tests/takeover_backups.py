"""Backups for the takeover tests: a node's own (`lienthong backup`), and ones edited and signed again by whoever
holds a key, as an attacker or a slip would make them."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import sqlite3
import tarfile
import tempfile
from pathlib import Path
from typing import Callable

from node import backup
from node.config import load_config
from node.envelope import Signer


def backup_of(config: Path, to: Path) -> Path:
    """The node's own signed backup, taken while it runs."""
    to.mkdir(parents=True, exist_ok=True)
    out, _, _ = backup.backup(load_config(config), to)
    return out


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def write(path: Path, parts: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in parts.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o600
            tar.addfile(info, io.BytesIO(data))
    return path


def remade(source: Path, out: Path, signer: Signer | None, *, manifest: Callable[[dict], dict] = lambda m: m,
           database: Callable[[sqlite3.Connection], None] | None = None, sign: bool = True) -> Path:
    """`source` with its database edited (then digested, counted again) and its manifest edited, signed by
    `signer` (its certificate named in the manifest), or unsigned."""
    parts = members(source)
    db = parts[backup.DATABASE]
    m = dataclasses.asdict(backup.Manifest.from_json(parts[backup.MANIFEST], str(source)))
    if database is not None:
        with tempfile.TemporaryDirectory() as d:
            f = Path(d) / "m.sqlite3"
            f.write_bytes(db)
            conn = sqlite3.connect(f)
            database(conn)
            conn.commit()
            m["rows"] = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in m["rows"]}
            conn.close()
            db = f.read_bytes()
        m["sha256"], m["size"] = hashlib.sha256(db).hexdigest(), len(db)
    if signer is not None:
        m["signer_cert"] = base64.b64encode(signer.cert_der).decode()
    m = manifest(m)
    data = backup.Manifest(**m).to_json()
    parts = {backup.MANIFEST: data, backup.DATABASE: db}
    if sign and signer is not None:
        parts = {backup.MANIFEST: data, backup.SIGNATURE: backup.sign_manifest(signer, data), backup.DATABASE: db}
    return write(out, parts)
