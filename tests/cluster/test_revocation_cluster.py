"""Revocation on the `small` tree of real node processes: the CA revokes a commune's certificate, the admin
publishes the CRL at the root (`lienthong ca crl`, copied to the root's tls.crl, SIGHUP), and within that
one push (heartbeats here are a minute apart, so nothing else could carry it) every node holds it and the
commune is refused at its district's connection, in a relayed envelope and in a receipt; a stale CRL turns
the peer surface NOT_SERVING and holds the queue until a fresh one; a renewal under traffic loses and
duplicates nothing, and revoking the old certificate afterwards changes nothing for the new one."""
from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import threading
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from node.cli import main
from node.errors import Reason, Rejected
from node.transport.grpc_peers import TlsMaterial, open_channel
from node.grpc_errors import reason_of
from node.harness import topology
from node.harness.cluster import Cluster
from node.harness.waiting import EventWaiter
from node.identity import certs, revocation
from node.identity.trust import TrustStore
from node import envelope, receipts
from node.pb import envelope_pb2 as pb
from node.pb import exchange_pb2 as xpb
from node.pb import exchange_pb2_grpc as xgrpc
from tests.cluster.conftest import running

ROOT, P, D = "VN", "000.00.00.H53", "000.00.35.H53"
C1, C2 = "000.21.35.H53", "000.22.35.H53"     # communes under D: C1 is revoked, C2 renewed
FAR = "000.23.38.H53"                           # a commune under the other district
ROOT_CRL = "keys/ca.crl"                        # the root's tls.crl, relative to its config
TIMEOUT = 60.0

# heartbeats a minute apart: a CRL that arrives within seconds came by the push
SLOW_BEATS = {"retry": {"first_delay": "100ms", "multiplier": 2.0, "max_delay": "1s"},
              "registry": {"heartbeat": "60s", "stale_after": "180s"}, "tls": {"crl_grace": 0}}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    def first_crl(cluster: Cluster) -> None:  # the root starts with CRL number 1 (nothing revoked)
        shutil.copy(revocation.make_crl(cluster.dir / "ca"), Path(cluster.nodes[ROOT].dir) / ROOT_CRL)

    with running(tmp_path_factory.mktemp("crl-cluster"), topology.load("small"), extra=SLOW_BEATS,
                 node_extra={ROOT: {"tls": {"crl": ROOT_CRL}}}, prepared=first_crl) as c:
        yield c


def publish(c: Cluster, *, watch: tuple[str, ...], days: int = 7, now: dt.datetime | None = None) -> int:
    """What the admin does at the root (docs/deploy.md): a new CRL, copied to tls.crl, SIGHUP. Returns once
    every node in `watch` says it took that list (its `crl` event)."""
    ca = c.dir / "ca"
    crl = revocation.make_crl(ca, days=days, now=now)
    number = revocation.load(crl.read_bytes(), [certs.load_cert(ca / "ca.pem")]).number
    waiters = {code: EventWaiter(c.client(code), inbox=False, sent=False, registry=True) for code in watch}
    try:
        shutil.copy(crl, Path(c.nodes[ROOT].dir) / ROOT_CRL)
        os.kill(c.nodes[ROOT].pid, signal.SIGHUP)
        for w in waiters.values():
            w.wait(lambda evs: any(e.type == "crl" and e.crl_number == number for e in evs), TIMEOUT)
    finally:
        for w in waiters.values():
            w.close()
    return number


def keys_of(c: Cluster, code: str) -> Path:
    return Path(c.nodes[code].dir) / "keys"


def channel_as(c: Cluster, code: str, to: str) -> grpc.Channel:
    """A mutual-TLS channel to `to`'s peer port presenting `code`'s own key and certificate."""
    k = keys_of(c, code)
    tls = TlsMaterial((k / "node.key").read_bytes(), (k / "node.pem").read_bytes(), (k / "ca.pem").read_bytes())
    return open_channel(tls, to, c.nodes[to].listen, 1 << 20)


def rejected_reason(call) -> str:
    with pytest.raises(grpc.RpcError) as e:
        call()
    return f"{e.value.code().name} {reason_of(e.value)}"


def wait_until(what: str, check, timeout: float = TIMEOUT):
    """Re-check a condition at a pace (the node reports it in its queues, not as an event)."""
    pace, deadline = threading.Event(), dt.datetime.now() + dt.timedelta(seconds=timeout)
    while not (found := check()):
        if dt.datetime.now() > deadline:
            raise TimeoutError(f"{what}: not after {timeout}s")
        pace.wait(0.05)
    return found


def test_a_revoked_commune_is_refused_everywhere_within_one_push(tree):
    c, ca = tree, tree.dir / "ca"
    d_cfg = c.nodes[D].config
    # before: C1's envelope waits at D (its link to P is held), and C1 answers a delivery with a receipt
    assert main(["hold", "--config", d_cfg, P]) == 0
    with EventWaiter(c.client(C1), inbox=False, sent=True) as ev:
        waiting = c.client(C1).send(pb.Document(subject="gửi trước khi bị thu hồi"), [FAR]).envelopes[0].message_id
        ev.wait(lambda _: waiting in ev.ids("delivered"), TIMEOUT)  # handed over to D
    signer_d = envelope.Signer.from_files(keys_of(c, D) / "node.key", keys_of(c, D) / "node.pem")
    header, raw = envelope.seal(signer_d, C1, pb.Payload(document=pb.Document(subject="cho xã")), lifetime_s=600)
    with channel_as(c, D, C1) as ch:
        receipt = xgrpc.ExchangeStub(ch).Deliver(xpb.DeliverRequest(envelope=raw), timeout=TIMEOUT)

    revocation.revoke(ca, keys_of(c, C1) / "node.pem", "key_compromise")
    number = publish(c, watch=(P, D, C1, C2, FAR))
    assert number == 2

    # at the connection: the district refuses C1 before any handler runs, health check included
    with channel_as(c, C1, D) as ch:
        assert rejected_reason(lambda: health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(), timeout=TIMEOUT)) == "PERMISSION_DENIED CERT_REVOKED"
        assert rejected_reason(lambda: xgrpc.ExchangeStub(ch).DeliverBatch(
            xpb.DeliverBatchRequest(envelopes=[raw]), timeout=TIMEOUT)) == "PERMISSION_DENIED CERT_REVOKED"
    # and the client side: D hands nothing to C1 any more (its certificate is checked before the call)
    with EventWaiter(c.client(D), inbox=False, sent=True) as ev:
        later = c.client(D).send(pb.Document(subject="sau khi thu hồi"), [C1]).envelopes[0].message_id
        wait_until("D's queue to C1 names the revoked certificate", lambda: any(
            h.hop == C1 and "CERT_REVOKED" in h.last_error and h.depth >= 1 for h in c.client(D).admin.queues().hops))
        assert later not in ev.ids("delivered")

    # in a relayed envelope: released, C1's waiting envelope reaches P, which refuses it for good
    with EventWaiter(c.client(D), inbox=False, sent=True) as ev:
        assert main(["release", "--config", d_cfg, P]) == 0
        is_it = lambda e: e.type == "rejected" and e.message_id == waiting  # noqa: E731
        rejected = next(e for e in ev.wait(lambda evs: any(map(is_it, evs)), TIMEOUT) if is_it(e))
    assert rejected.reason == "CERT_REVOKED" and rejected.peer == P

    # in a receipt: the one C1 signed no longer proves custody to a node holding the CRL
    trust = TrustStore.from_files([ca / "ca.pem"], crl=Path(c.nodes[D].dir) / "data" / "crl.der")
    receipts.verify(receipt, TrustStore.from_files([ca / "ca.pem"]), expect_receiver=C1,
                    message_id=header.message_id, envelope_digest=envelope.sha256(raw))  # good without the CRL
    with pytest.raises(Rejected) as e:
        receipts.verify(receipt, trust, expect_receiver=C1, message_id=header.message_id,
                        envelope_digest=envelope.sha256(raw))
    assert e.value.reason is Reason.CERT_REVOKED

    # C1 itself holds the list that revokes it: it says so in its health, and D's log names the refusals
    assert not c.client(C1).healthy()
    assert "CERT_REVOKED" in (Path(c.nodes[D].dir) / "node.log").read_text()

    # the agency gets a new key and certificate: D takes its registration without the revoked key's word,
    # and sends what waited for it
    with EventWaiter(c.client(D), inbox=False, sent=True, registry=True) as ev:
        assert main(["renew", "--config", c.nodes[C1].config, "--ca", str(ca)]) == 0
        os.kill(c.nodes[C1].pid, signal.SIGHUP)
        ev.wait(lambda evs: any(e.type == "registered" and e.peer == C1 for e in evs), TIMEOUT)
        ev.wait(lambda _: later in ev.ids("delivered"), TIMEOUT)
    assert c.client(C1).healthy()


def test_a_stale_crl_turns_the_peer_surface_not_serving_until_a_fresh_one(tree):
    c = tree
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2)  # next update a day ago; grace 0
    everyone = (P, D, C2, FAR)
    publish(c, watch=everyone, days=1, now=past)
    for code in (ROOT, *everyone):
        assert not c.client(code).healthy(), code   # "" (what peers probe) is NOT_SERVING
    assert "past its next update" in (Path(c.nodes[D].dir) / "node.log").read_text()
    # its own queue waits: C2's document stays at C2, neither sent nor dropped
    sent = c.client(C2).send(pb.Document(subject="chờ danh sách thu hồi mới"), [FAR]).envelopes[0].message_id
    wait_until("C2 holds it", lambda: any(h.hop == D and h.depth >= 1 for h in c.client(C2).admin.queues().hops))
    assert [s.state for s in c.client(C2).sent_all() if s.message_id == sent] == ["pending"]
    with EventWaiter(c.client(FAR), inbox=True, sent=False) as ev:
        publish(c, watch=everyone)  # fresh: SERVING again, and the queue goes
        for code in (ROOT, *everyone):
            assert c.client(code).healthy(), code
        ev.wait(lambda _: sent in ev.ids("arrived"), TIMEOUT)


def test_a_renewal_under_traffic_loses_and_duplicates_nothing(tree):
    c, ca = tree, tree.dir / "ca"
    cfg = c.nodes[C2].config
    old_pem = (keys_of(c, C2) / "node.pem").read_bytes()
    sent: list[str] = []
    stop = threading.Event()

    def traffic() -> None:  # documents both ways while the certificate changes
        i = 0
        while not stop.is_set() or i < 10:
            for frm, to in ((C2, FAR), (FAR, C2)):
                sent.append(c.client(frm).send(pb.Document(subject=f"lưu lượng {frm} {i}"), [to]).envelopes[0].message_id)
            i += 1

    arrived = {code: EventWaiter(c.client(code), inbox=True, sent=False) for code in (C2, FAR)}
    try:
        with EventWaiter(c.client(D), inbox=False, sent=False, registry=True) as reg:
            t = threading.Thread(target=traffic)
            t.start()
            try:
                assert main(["renew", "--config", cfg, "--ca", str(ca)]) == 0
                os.kill(c.nodes[C2].pid, signal.SIGHUP)
                reg.wait(lambda evs: any(e.type == "registered" and e.peer == C2 for e in evs), TIMEOUT)
            finally:
                stop.set()
                t.join(TIMEOUT)
        everything = set(sent)
        for w in arrived.values():
            w.wait(lambda _: everything <= arrived[C2].ids("arrived") | arrived[FAR].ids("arrived"), TIMEOUT)
    finally:
        for w in arrived.values():
            w.close()
    for code in (C2, FAR):
        got = [e.message_id for e in c.client(code).inbox_all() if e.message_id in everything]
        assert len(got) == len(set(got)), f"{code} got a document twice"
    assert {e.message_id for code in (C2, FAR) for e in c.client(code).inbox_all()} >= everything
    assert (keys_of(c, C2) / "node.pem").read_bytes() != old_pem

    # the old certificate is then revoked (superseded): the new one goes on, both ways
    old = keys_of(c, C2) / "old.pem"
    old.write_bytes(old_pem)
    revocation.revoke(ca, old, "superseded")
    publish(c, watch=(D, C2, FAR))
    assert c.client(C2).healthy()
    with EventWaiter(c.client(FAR), inbox=True, sent=False) as at_far, \
            EventWaiter(c.client(C2), inbox=True, sent=False) as at_c2:
        up = c.client(C2).send(pb.Document(subject="sau khi thu hồi chứng thư cũ"), [FAR]).envelopes[0].message_id
        down = c.client(FAR).send(pb.Document(subject="trả lời"), [C2]).envelopes[0].message_id
        at_far.wait(lambda _: up in at_far.ids("arrived"), TIMEOUT)
        at_c2.wait(lambda _: down in at_c2.ids("arrived"), TIMEOUT)
