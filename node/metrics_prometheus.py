"""The Prometheus side of node.metrics: the node's own registry, its counters, and the collector
that reads the mailbox when scraped. Imported only when `metrics.listen` is set."""
from __future__ import annotations

import logging
from typing import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 86400)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


class NodeMetrics:
    """The node's registry and its counters (a Recorder)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.deliveries = Counter("lienthong_deliveries", "Envelopes handed over to a next hop with a verified receipt",
                                  ["hop"], registry=r)
        self.rejections = Counter("lienthong_rejections",
                                  "Envelopes refused or given up, by reason: direction=out ours (refused by a next hop,"
                                  " expired, purged), direction=in those we refused", ["direction", "reason"], registry=r)
        self.accepted = Counter("lienthong_accepted", "Envelopes this node took custody of from peers", registry=r)
        self.latency = Histogram("lienthong_delivery_latency_seconds",
                                 "From an envelope's creation to its next hop's receipt (queueing and retries included)",
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.batches = Histogram("lienthong_batch_size", "Envelopes per batch: direction=out sent, direction=in received",
                                 ["direction"], buckets=BATCH_BUCKETS, registry=r)
        self.stage_seconds = Histogram(
            "lienthong_batch_stage_seconds", "How long each stage of a batch took: direction=out claim, seal,"
            " deliver, receipts, record; direction=in check, prepare, custody", ["direction", "stage"],
            buckets=STAGE_BUCKETS, registry=r)

    # ---- Recorder ----------------------------------------------------------------

    def delivered(self, hop: str, latencies_s: list[float]) -> None:
        if latencies_s:
            self.deliveries.labels(hop).inc(len(latencies_s))
            for s in latencies_s:
                self.latency.observe(max(0.0, s))

    def sent_batch(self, hop: str, size: int) -> None:
        self.batches.labels("out").observe(size)

    def gave_up(self, reason: str) -> None:
        self.rejections.labels("out", reason).inc()

    def received(self, size: int, refused_reasons: list[str]) -> None:
        self.batches.labels("in").observe(size)
        if size > len(refused_reasons):
            self.accepted.inc(size - len(refused_reasons))
        for reason in refused_reasons:
            self.rejections.labels("in", reason).inc()

    def stages(self, direction: str, seconds: dict[str, float]) -> None:
        for stage, s in seconds.items():
            self.stage_seconds.labels(direction, stage).observe(max(0.0, s))

    def collect_from(self, collector: "MailboxCollector") -> None:
        self.registry.register(collector)


class MailboxCollector:
    """Gauges read when Prometheus scrapes: `read()` gives the node's state (see runtime.Node.metrics_state)."""

    def __init__(self, read: Callable[[], dict]) -> None:
        self.read = read

    def describe(self) -> Iterable[Metric]:
        return []  # described by collecting; nothing is read at registration

    def collect(self) -> Iterable[Metric]:
        try:
            st = self.read()
        except Exception:  # a scrape must not fail the node, nor hide the counters: say it here
            log.exception("metrics: reading the node's state failed")
            err = GaugeMetricFamily("lienthong_state_readable", "1 when the node's state could be read for this scrape")
            err.add_metric([], 0)
            yield err
            return
        ok = GaugeMetricFamily("lienthong_state_readable", "1 when the node's state could be read for this scrape")
        ok.add_metric([], 1)
        yield ok
        build = GaugeMetricFamily("lienthong_build_info", "Always 1; the version of lienthong this node runs",
                                  labels=["version"])
        build.add_metric([st["version"]], 1)
        yield build
        depth = GaugeMetricFamily("lienthong_queue_depth", "Envelopes waiting for a next hop", labels=["hop"])
        oldest = GaugeMetricFamily("lienthong_queue_oldest_age_seconds",
                                   "Age of the oldest envelope waiting for a next hop", labels=["hop"])
        failures = GaugeMetricFamily("lienthong_hop_failures", "Failed attempts in a row on a next hop", labels=["hop"])
        held = GaugeMetricFamily("lienthong_hop_held", "1 when an operator holds a next hop", labels=["hop"])
        parked = GaugeMetricFamily("lienthong_queue_parked", "Envelopes of the queue parked for an agency not"
                                   " registered yet (limits.park_for)", labels=["hop"])
        for hop, q in sorted(st["queues"].items()):
            depth.add_metric([hop], q["depth"])
            parked.add_metric([hop], q["parked"])
            oldest.add_metric([hop], q["oldest_age_s"])
            failures.add_metric([hop], q["failures"])
            held.add_metric([hop], 1 if q["held"] else 0)
        yield from (depth, oldest, failures, held, parked)
        cert = GaugeMetricFamily("lienthong_certificate_expiry_days", "Days left before the node's certificate expires")
        cert.add_metric([], st["cert_days_left"])
        yield cert
        yield from _crl(st["crl"])
        yield from _checkpoint(st["checkpoint"])
        children = GaugeMetricFamily("lienthong_registry_children", "Children registered with this node, by state",
                                     labels=["state"])
        reach = GaugeMetricFamily("lienthong_child_reachable", "1 when a registered child was heard from within"
                                  " registry.stale_after", labels=["child"])
        up = sum(1 for v in st["children"].values() if v)
        children.add_metric(["reachable"], up)
        children.add_metric(["unreachable"], len(st["children"]) - up)
        for child, ok_ in sorted(st["children"].items()):
            reach.add_metric([child], 1 if ok_ else 0)
        yield from (children, reach)
        if st["parent"]:
            parent = GaugeMetricFamily("lienthong_parent_registered", "1 while the parent has this node registered",
                                       labels=["parent"])
            parent.add_metric([st["parent"]], 1 if st["registered"] else 0)
            yield parent
        statuses = CounterMetricFamily("lienthong_statuses", "Document statuses, by code: direction=returned by this"
                                       " agency on documents it received, direction=received on documents it sent",
                                       labels=["direction", "code"])
        for direction in ("returned", "received"):
            for code, n in sorted(st["statuses"][direction].items()):
                statuses.add_metric([direction, code], n)
        yield statuses
        taken = CounterMetricFamily("lienthong_taken_over_envelopes", "Envelopes of retired predecessors' mailboxes"
                                    " this node took over (lienthong takeover), by predecessor and box",
                                    labels=["predecessor", "box"])
        for predecessor, boxes in sorted(st.get("taken_over", {}).items()):
            for box in ("inbox", "sent"):
                taken.add_metric([predecessor, box], boxes[box])
        yield taken
        health = GaugeMetricFamily("lienthong_health_serving", "1 while the node reports SERVING (health check)")
        health.add_metric([], 1 if st["serving"] else 0)
        yield health
        refused = CounterMetricFamily("lienthong_http_connections_refused", "Connections to the HTTP/JSON API"
                                      " answered TOO_MANY_CONNECTIONS and closed (its connection cap reached)")
        refused.add_metric([], st["http_refused"])
        yield refused


def _crl(crl: dict | None) -> Iterable[Metric]:
    """The CRL in use (nothing when the node holds none)."""
    if crl is None:
        return
    for name, doc, value in (
            ("lienthong_crl_number", "Number of the CRL in use", crl["number"]),
            ("lienthong_crl_next_update_timestamp_seconds", "When the CRL in use is due to be replaced (Unix time);"
             " past it plus tls.crl_grace the node takes no mail", crl["next_update_s"]),
            ("lienthong_crl_age_seconds", "Time since the CA issued the CRL in use", crl["age_s"])):
        g = GaugeMetricFamily(name, doc)
        g.add_metric([], value)
        yield g


def _checkpoint(checkpoint: dict | None) -> Iterable[Metric]:
    """This node's latest signed audit checkpoint (nothing before the first)."""
    if checkpoint is None:
        return
    age = GaugeMetricFamily("lienthong_audit_checkpoint_age_seconds", "Time since the latest signed audit checkpoint")
    age.add_metric([], checkpoint["age_s"])
    after = GaugeMetricFamily("lienthong_audit_rows_since_checkpoint", "Audit rows appended after the latest signed"
                              " checkpoint (not yet covered by a signature)")
    after.add_metric([], checkpoint["rows_after"])
    yield from (age, after)


class HostCollector:
    """A host's one endpoint: every hosted agency's series (its counters and its mailbox gauges), each with
    an `agency` label; one family per metric name, as the exposition format requires. `agencies()` gives
    (code, NodeMetrics) of the agencies served at the time of the scrape."""

    def __init__(self, agencies: Callable[[], list]) -> None:
        self.agencies = agencies

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        families: dict[str, Metric] = {}
        for code, metrics in self.agencies():
            for family in metrics.registry.collect():
                merged = families.get(family.name)
                if merged is None:
                    merged = families[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
                for sample in family.samples:
                    merged.add_sample(sample.name, {**sample.labels, "agency": code}, sample.value, sample.timestamp,
                                      sample.exemplar)
        yield from families.values()
