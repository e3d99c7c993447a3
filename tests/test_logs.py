"""Log lines: ISO 8601 time with its zone, as text or one JSON object a line (for log shippers)."""
from __future__ import annotations

import datetime as dt
import json
import logging

import pytest

from node import logs


@pytest.fixture
def restore_root_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_node_level_logger_message_and_a_zoned_time(restore_root_logging, capsys):
    logs.configure("000.00.01.H53", "INFO", "json")
    logging.getLogger("lienthong").info("link to %s is back", "000.00.00.H53")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("lienthong.incident").exception("failed; correlation id %s", "abc")
    first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert (first["node"], first["level"], first["logger"], first["message"]) == (
        "000.00.01.H53", "INFO", "lienthong", "link to 000.00.00.H53 is back")
    assert dt.datetime.fromisoformat(first["time"]).utcoffset() is not None
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exception"]


def test_text_lines_start_with_a_zoned_iso_time(restore_root_logging, capsys):
    logs.configure("000.00.01.H53", "INFO", "text")
    logging.getLogger("lienthong").warning("hello")
    line = capsys.readouterr().err.strip()
    stamp, code, level, rest = line.split(" ", 3)
    assert dt.datetime.fromisoformat(stamp).utcoffset() is not None
    assert (code, level, rest) == ("000.00.01.H53", "WARNING", "lienthong: hello")
