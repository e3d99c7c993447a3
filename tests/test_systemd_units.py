"""The shipped systemd units: hardened enough (`systemd-analyze security` 3 or less, issue 12) and without
the ExecStartPre that would defeat RestartPreventExitStatus=2 (seen under a real systemd 252: a config
error in ExecStartPre is restarted until the start limit, one in the main process is not)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
UNITS = ["lienthong.service", "lienthong-backup.service"]
ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("unit", UNITS)
def test_the_unit_scores_3_or_less_in_systemd_analyze_security(unit):
    proc = subprocess.run([ANALYZE, "security", "--offline=yes", f"./{unit}"], cwd=SCRIPTS, capture_output=True,
                          text=True, timeout=60)
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", proc.stdout)
    assert found, proc.stdout[-500:] + proc.stderr[-500:]
    assert float(found.group(1)) <= 3.0, proc.stdout[-2000:]


def test_the_node_unit_checks_the_config_in_its_main_process():
    text = (SCRIPTS / "lienthong.service").read_text()
    assert not re.search(r"^ExecStartPre=", text, re.M)
    assert re.search(r"^ExecStart=\S+ run --config ", text, re.M)
    assert re.search(r"^RestartPreventExitStatus=2$", text, re.M) and re.search(r"^Type=notify$", text, re.M)


def test_the_node_unit_raises_the_open_files_limit_well_above_systemds_default():
    """At the default 1,024, idle connections to the peer port once took every descriptor, SQLite's too."""
    found = re.search(r"^LimitNOFILE=(\d+)(?::(\d+))?$", (SCRIPTS / "lienthong.service").read_text(), re.M)
    assert found and int(found.group(1)) >= 65536 and int(found.group(2) or found.group(1)) >= 65536
