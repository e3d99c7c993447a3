"""What the fuzz targets tried in this run (test_fuzz.py counts, conftest.py prints)."""
from __future__ import annotations

TRIED: dict[str, int] = {}               # target -> inputs tried
REACHED: dict[str, dict[str, int]] = {}  # target -> outcome (a reason, or "accepted") -> inputs
