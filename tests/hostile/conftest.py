"""The hostile world (tests/hostile/world.py): five node processes and the insiders, once for this package."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ is not a package (importlib mode)
from hostile.world import hostile_world  # noqa: E402


@pytest.fixture(scope="package")
def world(tmp_path_factory):
    with hostile_world(tmp_path_factory.mktemp("hostile")) as w:
        yield w


def pytest_terminal_summary(terminalreporter):
    from hostile.fuzzing import REACHED, TRIED
    if TRIED:
        terminalreporter.write_sep("-", f"fuzzing: {sum(TRIED.values())} inputs tried, no escapes")
        for target, n in sorted(TRIED.items()):
            terminalreporter.write_line(f"  {n:6d}  {target}")
        for target, outcomes in sorted(REACHED.items()):
            terminalreporter.write_line(f"  {target} outcomes: " + ", ".join(
                f"{what} {n}" for what, n in sorted(outcomes.items(), key=lambda kv: -kv[1])))
