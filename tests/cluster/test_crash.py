"""A relay killed -9 with hundreds of documents in flight through it loses and duplicates nothing;
the cluster harness's command line works on a running cluster from separate invocations."""
from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest

from node import codes
from node.harness.waiting import EventWaiter
from node.pb import envelope_pb2 as pb

SENDER = "000.23.38.H53"      # a commune of Tây Ninh ...
RECIPIENT = "000.21.31.H29"   # ... to a commune of Hòa Bình: 6 relays
RELAY = "000.00.00.H29"       # the recipient's province, killed part-way
N = 500


@pytest.fixture(scope="module")
def cluster(own_cluster):
    """This module kills -9 and restarts nodes: it runs on a cluster of its own, not the shared one."""
    return own_cluster


def test_kill_9_of_a_province_with_500_documents_in_flight_loses_and_duplicates_nothing(cluster):
    route = codes.route(SENDER, RECIPIENT)
    assert RELAY in route and len(route) == 7
    sent_ids: list[str] = []
    send_error: list[BaseException] = []

    def send_all():
        client = cluster.client(SENDER)
        try:
            for i in range(N):
                doc = pb.Document(subject=f"Công văn số {i}", document_id=f"{SENDER},2026/11/21,{i}/UBND",
                                  attachments=[pb.Attachment(name=f"{i}.txt", content_type="text/plain",
                                                             data=bytes([i % 256]) * 2000)])
                sent_ids.append(client.send(doc, [RECIPIENT]).envelopes[0].message_id)
        except BaseException as e:  # surfaced below
            send_error.append(e)

    with EventWaiter(cluster.client(RECIPIENT), sent=False) as arrivals:
        sender = threading.Thread(target=send_all)
        sender.start()
        try:
            arrivals.wait(lambda evs: len(evs) >= 30, timeout=60)
            cluster.kill(RELAY)  # part-way: the rest is queued on the way or not yet posted
            posted_at_kill = len(sent_ids)
            arrived_at_kill = len(arrivals.events)
        finally:
            sender.join(120)
        assert not send_error and len(sent_ids) == N
        assert 30 <= arrived_at_kill < N, f"killed after {arrived_at_kill} arrivals ({posted_at_kill} posted)"

        cluster.restart(RELAY)  # same config and ports; back when healthy and registered again
        arrivals.wait(lambda evs: {e.message_id for e in evs if e.type == "arrived"} >= set(sent_ids), timeout=120)

    inbox = cluster.client(RECIPIENT).inbox_all()
    ids = [e.message_id for e in inbox if e.kind == pb.DOCUMENT]
    assert len(ids) == len(set(ids)) == N and set(ids) == set(sent_ids)
    client = cluster.client(RECIPIENT)
    subjects = set()
    for mid in ids:
        got = client.fetch(mid)
        assert got.signature_verified and all(h.verified for h in got.path)
        assert [h.code for h in got.path] == route
        subjects.add(got.payload.document.subject)
    assert subjects == {f"Công văn số {i}" for i in range(N)}
    # every relay holds each envelope once, and passed it on under the next hop's receipt
    for relay in route[1:-1]:
        pending = cluster.client(relay).sent_all(state="pending")
        assert not pending, f"{relay} still has {len(pending)} envelopes queued"


def cli(cluster, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "node.harness.cluster", *args, "--dir", str(cluster.dir)],
                          capture_output=True, text=True, timeout=120)


def test_the_command_line_works_on_the_running_cluster_from_separate_invocations(cluster, small):
    status = cli(cluster, "status", "--json")
    assert status.returncode == 0, status.stderr
    rows = {r["code"]: r for r in json.loads(status.stdout)}
    assert set(rows) == set(small.codes) and all(r["healthy"] for r in rows.values())
    assert rows["000.00.00.H53"]["reachable"] == rows["000.00.00.H53"]["children"] == 2

    commune = "000.24.38.H53"
    old_pid = cluster.nodes[commune].pid
    killed = cli(cluster, "kill", commune)
    assert killed.returncode == 0 and json.loads(killed.stdout) == {commune: 137}
    rows = {r["code"]: r for r in json.loads(cli(cluster, "status", "--json").stdout)}
    assert not rows[commune]["alive"] and rows["000.00.38.H53"]["healthy"]

    restarted = cli(cluster, "restart", commune)
    assert restarted.returncode == 0, restarted.stderr
    new_pid = json.loads(restarted.stdout)[commune]["pid"]
    assert new_pid != old_pid
    # this process sees the node another invocation started, and can use and stop it
    cluster.reload()
    assert cluster.nodes[commune].pid == new_pid and cluster.alive(commune)
    with EventWaiter(cluster.client(commune), sent=False) as events:
        [sent] = cluster.client(SENDER).send(pb.Document(subject="sau khi khởi động lại"), [commune]).envelopes
        events.wait(lambda evs: any(e.message_id == sent.message_id for e in evs), 30)
