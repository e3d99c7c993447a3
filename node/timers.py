"""Timers on APScheduler's background scheduler: the node's one source of delayed work."""
from __future__ import annotations

import datetime as dt
from typing import Callable


class SchedulerTimer:
    """`call_later` as one date job per key; a later call with the same key replaces the pending one
    (a hop that failed again reschedules its retry rather than adding a second)."""

    def __init__(self, scheduler, prefix: str = "", wrap: Callable[[Callable[[], None]], Callable[[], None]] | None = None
                 ) -> None:
        self.scheduler = scheduler
        self.prefix = prefix  # a hosted agency's code: its timers and another agency's never share a job id
        self.wrap = wrap  # e.g. run the action with the agency's code in the log lines

    def call_later(self, key: str, delay_s: float, action: Callable[[], None]) -> None:
        if self.wrap is not None:
            action = self.wrap(action)
        self.scheduler.add_job(action, "date", run_date=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=delay_s),
                               id=self.prefix + key, replace_existing=True, misfire_grace_time=None)
