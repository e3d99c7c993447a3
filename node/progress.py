"""A progress line for long commands (backup, restore, audit verify), on a terminal only.

Written to stderr and rewritten in place ("\\r"), at most a few times a second, and wiped when the
command is done, so that what the command prints on stdout is all that stays. When stderr is not a
terminal (a timer, a pipe, a log file) nothing at all is written: no half-lines in a journal.
"""
from __future__ import annotations

import io
import sys
import time
from typing import Callable, Iterable, Iterator, TextIO, TypeVar

T = TypeVar("T")
MB = 1 << 20


class Progress:
    def __init__(self, label: str, stream: TextIO | None = None, *, every_s: float = 0.2,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.every_s, self.clock = label, every_s, clock
        self.stream = stream if stream is not None else sys.stderr
        self.on = _is_terminal(self.stream)
        self._shown_at = float("-inf")
        self._width = 0

    def stage(self, text: str) -> None:
        """Say what is being done now (always shown at once)."""
        self._show(text, force=True)

    def amount(self, text: str, done: int, total: int, *, unit: str = "") -> None:
        """`done` of `total` (bytes when unit is "MB"), throttled; the last step is always shown."""
        if not self.on:
            return
        if unit == "MB":
            figures = f"{done / MB:.1f}/{total / MB:.1f} MB"
        else:
            figures = f"{done}/{total}{' ' + unit if unit else ''}"
        pct = f" ({100 * done // total}%)" if total > 0 else ""
        self._show(f"{text} {figures}{pct}", force=done >= total)

    def counting(self, text: str, items: Iterable[T], total: int, *, unit: str = "") -> Iterator[T]:
        """`items`, passed through, counted on the line as they go."""
        done = 0
        for item in items:
            yield item
            done += 1
            self.amount(text, done, total, unit=unit)

    def done(self) -> None:
        """Wipe the line: the command's own output follows on a clean line."""
        if self.on and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.done()

    def _show(self, text: str, force: bool = False) -> None:
        if not self.on:
            return
        now = self.clock()
        if not force and now - self._shown_at < self.every_s:
            return
        self._shown_at = now
        line = f"{self.label}: {text}"
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = max(self._width, len(line))


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


SILENT = Progress("", io.StringIO())  # for library callers (tests, the harness): no line at all
