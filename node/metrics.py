"""Prometheus metrics of one node (`metrics.listen`; off by default, loopback by default).

Two kinds, in one registry of the node's own (never the process-global one):

- **counters the exchange moves as it works** (`Recorder`, given to the hop senders, the
  dispatcher and intake, which call it after their commit): envelopes handed over with a
  verified receipt per next hop, refusals and failures by reason (`direction="out"`: ours,
  refused by a next hop, expired or purged; `direction="in"`: envelopes we refused), the
  delivery latency (an envelope's creation to its next hop's receipt), batch sizes, and how long
  each stage of a batch took, sent or received (`stages`: where a document's time goes at this hop);
- **what the mailbox says when scraped** (`MailboxCollector`): queue depth, age of the oldest
  envelope, parked envelopes, failures in a row and hold per next hop, days left on the node's
  certificate, the CRL in use, the latest audit checkpoint, the version (`lienthong_build_info`),
  registered children and whether each is reachable, whether the parent has us registered,
  statuses returned by this agency and to it, per status code, and the health status.

Every name is listed, with its labels, in docs/metrics.md (tests/test_metrics_process.py holds the
two to each other). The counters start at zero with
each process (Prometheus's `rate()` and `increase()` handle the reset); the status counts come
from the mailbox, so they carry over restarts.

This module is what the exchange sees (`Recorder`, and `NO_METRICS` when metrics are off);
the Prometheus side is `node.metrics_prometheus`, imported only when `metrics.listen` is set,
so a node without metrics never loads prometheus_client.
"""
from __future__ import annotations

from typing import Protocol


class Recorder(Protocol):
    """What the exchange tells the metrics (a no-op without an endpoint)."""

    def delivered(self, hop: str, latencies_s: list[float]) -> None: ...
    def sent_batch(self, hop: str, size: int) -> None: ...
    def gave_up(self, reason: str) -> None: ...
    def received(self, size: int, refused_reasons: list[str]) -> None: ...
    def stages(self, direction: str, seconds: dict[str, float]) -> None: ...


# the stages of one batch, timed where they run (node.exchange.hop for "out", node.exchange.intake for "in")
OUT_STAGES = ("claim", "seal", "deliver", "receipts", "record")
IN_STAGES = ("check", "prepare", "custody")


class NoMetrics:
    def delivered(self, hop: str, latencies_s: list[float]) -> None:
        pass

    def sent_batch(self, hop: str, size: int) -> None:
        pass

    def gave_up(self, reason: str) -> None:
        pass

    def received(self, size: int, refused_reasons: list[str]) -> None:
        pass

    def stages(self, direction: str, seconds: dict[str, float]) -> None:
        pass


NO_METRICS = NoMetrics()
