"""The digest of what requirements.lock was made from: pyproject.toml's requires-python, dependencies,
optional dependencies and build requirements, normalized. scripts/lock writes it into the lock's
header; tests/test_lock.py recomputes it, so an edited range without a new lock fails the suite."""
from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from pathlib import Path


def inputs(pyproject: Path) -> dict:
    data = tomllib.loads(pyproject.read_text())
    project = data["project"]
    return {
        "requires-python": project.get("requires-python", ""),
        "dependencies": sorted(project.get("dependencies", [])),
        "optional-dependencies": {k: sorted(v) for k, v in sorted(project.get("optional-dependencies", {}).items())},
        "build-system": sorted(data["build-system"]["requires"]),
    }


def digest(pyproject: Path) -> str:
    blob = json.dumps(inputs(pyproject), sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    print(digest(Path(sys.argv[1]) if len(sys.argv) > 1 else root / "pyproject.toml"))
