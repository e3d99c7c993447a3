"""The generated code in node/pb is what proto/ produces today (as scripts/gen-proto runs protoc)."""
from __future__ import annotations

import difflib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROTOS = sorted((ROOT / "proto" / "node" / "pb").glob("*.proto"))
SUFFIXES = ("_pb2.py", "_pb2_grpc.py", "_pb2.pyi")
GENERATED = [f"{p.stem}{s}" for p in PROTOS for s in SUFFIXES]
HINT = "node/pb is stale: run scripts/gen-proto and commit the result"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    """Run protoc exactly as scripts/gen-proto does, into a temporary directory."""
    out = tmp_path_factory.mktemp("pb")
    cmd = [sys.executable, "-m", "grpc_tools.protoc", "-Iproto", f"--python_out={out}", f"--pyi_out={out}",
           f"--grpc_python_out={out}", *(str(p.relative_to(ROOT)) for p in PROTOS)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"protoc failed:\n{proc.stderr}"
    return out / "node" / "pb"


def test_gen_proto_script_is_what_this_test_runs():
    script = (ROOT / "scripts" / "gen-proto").read_text()
    assert ('-m grpc_tools.protoc -Iproto --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" '
            "proto/node/pb/*.proto") in script


def test_there_are_protos():
    assert {p.name for p in PROTOS} >= {"envelope.proto", "exchange.proto", "mailbox.proto"}


@pytest.mark.parametrize("name", GENERATED)
def test_generated_file_is_fresh(fresh, name):
    committed = ROOT / "node" / "pb" / name
    assert committed.exists(), f"node/pb/{name} is missing: {HINT}"
    new, old = (fresh / name).read_bytes(), committed.read_bytes()
    if new != old:
        diff = "".join(list(difflib.unified_diff(
            old.decode(errors="replace").splitlines(keepends=True), new.decode(errors="replace").splitlines(keepends=True),
            f"node/pb/{name} (committed)", f"node/pb/{name} (from proto/)"))[:40])
        pytest.fail(f"node/pb/{name} differs from what proto/ generates: {HINT}\n{diff}")


def test_no_generated_file_without_a_proto(fresh):
    produced = {p.name for p in fresh.iterdir() if p.is_file()}
    assert produced == set(GENERATED)
    committed = {p.name for p in (ROOT / "node" / "pb").iterdir() if p.name.endswith(SUFFIXES)}
    orphans = committed - produced
    assert not orphans, f"generated files with no .proto in proto/: {sorted(orphans)}: {HINT}"
