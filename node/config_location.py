"""Where the CLI finds node.yaml when `--config` is not given: `$LIENTHONG_CONFIG`, then
/etc/lienthong/node.yaml (where docs/deploy.md and the systemd unit put it).

An admin on the node's machine types `lienthong queues`, not the path every time. The order is
fixed and said in every `--config` help: an explicit `--config` wins, then the environment (a
second node on one machine, a test), then the system-wide file. `DEFAULT_CONFIG` is read at call
time, so tests point it elsewhere instead of depending on /etc."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

CONFIG_ENV = "LIENTHONG_CONFIG"
DEFAULT_CONFIG = Path("/etc/lienthong/node.yaml")
HELP = f"(default: ${CONFIG_ENV}, else {DEFAULT_CONFIG})"


class NoConfig(Exception):
    """Neither --config, nor $LIENTHONG_CONFIG, nor the default file."""


def find_config(given: str | None, environ: Mapping[str, str] | None = None, default: Path | None = None) -> str:
    """The config file to use: `given` (--config), else $LIENTHONG_CONFIG (used as set, even if that file is
    missing: load_config then names it), else DEFAULT_CONFIG if it exists."""
    if given:
        return given
    environ = os.environ if environ is None else environ
    if environ.get(CONFIG_ENV):
        return environ[CONFIG_ENV]
    default = DEFAULT_CONFIG if default is None else default
    if default.exists():
        return str(default)
    raise NoConfig(f"no config: give --config FILE, set ${CONFIG_ENV}, or put it at {default}")
