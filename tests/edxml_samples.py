"""The 13 real edXML packets of ../shared/edxml-samples, vendored here so a clone anywhere
runs the tests; tests/edxml/test_edxml_samples.py checks they still match shared/ when it is there."""
from __future__ import annotations

from pathlib import Path

DIR = Path(__file__).parent / "data" / "edxml-samples"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "edxml-samples"
NAMES = sorted(p.name for p in DIR.glob("*.edxml"))


def raw(name: str) -> bytes:
    return (DIR / name).read_bytes()
