"""A bounded set of sender threads shared by every next hop of every agency in a process.

A next hop is a task (its HopSender's attempt), not threads of its own: waking it queues it
unless it already has its window of attempts queued or running. A worker takes the next
task round-robin across owners (agencies), then across that owner's hops, runs one attempt
and, when the attempt made progress, queues the hop again at the back (as Synapse's
destination wake-up queue: no hop drains its whole queue ahead of the others). Limits:

- a hop holds at most WINDOW workers (node.exchange.hop), and one while its last attempt
  failed: a peer that hangs until the deadline holds one worker, not all;
- an owner holds at most `per_owner` workers (half the pool in a shared pool): an agency
  with thousands of hops, or several peers that hang, cannot starve another agency;
- waking every hop at once (start-up, the sweep) only queues them: the pool drains the queue.

Threads start on demand, up to `workers`, and stay: a node with one next hop runs at most
WINDOW of them, a host with a thousand agencies `workers`.
"""
from __future__ import annotations

import enum
import logging
import threading
import time
from collections import deque
from typing import Callable

from ..logs import serving_as

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 8


class Step(enum.Enum):
    """What one run of a task did; the pool queues it again only after AGAIN."""
    AGAIN = "again"    # progress was made: look again (at the back of the queue)
    DONE = "done"      # nothing to do now; the next wake brings it back
    FAILED = "failed"  # the hop failed (it backs off): one worker at a time until it makes progress again


class SendPool:
    def __init__(self, workers: int = DEFAULT_WORKERS, *, window: int, per_owner: int | None = None,
                 name: str = "send") -> None:
        if workers < 1 or window < 1:
            raise ValueError("a pool needs at least one worker and a window of at least one")
        self.workers, self.window, self.name = workers, window, name
        self.per_owner = per_owner or max(1, workers // 2)
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)      # workers wait here for a task
        self._finished = threading.Condition(self._lock)  # stop() waits here for runs in flight
        self._ready: deque[Owner] = deque()  # owners with queued runs, each once, in turn order
        self._threads: list[threading.Thread] = []
        self._free = 0      # workers not running a task
        self._queued = 0    # runs queued over all tasks
        self._running = 0   # runs in flight over all tasks
        self._in_flight: set[Task] = set()
        self._stopping = False

    def owner(self, name: str) -> Owner:
        """The share of one agency (each Dispatcher has its own); `name`: its code, which its attempts' log lines name."""
        return Owner(self, name)

    def threads(self) -> int:
        with self._lock:
            return len(self._threads)

    def stop(self, timeout: float = 10.0) -> list[str]:
        """The process stops: drop what is queued, wait (at most `timeout` in all) for the runs in flight,
        end the workers; returns the tasks still running."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._stopping = True
            for owner in self._ready:
                owner._drop()
            self._ready.clear()
            self._queued = 0
            self._work.notify_all()
            while self._running and (left := deadline - time.monotonic()) > 0:
                self._finished.wait(left)
            threads = list(self._threads)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            return sorted(f"{t.owner.name}/{t.name}" for t in self._in_flight)

    # ---- under the lock ---------------------------------------------------------------

    def _enqueue(self, task: Task, runs: int) -> None:
        owner = task.owner
        if not task.queued:
            owner._hops.append(task)
            if len(owner._hops) == 1:
                self._ready.append(owner)
        task.queued += runs
        self._queued += runs
        while self._free < self._queued and len(self._threads) < self.workers:
            t = threading.Thread(target=self._serve, name=f"{self.name}-{len(self._threads)}", daemon=True)
            self._threads.append(t)
            self._free += 1
            t.start()
        self._work.notify(runs)

    def _pick(self) -> Task | None:
        """The next run, round-robin over owners below their share, then over each owner's hops."""
        for _ in range(len(self._ready)):
            owner = self._ready.popleft()
            if owner._running >= self.per_owner:
                self._ready.append(owner)  # its turn comes again when one of its runs ends
                continue
            task = owner._hops.popleft()
            task.queued -= 1
            self._queued -= 1
            if task.queued:
                owner._hops.append(task)
            if owner._hops:
                self._ready.append(owner)
            task.running += 1
            self._in_flight.add(task)
            owner._running += 1
            self._running += 1
            self._free -= 1
            return task
        return None

    def _finish(self, task: Task, step: Step, wakes: int) -> None:
        owner = task.owner
        task.running -= 1
        if not task.running:
            self._in_flight.discard(task)
        owner._running -= 1
        self._running -= 1
        self._free += 1
        if not self._stopping and not owner._stopped:
            was_failing, task.failing = task.failing, step is Step.FAILED or (task.failing and step is Step.DONE)
            room = task.window() - task.running - task.queued
            if step is Step.AGAIN and was_failing:
                runs = room  # the hop answers again: drained at full speed
            elif step is Step.AGAIN or (task.wakes != wakes and not task.queued):
                runs = min(1, room)  # progress, or a wake that came while this run could no longer see it
            else:
                runs = 0
            if runs > 0:
                self._enqueue(task, runs)
        self._finished.notify_all()  # Owner.stop and settle wait for this

    def _serve(self) -> None:
        """A worker: after each run it picks again itself, so a share freed by its run is used at once."""
        with self._lock:
            while True:
                task = None
                while not self._stopping and (task := self._pick()) is None:
                    self._work.wait()
                if task is None:
                    self._free -= 1
                    return
                wakes = task.wakes
                self._lock.release()
                try:
                    with serving_as(task.owner.name):  # the agency's attempt: its lines name it, on a host too
                        try:
                            step = task.run()
                        except Exception:  # a task's own errors are its business; the worker serves the next one
                            log.exception("send task %s of %s failed unexpectedly", task.name, task.owner.name)
                            step = Step.FAILED
                finally:
                    self._lock.acquire()
                self._finish(task, step, wakes)


class Owner:
    """One agency's share of a pool: its hops as tasks, and its own stop."""

    def __init__(self, pool: SendPool, name: str) -> None:
        self.pool, self.name = pool, name
        self._hops: deque[Task] = deque()  # tasks with queued runs, each once
        self._running = 0
        self._stopped = False

    def task(self, name: str, run: Callable[[], Step]) -> Task:
        """A next hop of this owner; it costs nothing until woken."""
        return Task(self, name, run)

    def running(self) -> int:
        with self.pool._lock:
            return self._running

    def settle(self, timeout: float) -> bool:
        """Wait (at most `timeout`) until none of this owner's runs is queued or in flight; True if so."""
        with self.pool._lock:
            return self.pool._finished.wait_for(lambda: not self._running and not self._hops, timeout)

    def stop(self, timeout: float = 10.0) -> list[str]:
        """This agency stops: its queued runs are dropped, no wake queues one again; waits (at most
        `timeout`) for its runs in flight, whose outcome is committed; returns the hops still busy."""
        pool = self.pool
        deadline = time.monotonic() + timeout
        with pool._lock:
            self._stopped = True
            if self._hops:
                pool._ready.remove(self)
                pool._queued -= self._drop()
            while self._running and (left := deadline - time.monotonic()) > 0:
                pool._finished.wait(left)
            return sorted(t.name for t in pool._in_flight if t.owner is self)

    def _drop(self) -> int:
        dropped = sum(t.queued for t in self._hops)
        for t in self._hops:
            t.queued = 0
        self._hops.clear()
        return dropped


class Task:
    """One next hop in the pool: at most its window of runs queued or running at once."""

    def __init__(self, owner: Owner, name: str, run: Callable[[], Step]) -> None:
        self.owner, self.name, self.run = owner, name, run
        self.queued = 0
        self.running = 0
        self.wakes = 0         # every wake counts; a run that ends with nothing to do looks again if one came
        self.failing = False   # its last attempt failed: one run at a time

    def window(self) -> int:
        return 1 if self.failing else self.owner.pool.window

    def wake(self) -> None:
        """Look at this hop's queue soon: fill its window with queued runs (a no-op if it is full)."""
        pool = self.owner.pool
        with pool._lock:
            if pool._stopping or self.owner._stopped:
                return
            self.wakes += 1
            room = self.window() - self.running - self.queued
            if room > 0:
                pool._enqueue(self, room)
