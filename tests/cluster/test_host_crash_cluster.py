"""`small` on one host per province: the host of Hòa Bình (its province, districts and communes) killed -9
while two Tây Ninh communes send to two of its communes; brought back by the harness on the same files
and ports, every document arrives once at its own commune and every sender gets one 01 per document.
(tests/host/test_host_crash.py is the same on one host and one standalone node; this one goes through
the national root and both provinces' relays, co-hosted relays handing over in process.)"""
from __future__ import annotations

import threading

import pytest

from node.harness import topology
from node.harness.waiting import EventWaiter
from node.pb import envelope_pb2 as pb
from tests.cluster.conftest import running

SENDERS = ("000.23.38.H53", "000.21.35.H53")     # two communes on the Tây Ninh host
RECIPIENTS = ("000.21.31.H29", "000.22.32.H29")  # two communes on the Hòa Bình host, the one killed
KILLED = "000.00.00.H29"
N = 40  # per sender, alternating between the recipients
TIMEOUT = 180.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with running(tmp_path_factory.mktemp("host-crash"), topology.load("small"), hosts="per-province") as c:
        yield c


def test_kill_9_of_a_province_host_with_mail_for_several_of_its_agencies_in_flight(cluster):
    assert {cluster.unit(c) for c in (*RECIPIENTS, KILLED)} == {KILLED} != {cluster.unit(s) for s in SENDERS}
    sent: dict[str, dict[str, str]] = {s: {} for s in SENDERS}  # sender -> message id -> recipient
    errors: list[BaseException] = []

    def send_all(sender: str) -> None:
        client = cluster.client(sender)
        try:
            for i in range(N):
                to = RECIPIENTS[i % 2]
                doc = pb.Document(subject=f"Công văn số {i} của {sender}", document_id=f"{sender},2026/12/07,{i}/UBND")
                sent[sender][client.send(doc, [to]).envelopes[0].message_id] = to
        except BaseException as e:  # surfaced below
            errors.append(e)

    def answered(evs) -> int:
        return len({e.message_id for e in evs if e.type == "arrived"})

    answers = {s: EventWaiter(cluster.client(s), sent=False) for s in SENDERS}  # the 01s coming back
    try:
        threads = [threading.Thread(target=send_all, args=(s,)) for s in SENDERS]
        for t in threads:
            t.start()
        try:
            answers[SENDERS[0]].wait(lambda evs: answered(evs) >= 4, timeout=TIMEOUT)
            assert cluster.kill(KILLED) == 137  # part-way: the rest is queued on the way or not yet posted
            answered_at_kill = sum(answered(w.events) for w in answers.values())
        finally:
            for t in threads:
                t.join(TIMEOUT)
        assert not errors and all(len(ids) == N for ids in sent.values())
        assert answered_at_kill < 2 * N, "everything was answered before the kill"
        cluster.restart(KILLED)  # the whole host: same files and ports, every agency registered again
        for s, w in answers.items():
            w.wait(lambda evs: answered(evs) >= N, timeout=TIMEOUT)
    finally:
        for w in answers.values():
            w.close()

    for r in RECIPIENTS:
        ids = [e.message_id for e in cluster.client(r).inbox_all() if e.kind == pb.DOCUMENT]
        assert len(ids) == len(set(ids)), f"{r} holds a document twice"
        assert set(ids) == {m for s in SENDERS for m, to in sent[s].items() if to == r}, f"{r} lost or got another's"
    for s in SENDERS:
        statuses = [e for e in cluster.client(s).inbox_all() if e.kind == pb.STATUS]
        assert sorted(e.ref_message_id for e in statuses) == sorted(sent[s]), f"{s}: not one 01 per document"
