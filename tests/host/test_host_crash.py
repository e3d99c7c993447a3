"""A host killed -9 while mail for two of its agencies is in flight loses and duplicates nothing, per
agency: a standalone commune sends documents to two co-hosted communes (through their co-hosted
province), the host dies part-way, comes back on the same files and ports, and every document arrives
once at its commune, each answered with one 01."""
from __future__ import annotations

import threading

import pytest

from node.harness import hosts, nodes
from node.harness.inproc import FAST_REGISTRY
from node.harness.nodes import NodeSpec
from node.harness.waiting import EventWaiter
from node.pb import envelope_pb2 as pb

P, C1, C2, X = "000.00.01.H53", "000.01.01.H53", "000.02.01.H53", "000.03.01.H53"
N = 60
TIMEOUT = 120.0


@pytest.fixture()
def world(tmp_path):
    ca = nodes.make_ca(tmp_path)
    listen = f"127.0.0.1:{nodes.free_port()}"
    addresses = {P: listen, C1: listen, C2: listen, X: f"127.0.0.1:{nodes.free_port()}"}
    fast = {**FAST_REGISTRY, "retry": {"first_delay": "100ms", "max_delay": "1s"}}
    specs = [NodeSpec(P, "UBND tỉnh", extra={"node": {"root": True}})] + [
        NodeSpec(c, f"UBND xã {c}", peers={P: P}, parent=P) for c in (C1, C2)]
    h = hosts.prepare_host(tmp_path, ca, "host", specs, addresses, listen=listen, extra=fast)
    xh = nodes.prepare_node(tmp_path, ca, NodeSpec(X, "UBND xã ngoài", peers={P: P}, parent=P, extra=fast),
                            addresses)
    try:
        hosts.start(h)
        nodes.wait_healthy([h.agencies[P]], timeout=TIMEOUT)
        nodes.start_registered(h.agencies[P], xh, timeout=TIMEOUT)
        yield h, xh
    finally:
        statuses = [nodes.terminate(xh), nodes.terminate(h.agencies[P])]
    assert statuses == [0, 0]


def test_kill_9_of_a_host_with_mail_for_two_agencies_in_flight(world):
    h, xh = world
    sent: dict[str, str] = {}  # message id -> recipient
    errors: list[BaseException] = []

    def send_all():
        client = xh.client()
        try:
            for i in range(N):
                to = (C1, C2)[i % 2]
                doc = pb.Document(subject=f"Công văn số {i}", document_id=f"{X},2026/12/07,{i}/UBND")
                sent[client.send(doc, [to]).envelopes[0].message_id] = to
        except BaseException as e:  # surfaced below
            errors.append(e)

    with EventWaiter(xh.client(), sent=False) as answers:  # the 01s coming back into X's inbox
        sender = threading.Thread(target=send_all)
        sender.start()
        try:
            answers.wait(lambda evs: len(evs) >= 6, timeout=TIMEOUT)
            nodes.kill9(h.agencies[P])  # part-way: the rest is queued at X or not yet posted
            answered_at_kill = len(answers.events)
        finally:
            sender.join(TIMEOUT)
        assert not errors and len(sent) == N
        assert answered_at_kill < N, "everything was answered before the kill"
        hosts.start(h)  # same files, same ports
        nodes.wait_healthy([h.agencies[P]], timeout=TIMEOUT)
        answers.wait(lambda evs: len({e.message_id for e in evs if e.type == "arrived"}) >= N, timeout=TIMEOUT)

    for code in (C1, C2):
        ids = [e.message_id for e in h.agencies[code].client().inbox_all() if e.kind == pb.DOCUMENT]
        assert len(ids) == len(set(ids)), f"{code} holds a document twice"
        assert set(ids) == {m for m, to in sent.items() if to == code}, f"{code} lost or got another's mail"
    statuses = [e for e in xh.client().inbox_all() if e.kind == pb.STATUS]
    assert len(statuses) == N  # one 01 per document, none twice
