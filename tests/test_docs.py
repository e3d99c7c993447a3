"""Docs that tests keep honest: every CLI command is in the README's command table."""
from __future__ import annotations

import argparse
from pathlib import Path

from node.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


def commands(parser: argparse.ArgumentParser, prefix: str = "lienthong") -> list[str]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = commands(sub, f"{prefix} {name}")
                out.extend(nested or [f"{prefix} {name}"])
    return out


def test_every_cli_command_is_documented_in_the_readme():
    text = README.read_text()
    missing = [c for c in commands(build_parser()) if f"`{c}`" not in text]
    assert not missing, f"README.md does not document: {missing}"


def test_readme_gives_the_two_quick_start_commands():
    text = README.read_text()
    assert "scripts/demo" in text and "scripts/test" in text


def options_without_help(parser: argparse.ArgumentParser, prefix: str = "lienthong") -> list[str]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.extend(options_without_help(sub, f"{prefix} {name}"))
        elif isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        elif not (action.help or "").strip() or action.help == argparse.SUPPRESS:
            out.append(f"{prefix} {'/'.join(action.option_strings) or action.dest}")
    return out


def test_every_cli_option_and_argument_has_help_text():
    """`lienthong CMD --help` is where an admin looks first: no option may be a bare name there."""
    missing = options_without_help(build_parser())
    assert not missing, f"without help text: {missing}"
