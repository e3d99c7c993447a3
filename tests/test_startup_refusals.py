"""Start-up refuses what cannot work (exit 2, naming the key), and one node per data directory.

The lock and the file modes are checked on a real `lienthong run` process; the other refusals
on Node construction (what `run` does first), which is where they are raised."""
from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from node.config import ConfigError, load_config
from node.harness import nodes
from node.harness.nodes import NodeSpec
from node.identity import certs
from node.runtime import Node

A, P = "000.00.01.H53", "000.00.00.H53"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def handle(pki, tmp_path):
    h = nodes.prepare_node(tmp_path, pki.ca, NodeSpec(A, "Sở A"), {A: "127.0.0.1:0"})
    yield h
    nodes.kill9(h)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_second_run_on_the_same_data_dir_exits_2_naming_it_and_the_pid_and_files_are_private(handle):
    nodes.start(handle)
    nodes.wait_healthy([handle], timeout=30)
    data = handle.dir / "data"

    proc = subprocess.run([sys.executable, "-m", "node", "run", "--config", str(handle.config)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, stdin=subprocess.DEVNULL)

    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert "node.data_dir" in line and str(data) in line and f"pid {handle.pid}" in line, line
    assert nodes.runtime_info(handle)["pid"] == handle.pid  # the running node's file is untouched
    assert mode(data) == 0o700
    for name in ("mailbox.sqlite3", "mailbox.sqlite3-wal", "runtime.json", "lienthong.lock"):
        assert mode(data / name) == 0o600, name
    assert nodes.terminate(handle) == 0


def build(config: Path) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        Node(load_config(config))
    return e.value


def edited(handle, edit) -> Path:
    data = yaml.safe_load(handle.config.read_text())
    edit(data)
    path = handle.dir / "edited.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def test_a_private_key_readable_by_others_is_refused(handle):
    key = handle.dir / "keys" / "node.key"
    key.chmod(0o644)
    e = build(handle.config)
    assert e.path == "tls.key" and "0644" in str(e) and f"chmod 600 {key}" in str(e)


def test_a_garbage_key_is_reported_under_tls_key(handle):
    key = handle.dir / "keys" / "node.key"
    key.write_bytes(b"not a key at all")
    e = build(handle.config)
    assert e.path == "tls.key" and "not a PEM private key" in str(e)


def test_a_seal_key_readable_by_others_or_not_a_key_is_refused_under_sealing_key(handle):
    key = handle.dir / "keys" / "seal.key"
    key.chmod(0o644)
    e = build(handle.config)
    assert e.path == "sealing.key" and "0644" in str(e)
    key.chmod(0o600)
    key.write_bytes(b"not a key at all")
    e = build(handle.config)
    assert e.path == "sealing.key" and "not a PEM P-256 private key" in str(e)


def test_a_retired_seal_key_readable_by_others_or_not_a_key_is_refused_naming_its_place(handle):
    old = handle.dir / "keys" / "seal-old.key"
    old.write_bytes((handle.dir / "keys" / "seal.key").read_bytes())
    old.chmod(0o644)
    with_old = edited(handle, lambda d: d.setdefault("sealing", {}).update(previous_keys=["keys/seal-old.key"]))
    e = build(with_old)
    assert e.path == "sealing.previous_keys[0]" and "0644" in str(e)
    old.chmod(0o600)
    old.write_bytes(b"not a key at all")
    e = build(with_old)
    assert e.path == "sealing.previous_keys[0]" and "not a PEM P-256 private key" in str(e)


def test_a_missing_seal_key_is_made_private_at_start_and_then_kept(handle):
    key = handle.dir / "keys" / "seal.key"
    key.unlink()
    node = Node(load_config(handle.config))
    try:
        assert mode(key) == 0o600
        assert node.seal_key.public_der in node.directory.own_entry().record.record  # published
    finally:
        node.db.close()
        node.data_dir.release()
    made = key.read_bytes()
    node = Node(load_config(handle.config))
    try:
        assert key.read_bytes() == made  # never replaced
    finally:
        node.db.close()
        node.data_dir.release()


def test_a_garbage_certificate_is_reported_under_tls_cert(handle):
    (handle.dir / "keys" / "node.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nxx\n")
    assert build(handle.config).path == "tls.cert"


def reissue(handle, ca_dir: Path, **kw) -> None:
    """Replace the node's key and certificate (the old ones are moved aside)."""
    keys = handle.dir / "keys"
    for f in ("node.key", "node.pem", "node.csr", "seal.key"):  # init never replaces a key, the seal key included
        (keys / f).unlink()
    certs.init_node(keys, A, "Sở A", ca_dir, **kw)


@pytest.mark.parametrize("case, kw, words", [
    ("expired", dict(not_before=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=10), days=2), "expired on"),
    ("not yet valid", dict(not_before=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3)), "not valid until"),
])
def test_an_own_certificate_outside_its_validity_is_refused(handle, pki, case, kw, words):
    reissue(handle, pki.ca, **kw)
    e = build(handle.config)
    assert e.path == "tls.cert" and words in str(e), str(e)


def test_an_own_certificate_from_another_ca_is_refused(handle, pki, tmp_path):
    other = tmp_path / "other-ca"
    certs.init_ca(other, "another CA")
    reissue(handle, other)
    (handle.dir / "keys" / "ca.pem").write_bytes((pki.ca / "ca.pem").read_bytes())  # the anchors stay the real CA
    e = build(handle.config)
    assert e.path == "tls.cert" and "does not chain to tls.trust_anchors" in str(e)


def test_a_parent_without_an_address_is_refused(handle):
    e = build(edited(handle, lambda d: d["node"].pop("root") and d["node"].update(parent=P)))
    assert e.path == "node.parent" and P in str(e) and "peers" in str(e)


def test_a_parent_by_the_code_rule_without_an_address_is_refused_unless_the_node_is_a_root(handle):
    """No node.parent: the code rule's parent (P for A) is the one it must register with; without its address
    it would serve, never registered. node.root: true says it is the top of its tree (the harness's tops)."""
    assert yaml.safe_load(handle.config.read_text())["node"]["root"] is True
    e = build(edited(handle, lambda d: d["node"].pop("root")))
    assert e.path == "peers" and P in str(e) and "node.root: true" in str(e)
    e = build(edited(handle, lambda d: d["node"].update(parent=P)))
    assert e.path == "node.root" and P in str(e)
    # with P's address, no node.root is needed: A registers with P
    fine = edited(handle, lambda d: d["node"].pop("root") and d.update(peers=[{"code": P, "address": "127.0.0.1:9"}]))
    proc = subprocess.run([sys.executable, "-m", "node", "check-config", "--config", str(fine)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr


def test_a_data_dir_that_cannot_be_created_is_refused(handle):
    (handle.dir / "plain-file").write_text("")
    e = build(edited(handle, lambda d: d["node"].update(data_dir="plain-file/data")))
    assert e.path == "node.data_dir" and "cannot create" in str(e)


UNSHARE = shutil.which("unshare")


@pytest.fixture
def unwritable(pki, tmp_path):
    """A node directory, and `run(path)`: `lienthong run` with `path` unwritable to it.

    The tests set the modes that make it so. Root (CI) writes whatever the modes say, so as root the
    node runs in a mount namespace of its own (`unshare --mount`) where `path` is bind-mounted read-only:
    the kernel refuses its writes as it refuses an unprivileged user's (no user switch, so the test
    runs wherever the checkout lies, even under a directory only root may enter)."""
    if os.geteuid() == 0 and UNSHARE is None:
        pytest.skip("running as root without unshare: nothing can keep root from writing")
    h = nodes.prepare_node(tmp_path, pki.ca, NodeSpec(A, "Sở A"), {A: "127.0.0.1:0"})

    def run(path: Path) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "node", "run", "--config", str(h.config)]
        if os.geteuid() == 0:
            cmd = [UNSHARE, "--mount", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', str(path), *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT, stdin=subprocess.DEVNULL)
    h.run = run
    return h


def refused_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    return line


def test_a_data_dir_that_cannot_be_written_is_refused(unwritable):
    data = unwritable.dir / "data"
    data.mkdir(mode=0o500)
    line = refused_line(unwritable.run(data))
    assert "node.data_dir:" in line and "cannot write" in line, line
    assert list(data.iterdir()) == []


def test_a_read_only_mailbox_is_refused(unwritable):
    data = unwritable.dir / "data"
    data.mkdir(mode=0o700)
    (data / "mailbox.sqlite3").write_bytes(b"")
    (data / "mailbox.sqlite3").chmod(0o400)
    line = refused_line(unwritable.run(data / "mailbox.sqlite3"))
    assert "node.data_dir:" in line and "read-only" in line, line
    assert not (data / "runtime.json").exists()


def _drop_root(h) -> None:
    h.config.write_text(h.config.read_text().replace("root: true", "root: false"))


@pytest.mark.parametrize("break_it, key", [
    (lambda h: (h.dir / "keys" / "node.key").chmod(0o644), "tls.key"),
    (_drop_root, "peers"),
    (lambda h: h.config.write_text(h.config.read_text().replace("data_dir:", "data_dir: plain-file/data #")), "node.data_dir"),
])
def test_lienthong_run_itself_exits_2_naming_the_key_and_binds_nothing(handle, break_it, key):
    """The refusals above, through the command an admin (or systemd) runs: one line, exit 2, no port taken."""
    (handle.dir / "plain-file").write_text("")
    break_it(handle)
    proc = subprocess.run([sys.executable, "-m", "node", "run", "--config", str(handle.config)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert f"{key}:" in line, line
    assert not (handle.dir / "data" / "runtime.json").exists()
