"""`lienthong check-config`: every error of a config in one run, and the parent's reachability said
plainly: not checked, or (--reach) checked against a real node over mutual TLS."""
from __future__ import annotations

import pytest
import yaml

from node.cli import main
from node.harness import nodes
from node.harness.inproc import FAST_REGISTRY
from node.harness.nodes import NodeSpec

P, D = "000.00.00.H53", "000.00.35.H53"
TIMEOUT = 30.0


@pytest.fixture
def pair(pki, tmp_path):
    addresses = {P: f"127.0.0.1:{nodes.free_port()}", D: f"127.0.0.1:{nodes.free_port()}"}
    hp = nodes.prepare_node(tmp_path, pki.ca, NodeSpec(P, "Tỉnh P", extra=FAST_REGISTRY), addresses)
    hd = nodes.prepare_node(tmp_path, pki.ca, NodeSpec(D, "Huyện D", peers={P: P}, parent=P), addresses)
    return hp, hd


def edited(handle, edit):
    data = yaml.safe_load(handle.config.read_text())
    edit(data)
    path = handle.dir / "edited.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def errors(err: str) -> list[str]:
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("lienthong: config error: ")]


def test_three_schema_errors_are_reported_in_one_run(pair, capsys):
    _, hd = pair

    def three(d):
        d["retry"] = {"frist_delay": "1s", "multiplier": "fast"}
        d["messages"] = {"max_size": -5}
        d["api"]["listen"] = "localhost"
    path = edited(hd, three)

    assert main(["check-config", "--config", str(path)]) == 2
    out, err = capsys.readouterr()
    found = errors(err)
    for key in ("api.listen", "retry.frist_delay", "retry.multiplier", "messages.max_size"):
        assert sum(f"{path}: {key}:" in line for line in found) == 1, (key, err)
    assert len(found) == 4 and f"lienthong: 4 errors in {path}" in err and out == ""
    # the order to fix them: as the file declares its keys, an unknown key before the rest of its mapping
    assert [line.split(": ")[3] for line in found] == ["api.listen", "retry.frist_delay", "retry.multiplier",
                                                        "messages.max_size"]


def test_errors_in_the_files_a_config_names_are_reported_together(pair, capsys, tmp_path):
    _, hd = pair
    (hd.dir / "keys" / "node.key").chmod(0o644)
    (hd.dir / "plain-file").write_text("")
    path = edited(hd, lambda d: d["node"].update(data_dir="plain-file/data", parent="000.00.99.H53"))

    assert main(["check-config", "--config", str(path)]) == 2
    found = errors(capsys.readouterr().err)
    assert [line.split(": ")[3] for line in found] == ["tls.key", "node.parent", "node.data_dir"], found
    assert "chmod 600" in found[0] and "cannot create" in found[2]


def test_the_parent_is_said_not_checked_unless_reach_asks_and_then_it_is(pair, capsys):
    hp, hd = pair
    assert main(["check-config", "--config", str(hd.config)]) == 0
    out = capsys.readouterr().out
    assert f"not checked: whether the parent {P} answers at {hp.listen} (--reach dials it" in out

    assert main(["check-config", "--config", str(hd.config), "--reach"]) == 1  # P is not running
    out = capsys.readouterr().out
    assert f"parent {P}: nothing answers at {hp.listen}" in out and "not checked" not in out

    nodes.start(hp)
    try:
        nodes.wait_healthy([hp], TIMEOUT)
        assert main(["check-config", "--config", str(hd.config), "--reach"]) == 0
        out = capsys.readouterr().out
        assert f"parent {P}: {hp.listen} is {P}, reachable over mutual TLS, SERVING" in out
    finally:
        nodes.terminate(hp)
