"""The footprint harness (node/harness/footprint.py, scripts/bench-footprint) runs: a province and its
communes (identifier codes, explicit parent) built and started in one process, every commune registered,
the figures per agency reported, and everything closed again."""
from __future__ import annotations

import json
import os

from node.harness import footprint


def test_three_agencies_are_measured_registered_and_stopped(tmp_path):
    fds_before = len(os.listdir("/proc/self/fd"))
    result = footprint.measure(tmp_path, 3, idle_s=0.2, trace=False)
    assert result["agencies"] == 3 and result["started"]["all_registered"]
    assert result["built"]["fds"] > result["baseline"]["fds"]  # each mailbox is open once built
    assert result["started"]["start_ms_per_agency"] > 0 and result["idle"]["seconds"] >= 0.2
    assert isinstance(result["idle"]["jobs"], dict)
    assert set(result["started"]["servers_and_schedulers"]) == {"mb", "os_threads", "fds"}
    json.dumps(result)  # what the script prints
    assert len(os.listdir("/proc/self/fd")) <= fds_before + 2  # the nodes' mailboxes and ports are closed


def test_codes_past_the_qcvn_form_are_identifiers_under_the_province():
    codes = footprint.codes(1000)
    assert codes[0] == footprint.PROVINCE and codes[1] == "H19.26001" and len(set(codes)) == 1000
