"""scripts/demo as a newcomer runs it (issue 17, demo): its help, then the whole run in a process of its own."""
from __future__ import annotations

import re
import subprocess
import sys

from node.harness.demo import RECIPIENT, SENDER


def demo(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "node.harness.demo", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_help_says_what_it_does_and_starts_nothing():
    got = demo("--help", timeout=60)
    assert got.returncode == 0 and "usage: scripts/demo" in got.stdout
    assert "15-node" in got.stdout and "temporary folder" in got.stdout and "lienthong-demo" not in got.stdout


def test_the_demo_shows_progress_words_and_tells_handed_over_from_delivered():
    got = demo()
    assert got.returncode == 0, got.stdout + got.stderr
    out = got.stdout
    assert not re.search(r"\b(True|False)\b", out), out  # words, not Python booleans
    assert re.search(r"… \d+/15 nodes started and healthy", out) and "… CA, 15 keys" in out  # progress while it sets up
    assert f"{SENDER}: handed to its first hop" in out and "delivered to the recipient" in out
    assert out.index("handed to its first hop") < out.index("delivered to the recipient")
    assert "sender signature verified: yes" in out and "then down): yes" in out
    assert "lienthong-demo-" not in out  # the temporary folder is removed at the end: it is not named
    assert "stopped 15 nodes: exit status 0" in out
    assert RECIPIENT in out
