"""requirements.lock is what the suite runs with, and it is not stale against pyproject.toml.

A new grpcio-tools on PyPI once broke every fresh clone (the generated code named another
version): installs now come from the lock only, and these tests keep the lock honest."""
from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def _lock_inputs():
    spec = importlib.util.spec_from_file_location("lock_inputs", ROOT / "scripts" / "lock_inputs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pins() -> dict[str, tuple[str, str | None, int]]:
    """name -> (version, marker, number of hashes)"""
    pins: dict[str, tuple[str, str | None, int]] = {}
    current = None
    for line in LOCK.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith(" "):
            assert line.strip().startswith("--hash=sha256:"), f"unexpected line in the lock: {line!r}"
            name, (version, marker, n) = current, pins[current]
            pins[name] = (version, marker, n + 1)
            continue
        m = PIN.match(line)
        assert m, f"every package in the lock is pinned with ==: {line!r}"
        current = canonicalize_name(m.group(1))
        pins[current] = (m.group(2), m.group(3), 0)
    return pins


def test_lock_is_made_from_this_pyproject():
    header = LOCK.read_text().splitlines()[:5]
    recorded = next((line.split(":", 1)[1].strip() for line in header if line.startswith("# inputs:")), None)
    assert recorded == _lock_inputs().digest(ROOT / "pyproject.toml"), (
        "requirements.lock is stale against pyproject.toml: run scripts/lock and commit both")


def test_every_pin_has_hashes():
    pins = _pins()
    assert pins
    assert not [name for name, (_, _, n) in pins.items() if n == 0], "scripts/_env.sh installs with --require-hashes"


def test_every_range_in_pyproject_is_pinned_within_it():
    inputs = _lock_inputs().inputs(ROOT / "pyproject.toml")
    extras = inputs["optional-dependencies"]
    wanted = [*inputs["dependencies"], *extras["dev"], *extras["harness"], *inputs["build-system"]]
    pins = _pins()
    for text in wanted:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is in pyproject.toml but not in requirements.lock: run scripts/lock"
        assert req.specifier.contains(pins[name][0], prereleases=True), (
            f"{req.name}=={pins[name][0]} in the lock is outside pyproject.toml's {req.specifier}: run scripts/lock")


def test_the_venv_is_the_lock():
    """What runs this suite is exactly what the lock pins (for this platform's markers)."""
    wrong = {}
    for name, (version, marker, _) in _pins().items():
        if marker and not Marker(marker).evaluate():
            continue
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (installed, version)
    assert not wrong, f"installed vs locked: {wrong}; scripts/_env.sh installs the lock"


def test_env_script_installs_the_lock_with_hashes():
    script = (ROOT / "scripts" / "_env.sh").read_text()
    assert "--require-hashes --no-deps -r requirements.lock" in script
    assert "--no-deps --no-build-isolation -e ." in script


def test_gen_proto_runs_in_the_locked_venv():
    script = (ROOT / "scripts" / "gen-proto").read_text()
    assert 'source "$(dirname "$0")/_env.sh"' in script and 'PY="$VENV_PY"' in script


RUNTIME_FILES = ["nspawn.pid", "var/cluster-small/cluster.json", "data/mailbox.sqlite3", "data/mailbox.sqlite3-wal",
                 "keys/node.key", "keys/node.pem", "keys/node.csr", "ca/ca.crl", "node.token", "cluster.json",
                 "data/lienthong.lock", "backups/lienthong-000.00.00.G22-20261207T000000Z.tar", "node.log"]


def test_runtime_files_cannot_be_committed_by_accident():
    import subprocess
    if not (ROOT / ".git").exists():
        import pytest
        pytest.skip("not a git checkout")
    proc = subprocess.run(["git", "check-ignore", "--no-index", *RUNTIME_FILES], cwd=ROOT, capture_output=True, text=True)
    ignored = set(proc.stdout.split())
    assert ignored == set(RUNTIME_FILES), f"not ignored by .gitignore: {sorted(set(RUNTIME_FILES) - ignored)}"
    tracked = subprocess.run(["git", "ls-files", "-ci", "--exclude-standard"], cwd=ROOT, capture_output=True,
                             text=True).stdout.split()
    assert not tracked, f"runtime files committed: {tracked}"
