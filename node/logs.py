"""Log lines an operator can trust years later: ISO 8601 time with its zone, as text or one JSON object a line."""
from __future__ import annotations

import datetime as dt
import json
import logging

FORMATS = ("text", "json")


def _time(record: logging.LogRecord) -> str:
    return dt.datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds")


class TextFormatter(logging.Formatter):
    def __init__(self, code: str) -> None:
        super().__init__(f"%(asctime)s {code} %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record, datefmt=None) -> str:  # noqa: N802 - logging's name
        return _time(record)


class JsonFormatter(logging.Formatter):
    def __init__(self, code: str) -> None:
        super().__init__()
        self.code = code

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": _time(record), "node": self.code, "level": record.levelname, "logger": record.name,
               "message": record.getMessage()}
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure(code: str, level: str, fmt: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(code) if fmt == "json" else TextFormatter(code))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
