"""The Prometheus endpoint after a known exchange, read as Prometheus reads it (HTTP GET, text format).

Province P and district D under it, real processes, both with `metrics.listen: 127.0.0.1:0`; P reads
the CA's CRL from `tls.crl` and passes it down, D signs an audit checkpoint every second."""
from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from node import version
from node.cli import main
from node.harness import nodes
from node.harness.inproc import FAST_REGISTRY
from node.harness.nodes import NodeSpec
from node.harness.waiting import EventWaiter, wait_for_statuses
from node.identity import revocation
from node.pb import envelope_pb2 as pb

P, D = "000.00.00.H53", "000.00.35.H53"
UNREGISTERED = "000.21.35.H53"  # a commune the code rule places under D, never set up: D parks its mail
DOCS = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"
TIMEOUT = 30.0
METRICS = {"metrics": {"listen": "127.0.0.1:0", "cache_for": "0s"}}  # each scrape below reads what the event showed


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("metrics")
    ca = nodes.make_ca(root)
    crl = revocation.make_crl(ca)
    # P seals nothing and publishes no seal key (sealing.mode off: as a node older than sealing), so its mail for
    # a commune nobody set up yet goes to D to be parked, where D's metrics count it (a sealing sender keeps such
    # mail home: tests/cluster/test_parked.py); D, `preferred`, answers such a node in clear
    # (under `required` it would refuse: SEAL_KEY_MISSING)
    with nodes.parent_and_child(
            root, ca, NodeSpec(P, "Tỉnh P", extra={**FAST_REGISTRY, **METRICS, "tls": {"crl": str(crl)},
                                                   "sealing": {"mode": "off"}}),
            NodeSpec(D, "Huyện D", peers={P: P}, parent=P, extra={
                **FAST_REGISTRY, **METRICS, "audit": {"checkpoint_every": "1s"}, "sealing": {"mode": "preferred"}}),
            TIMEOUT) as pair:
        yield pair


def families(handle) -> list:
    """The metric families of GET /metrics."""
    address = nodes.runtime_info(handle)["metrics"]
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    return list(text_string_to_metric_families(text))


def scrape(handle) -> dict[tuple[str, tuple], float]:
    """sample name and sorted labels -> value, from GET /metrics."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in families(handle) for s in family.samples}


def test_the_endpoint_counts_a_known_exchange(tree):
    hp, hd = tree
    p, d, cfg = hp.client(), hd.client(), str(hp.config)
    # every count is checked after the event that proves it: a node moves its metrics before it publishes
    with EventWaiter(p) as ev, EventWaiter(hd.client(), inbox=False) as evd:
        sent = [p.send(pb.Document(subject=f"công văn {i}"), [D]) for i in range(3)]
        ids = {r.envelopes[0].message_id for r in sent}
        ev.wait(lambda _: ids <= ev.ids("delivered"), TIMEOUT)
        d.set_status(sent[0].envelopes[0].message_id, "03")  # 01 went back by itself on arrival
        ev.wait(lambda evs: sum(e.type == "arrived" and e.kind == pb.STATUS for e in evs) == 4, TIMEOUT)
        evd.wait(lambda evs: sum(e.type == "delivered" and e.peer == P for e in evs) == 4, TIMEOUT)
    wait_for_statuses(p, sent[0].doc_id, {D: ["01", "03"]}, TIMEOUT)
    # one held and purged (a refusal by reason), one left waiting behind the hold
    assert main(["hold", "--config", cfg, D]) == 0
    keep, drop = (p.send(pb.Document(subject=s), [D]).envelopes[0] for s in ("chờ", "huỷ"))
    with EventWaiter(p) as ev:
        assert main(["purge", "--config", cfg, drop.message_id, "--reason", "gửi nhầm"]) == 0
        ev.wait(lambda evs: any(e.type == "rejected" and e.message_id == drop.message_id for e in evs), TIMEOUT)

    m = scrape(hp)
    assert m[("lienthong_deliveries_total", (("hop", D),))] == 3
    assert m[("lienthong_delivery_latency_seconds_count", ())] == 3
    assert m[("lienthong_delivery_latency_seconds_sum", ())] > 0
    assert m[("lienthong_batch_size_count", (("direction", "out"),))] >= 1
    assert m[("lienthong_batch_size_sum", (("direction", "out"),))] == 3
    assert m[("lienthong_rejections_total", (("direction", "out"), ("reason", "PURGED")))] == 1
    # where the time went, per stage of each batch: sent (the documents), received (the statuses back)
    for stage in ("claim", "seal", "deliver", "receipts", "record"):
        assert m[("lienthong_batch_stage_seconds_count", (("direction", "out"), ("stage", stage)))] >= 1
    for stage in ("check", "prepare", "custody"):
        assert m[("lienthong_batch_stage_seconds_count", (("direction", "in"), ("stage", stage)))] >= 1
    assert m[("lienthong_batch_stage_seconds_sum", (("direction", "out"), ("stage", "deliver")))] > 0
    # the 01s and the 03 came back to P as envelopes it took custody of
    assert m[("lienthong_accepted_total", ())] == 4
    assert m[("lienthong_batch_size_sum", (("direction", "in"),))] == 4
    assert m[("lienthong_statuses_total", (("code", "01"), ("direction", "received")))] == 3
    assert m[("lienthong_statuses_total", (("code", "03"), ("direction", "received")))] == 1
    assert m[("lienthong_queue_depth", (("hop", D),))] == 1
    assert m[("lienthong_queue_oldest_age_seconds", (("hop", D),))] >= 0
    assert m[("lienthong_hop_held", (("hop", D),))] == 1
    assert m[("lienthong_registry_children", (("state", "reachable"),))] == 1
    assert m[("lienthong_registry_children", (("state", "unreachable"),))] == 0
    assert m[("lienthong_child_reachable", (("child", D),))] == 1
    assert 30 < m[("lienthong_certificate_expiry_days", ())] < 1000
    assert m[("lienthong_health_serving", ())] == 1
    assert m[("lienthong_state_readable", ())] == 1

    md = scrape(hd)  # the district: statuses it returned, its parent link, what it received
    assert md[("lienthong_statuses_total", (("code", "01"), ("direction", "returned")))] == 3
    assert md[("lienthong_statuses_total", (("code", "03"), ("direction", "returned")))] == 1
    assert md[("lienthong_parent_registered", (("parent", P),))] == 1
    assert md[("lienthong_accepted_total", ())] == 3
    assert md[("lienthong_deliveries_total", (("hop", P),))] == 4

    with EventWaiter(p, inbox=False) as ev:
        assert main(["release", "--config", cfg, D]) == 0
        ev.wait(lambda _: keep.message_id in ev.ids("delivered"), TIMEOUT)
    m = scrape(hp)
    assert m[("lienthong_queue_depth", (("hop", D),))] == 0 and m[("lienthong_hop_held", (("hop", D),))] == 0
    assert m[("lienthong_deliveries_total", (("hop", D),))] == 4
    assert m[("lienthong_build_info", (("version", version()),))] == 1

    # mail for a commune nobody set up yet waits parked at D, on its queue for that commune
    with EventWaiter(p, inbox=False) as ev:
        parked = p.send(pb.Document(subject="chờ xã"), [UNREGISTERED]).envelopes[0].message_id
        ev.wait(lambda _: parked in ev.ids("delivered"), TIMEOUT)
    md = scrape(hd)
    assert md[("lienthong_queue_parked", (("hop", UNREGISTERED),))] == 1
    assert md[("lienthong_queue_depth", (("hop", UNREGISTERED),))] == 1


def test_the_crl_in_use_and_the_audit_checkpoint_are_served(tree):
    hp, hd = tree
    with EventWaiter(hd.client(), inbox=False, sent=False, registry=True) as ev:
        hp.client().send(pb.Document(subject="để có dòng nhật ký"), [D])  # rows in D's audit chain
        ev.wait(lambda evs: any(e.type == "checkpoint" for e in evs), TIMEOUT)
    for m in (scrape(hp), scrape(hd)):  # P read it from tls.crl, D got it from P
        assert m[("lienthong_crl_number", ())] == 1
        assert m[("lienthong_crl_next_update_timestamp_seconds", ())] > m[("lienthong_crl_age_seconds", ())] >= 0
    md = scrape(hd)
    assert 0 <= md[("lienthong_audit_checkpoint_age_seconds", ())] < 300
    assert md[("lienthong_audit_rows_since_checkpoint", ())] >= 0


def documented() -> set[str]:
    return set(re.findall(r"^\| `(lienthong_[a-z_]+)`", DOCS.read_text(), re.M))


def test_every_metric_served_is_documented_and_every_documented_one_is_served(tree):
    """docs/metrics.md is kept by this test as the other docs are by theirs."""
    hp, hd = tree
    with EventWaiter(hd.client(), inbox=False, sent=False, registry=True) as ev:
        hp.client().send(pb.Document(subject="cho điểm kiểm"), [D])
        ev.wait(lambda evs: any(e.type == "checkpoint" for e in evs), TIMEOUT)
    served = {f.name + ("_total" if f.type == "counter" else "") for h in (hp, hd) for f in families(h)}
    # prometheus_client adds a `<counter>_created` series (when it began) beside every counter and histogram
    served = {n for n in served if n.startswith("lienthong_") and not n.endswith("_created")}
    assert served - documented() == set(), "served but not in docs/metrics.md"
    assert documented() - served == set(), "in docs/metrics.md but not served"


def test_metrics_are_off_unless_configured_and_loopback_unless_allowed(tmp_path, pki):
    import yaml

    from node.config import ConfigError, load_config
    h = nodes.prepare_node(tmp_path, pki.ca, NodeSpec(P, "Tỉnh P"), {P: "127.0.0.1:0"})
    assert load_config(h.config).metrics.listen is None
    data = yaml.safe_load(h.config.read_text())
    data["metrics"] = {"listen": "0.0.0.0:9100"}
    h.config.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as e:
        load_config(h.config)
    assert e.value.path == "metrics.listen" and "allow_remote" in str(e.value)
    data["metrics"]["allow_remote"] = True
    h.config.write_text(yaml.safe_dump(data))
    assert load_config(h.config).metrics.listen == "0.0.0.0:9100"
