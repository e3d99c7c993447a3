"""The CLI finds node.yaml without --config: $LIENTHONG_CONFIG, then /etc/lienthong/node.yaml (pointed
elsewhere here through node.config_location.DEFAULT_CONFIG, so nothing depends on /etc)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from node import config_location
from node.cli import build_parser, main
from node.config_location import CONFIG_ENV, NoConfig, find_config
from node.harness import nodes
from node.harness.nodes import NodeSpec

A = "000.00.01.H53"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def idle(pki, tmp_path):
    return nodes.prepare_node(tmp_path, pki.ca, NodeSpec(A, "Sở A"), {A: f"127.0.0.1:{nodes.free_port()}"})


def test_the_order_is_flag_then_environment_then_the_default_file(tmp_path):
    default = tmp_path / "etc-node.yaml"
    default.write_text("{}")
    assert find_config("given.yaml", {CONFIG_ENV: "env.yaml"}, default) == "given.yaml"
    assert find_config(None, {CONFIG_ENV: "env.yaml"}, default) == "env.yaml"  # even with the default present
    assert find_config(None, {CONFIG_ENV: ""}, default) == str(default)  # set but empty counts as unset
    assert find_config(None, {}, default) == str(default)
    with pytest.raises(NoConfig) as e:
        find_config(None, {}, tmp_path / "absent.yaml")
    assert "--config" in str(e.value) and CONFIG_ENV in str(e.value) and "absent.yaml" in str(e.value)


def test_check_config_without_flag_reads_the_environment_then_the_default(idle, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(config_location, "DEFAULT_CONFIG", tmp_path / "nowhere.yaml")
    monkeypatch.setenv(CONFIG_ENV, str(idle.config))
    assert main(["check-config"]) == 0
    assert f"{idle.config}: OK — node {A}" in capsys.readouterr().out

    monkeypatch.delenv(CONFIG_ENV)
    assert main(["check-config"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"lienthong: no config: give --config FILE, set ${CONFIG_ENV}, or put it at {tmp_path / 'nowhere.yaml'}"

    monkeypatch.setattr(config_location, "DEFAULT_CONFIG", idle.config)
    assert main(["check-config"]) == 0
    assert f"{idle.config}: OK" in capsys.readouterr().out


def test_a_real_process_takes_the_config_from_the_environment(idle):
    env = {**os.environ, CONFIG_ENV: str(idle.config)}
    proc = subprocess.run([sys.executable, "-m", "node", "check-config"], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, env=env, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert f"OK — node {A}" in proc.stdout


def test_every_config_option_says_where_the_config_is_found_without_it():
    import argparse

    def walk(parser):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from walk(sub)
            elif "--config" in action.option_strings:
                yield parser.prog, action
    found = list(walk(build_parser()))
    assert len(found) >= 20
    for prog, action in found:
        assert not action.required, prog
        assert f"${CONFIG_ENV}" in action.help and "/etc/lienthong/node.yaml" in action.help, prog
