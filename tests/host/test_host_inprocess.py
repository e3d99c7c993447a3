"""A host object serving three agencies in this process (a province and two of its communes), with a
standalone node (another commune of the province) in this process too: registration through the host's
one peer port, a document and its automatic 01 between co-hosted agencies and to the standalone node."""
from __future__ import annotations

import pytest
from grpc_health.v1 import health, health_pb2

from node.config import load_config
from node.harness import hosts, nodes
from node.harness.inproc import FAST_REGISTRY
from node.harness.nodes import NodeSpec
from node.harness.waiting import EventWaiter, wait_for_statuses
from node.host.config import load_host
from node.host.host import Host
from node.host.transport import HostedTransport
from node.pb import envelope_pb2 as pb
from node.runtime import Node

P, C1, C2, X = "000.00.01.H53", "000.01.01.H53", "000.02.01.H53", "000.03.01.H53"
TIMEOUT = 30.0


@pytest.fixture()
def world(tmp_path):
    ca = nodes.make_ca(tmp_path)
    listen = f"127.0.0.1:{nodes.free_port()}"
    addresses = {P: listen, C1: listen, C2: listen, X: f"127.0.0.1:{nodes.free_port()}"}
    specs = [NodeSpec(P, "Tỉnh", extra={"node": {"root": True}}),
             NodeSpec(C1, "Xã 1", peers={P: P}, parent=P), NodeSpec(C2, "Xã 2", peers={P: P}, parent=P)]
    h = hosts.prepare_host(tmp_path, ca, "host", specs, addresses, listen=listen,
                           extra={**FAST_REGISTRY, "metrics": {"listen": "127.0.0.1:0"}})
    host = Host(load_host(h.config))
    host.start()
    xh = nodes.prepare_node(tmp_path, ca, NodeSpec(X, "Xã 3", peers={P: P}, parent=P,
                                                   extra=FAST_REGISTRY), addresses)
    x = Node(load_config(xh.config))
    try:
        with EventWaiter(h.agencies[P].client(), inbox=False, sent=False, registry=True) as ev:
            x.start()
            try:
                ev.wait(lambda evs: {e.peer for e in evs if e.type == "registered"} >= {X}, TIMEOUT)
            except TimeoutError:
                print(sorted({(e.type, e.peer) for e in ev.events}))
                raise
        yield host, h, x, xh
    finally:
        x.stop(grace=1)
        host.stop(grace=1)


def test_co_hosted_and_remote_exchange(world):
    host, h, x, xh = world
    assert isinstance(host.agencies[C1].transport, HostedTransport)
    c1 = h.agencies[C1].client()
    assert c1.whoami().code == C1
    response = c1.send(pb.Document(subject="Công văn"), [C2, X])
    track = wait_for_statuses(c1, response.doc_id, {C2: ["01"], X: ["01"]}, timeout=TIMEOUT)
    by = {e.recipient: e for e in response.envelopes}
    got = h.agencies[C2].client().fetch(by[C2].message_id)
    assert got.signature_verified and [p.code for p in got.path][0] == C1
    assert xh.client().fetch(by[X].message_id).signature_verified


def test_outside_peer_sees_the_called_agencys_certificate(world):
    """The one peer port answers each TLS handshake with the certificate of the agency named by SNI (gRPC's
    ssl_target_name_override sends it; node.transport.peer_check asks the same way)."""
    from node.identity import certs
    from node.transport.peer_check import peer_certificate
    host, h, x, xh = world
    seen = {}
    for code in (C2, C1, P):
        der = peer_certificate(xh.dir / "keys" / "node.pem", xh.dir / "keys" / "node.key", h.listen,
                               name=certs.tls_name(code))
        seen[code] = x.trust.identify(der).code
    assert seen == {C2: C2, C1: C1, P: P}


def test_one_metrics_endpoint_with_an_agency_label(world):
    """Every agency's counters and gauges on the host's one endpoint, told apart by `agency`."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families
    host, h, x, xh = world
    c1 = h.agencies[C1].client()
    response = c1.send(pb.Document(subject="Đếm"), [C2])
    wait_for_statuses(c1, response.doc_id, {C2: ["01"]}, timeout=TIMEOUT)
    with urllib.request.urlopen(f"http://127.0.0.1:{host.metrics_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("lienthong_deliveries_total", (("agency", C1), ("hop", P)))] >= 1
    assert samples[("lienthong_accepted_total", (("agency", C2),))] >= 1
    assert {dict(k[1])["agency"] for k in samples if k[0] == "lienthong_health_serving"} == {P, C1, C2}


def test_one_agency_cannot_take_every_watch_place(world):
    """Watch streams hold the host's shared API workers: each agency has a few places of its own (and the host
    a cap over all), so one agency's programs watching cannot shut another's out."""
    from node.errors import Reason
    from node.grpc_errors import reason_of
    host, h, x, xh = world
    mine = [EventWaiter(h.agencies[C1].client(), registry=True) for _ in range(host.shared.watchers_per_agency)]
    try:
        extra = EventWaiter(h.agencies[C1].client(), registry=True)
        extra.close()
        assert extra.ended is not None and reason_of(extra.ended) == Reason.TOO_MANY_STREAMS.wire, extra.ended
        other = EventWaiter(h.agencies[C2].client(), registry=True)  # another agency still watches
        assert other.ended is None  # started (WATCHING came), not refused
        other.close()
    finally:
        for w in mine:
            w.close()


def test_the_hosts_health_sets_a_status_again_only_when_it_changes(world, monkeypatch):
    """Every health tick set every agency's status, and grpcio's `set` sends every watcher a message each
    time: a thousand agencies meant a thousand sets every tick. Now only a change is set (and sent); a
    removed agency's SERVICE_UNKNOWN still follows any tick."""
    host, _, _, _ = world
    said: list[tuple[str, int]] = []  # what reached grpcio's set, which sends every watcher a message
    real = health.HealthServicer.set
    monkeypatch.setattr(health.HealthServicer, "set", lambda self, name, status: (
        said.append((name, status)) if self is host.health else None, real(self, name, status)))
    host._health()
    host._health()
    assert said == []  # started and SERVING already: nothing new to say
    host.agencies[C2].stop(grace=1)  # as SIGHUP removing it does: the stopping agency detaches itself
    assert said == [(C2, health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)]
    host._health()
    assert said[1:] == []  # C2 is not served any more; the others and "" unchanged
