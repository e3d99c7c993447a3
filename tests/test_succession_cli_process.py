"""`lienthong succession issue|list` on real node processes (docs/restructuring.md, "Every step an admin command"):
a province P and a district D under it. P issues a succession for a district below it; the CLI prints it; `list`
shows it on P and, pushed down, on D (text and --json); a succession P may not issue is refused with its reason,
exit 4, and nothing is held."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from node.harness import nodes
from node.harness.inproc import FAST_REGISTRY
from node.harness.nodes import NodeSpec
from node.harness.waiting import EventWaiter
from node.events import SUCCESSION

ROOT = Path(__file__).resolve().parents[1]
P, D, OLD = "000.00.00.H53", "000.00.35.H53", "000.00.36.H53"  # OLD: a district of P's, merged into D
TIMEOUT = 60.0
REASON = "Nghị quyết 1234/NQ-UBTVQH15"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("succession-cli")
    with nodes.parent_and_child(root, nodes.make_ca(root), NodeSpec(P, "Tỉnh P", extra=FAST_REGISTRY),
                                NodeSpec(D, "Huyện D", peers={P: P}, parent=P, extra=FAST_REGISTRY), TIMEOUT) as pair:
        yield pair


def lienthong(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "node", *argv], capture_output=True, text=True, cwd=ROOT,
                          timeout=TIMEOUT)


def test_issue_then_list_on_the_issuer_and_below(tree):
    hp, hd = tree
    assert "(no successions)" in lienthong("succession", "list", "--config", str(hd.config)).stdout
    with EventWaiter(hd.client(TIMEOUT), inbox=False, sent=False, registry=True) as at_d:
        done = lienthong("succession", "issue", "--old", OLD, "--to", D, "--reason", REASON,
                         "--effective", "2025-07-01T00:00:00+07:00", "--config", str(hp.config))
        assert done.returncode == 0, done.stderr
        assert f"succession issued by {P} (list number 1): {OLD} -> {D} from 2025-06-30 17:00:00 UTC" in done.stdout
        at_d.wait(lambda evs: any(e.type == SUCCESSION for e in evs), TIMEOUT)  # pushed down to D
    for h in (hp, hd):
        text = lienthong("succession", "list", "--config", str(h.config))
        assert text.returncode == 0, text.stderr
        [row] = [line for line in text.stdout.splitlines() if OLD in line]
        assert row.split()[:6] == [P, "1", "2025-06-30", "17:00:00", D, OLD] and f"({REASON})" in row
        listed = json.loads(lienthong("succession", "list", "--json", "--config", str(h.config)).stdout)
        assert [(s["issuer"], s["number"], s["oldCodes"], s["successor"], s["reason"]) for s in listed] == [
            (P, "1", [OLD], D, REASON)]  # a 64-bit number, as a string (proto3 JSON)


def test_a_succession_the_node_may_not_issue_is_refused_with_its_reason(tree):
    _, hd = tree
    refused = lienthong("succession", "issue", "--old", P, "--to", D, "--reason", REASON, "--config", str(hd.config))
    assert refused.returncode == 4, (refused.stdout, refused.stderr)
    assert "SUCCESSION_NOT_COMPETENT" in refused.stderr
    listed = json.loads(lienthong("succession", "list", "--json", "--config", str(hd.config)).stdout)
    assert all(s["issuer"] != D for s in listed)
    bad_time = lienthong("succession", "issue", "--old", OLD, "--to", D, "--reason", REASON,
                         "--effective", "2025-07-01T00:00:00", "--config", str(hd.config))
    assert bad_time.returncode == 2 and "has no zone" in bad_time.stderr
