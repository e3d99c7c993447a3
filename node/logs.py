"""Log lines an operator can trust years later: ISO 8601 time with its zone, as text or one JSON object a line.

Whatever a line quotes may come from outside (a peer's name or refusal, a client's field, an
admin's purge reason): the formatters escape the whole message, every structured field and every
line of a traceback (node.escaping), so no outside text can start a line of its own or reach a
terminal as a control sequence. A call site names what the line is about with `extra=fields(...)`
(agency, hop, message id, reason, config key); JSON lines carry them as keys of their own, for log shippers.
"""
from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import enum
import json
import logging
import sys
from typing import TextIO

from .escaping import escape

FORMATS = ("text", "json")
FIELDS = ("agency", "hop", "message_id", "reason", "key")  # what a line is about (key: a config key), as JSON keys


# the hosted agency whose call or job this thread runs (node/host/): printed as the line's node code
_SERVING: contextvars.ContextVar[str | None] = contextvars.ContextVar("lienthong_agency", default=None)


def serving() -> str | None:
    """The code of the hosted agency whose work this thread does now (None: the host's own, or one agency)."""
    return _SERVING.get()


@contextlib.contextmanager
def serving_as(code: str | None):
    """Lines logged in the block name `code` (set and put back, as api.clients.acting: a streamed call's
    generator may be closed from another context); None: left as it is (a node of its own)."""
    if not code:
        yield
        return
    before = _SERVING.get()
    _SERVING.set(code)
    try:
        yield
    finally:
        _SERVING.set(before)


def fields(**named: object) -> dict[str, str]:
    """`extra=` for a log call: the agency, next hop, message id and reason the line is about (empty ones left out)."""
    unknown = set(named) - set(FIELDS)
    if unknown:
        raise TypeError(f"not a log field: {', '.join(sorted(unknown))} (fields: {', '.join(FIELDS)})")
    return {k: v.name if isinstance(v, enum.Enum) else str(v) for k, v in named.items() if v}


def _time(record: logging.LogRecord) -> str:
    return dt.datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds")


def _traceback(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    """The traceback, each line escaped and indented: an exception's message cannot start a log line."""
    text = formatter.formatException(record.exc_info)
    return "\n".join("    " + escape(line) for line in text.splitlines())


class TextFormatter(logging.Formatter):
    def __init__(self, code: str) -> None:
        super().__init__()
        self.code = code

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_time(record)} {serving() or self.code} {record.levelname} {record.name}: {escape(record.getMessage())}"
        if record.exc_info:
            line += "\n" + _traceback(self, record)
        return line


class JsonFormatter(logging.Formatter):
    def __init__(self, code: str) -> None:
        super().__init__()
        self.code = code

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": _time(record), "node": serving() or self.code, "level": record.levelname, "logger": record.name,
               "message": escape(record.getMessage())}
        for name in FIELDS:
            value = getattr(record, name, None)
            if value:
                out[name] = escape(value)
        if record.exc_info:
            out["exception"] = _traceback(self, record)
        return json.dumps(out, ensure_ascii=False)


def formatter(code: str, fmt: str) -> logging.Formatter:
    return JsonFormatter(code) if fmt == "json" else TextFormatter(code)


def configure(code: str, level: str, fmt: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(code, fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def error_line(message: str, fmt: str, *, logger: str = "lienthong", code: str = "-", stream: TextIO | None = None,
               **named: object) -> None:
    """One error before logging is set up (a config error of `run`), in the format asked for."""
    record = logging.LogRecord(logger, logging.ERROR, "", 0, "%s", (message,), None)
    record.__dict__.update(named)
    print(formatter(code, fmt).format(record), file=stream or sys.stderr)
