"""History follows on real processes (docs/restructuring.md): commune X is merged into commune Z of province P; X's
node is retired, drained and backed up; Z's node takes X's mailbox over from the backup with X's seal key
(`lienthong takeover`); X's node hands it over again over the network (`lienthong retire --hand-over`: nothing
new) and is stopped. Z's inbox (gRPC and the HTTP face) shows what X received, "received by X", and opens it;
Track of X's old document works on Z, with the status P returned to X; an evidence bundle made on Z verifies,
the succession linking X to Z in it."""
from __future__ import annotations

import json

import pytest

from node.cli import main
from node.events import SUCCESSION
from node.harness import topology
from node.harness.cluster import Cluster
from node.harness.http_api import HttpApi
from node.harness.waiting import EventWaiter, wait_for_statuses
from node.pb import envelope_pb2 as pb

P, X, Z = "000.00.00.H53", "000.00.31.H53", "000.00.33.H53"
TIMEOUT = 60.0
TOPOLOGY = topology.parse({"name": "takeover", "nodes": [
    {"code": P, "name": "UBND tỉnh Đồng Nai", "children": [
        {"code": X, "name": "UBND xã Tân Lợi"},
        {"code": Z, "name": "UBND xã Đồng Phú"}]}]})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("takeover") / "cluster")
    try:
        c.up(TOPOLOGY, extra={"registry": {"heartbeat": "500ms", "stale_after": "5s"}}, quiet=True, http=True)
        yield c
    finally:
        c.close()


def test_a_retired_communes_history_is_taken_over_by_its_successor(cluster, tmp_path, capsys):
    p, x, z = cluster.client(P), cluster.client(X), cluster.client(Z)
    to_x = p.send(pb.Document(subject="Công văn gửi xã Tân Lợi"), [X])
    wait_for_statuses(p, to_x.doc_id, {X: ["01"]}, TIMEOUT)
    from_x = x.send(pb.Document(subject="Báo cáo của xã Tân Lợi"), [P])
    wait_for_statuses(x, from_x.doc_id, {P: ["01"]}, TIMEOUT)
    received = to_x.envelopes[0].message_id
    x.fetch(received)
    x.ack(received)

    with EventWaiter(z, inbox=False, sent=False, registry=True) as at_z, \
            EventWaiter(x, inbox=False, sent=False, registry=True) as at_x:
        p.admin.issue_succession([X], Z, 0, "Nghị quyết sắp xếp đơn vị hành chính cấp xã")
        for w in (at_z, at_x):
            w.wait(lambda evs: any(ev.type == SUCCESSION for ev in evs), TIMEOUT)
    x.admin.retire(Z)
    with EventWaiter(x, inbox=False) as x_sent:  # its own 01 about P's document and its report: handed over
        x_sent.wait(lambda _: x.admin.retire_status().drained, TIMEOUT)
    backups = tmp_path / "backups"
    backups.mkdir()
    assert main(["backup", "--config", cluster.nodes[X].config, "--to", str(backups)]) == 0
    [backup] = backups.glob("lienthong-*.tar")
    capsys.readouterr()

    seal_key = f"{cluster.nodes[X].dir}/keys/seal.key"
    assert main(["takeover", "--from-backup", str(backup), "--seal-key", seal_key, "--json",
                 "--config", cluster.nodes[Z].config]) == 0
    took = json.loads(capsys.readouterr().out)
    assert took["predecessor"] == X and int(took["inbox"]) == 2 and int(took["sent"]) == 2, took
    # the same history handed over by X's node itself, over the network: Z holds it all already
    assert main(["retire", "--hand-over", "--json", "--config", cluster.nodes[X].config]) == 0
    handed = json.loads(capsys.readouterr().out)
    assert int(handed.get("inbox", 0)) == 0 and int(handed.get("sent", 0)) == 0 and int(handed["already"]) == 4
    assert cluster.stop(X) == 0  # the retired node is gone; its history lives on at Z

    [held] = [e for e in z.inbox_all() if e.message_id == received]
    assert held.held_for == X and held.sender == P
    assert z.fetch(received).payload.document.subject == "Công văn gửi xã Tân Lợi"
    http = HttpApi(cluster.nodes[Z].http, cluster.nodes[Z].token)
    try:
        entries = http.mailbox("ListInbox", {})["entries"]
    finally:
        http.close()
    assert [e["heldFor"] for e in entries if e["messageId"] == received] == [X], entries
    track = z.track(from_x.doc_id)
    assert track.held_for == X and [s.status_code for s in track.recipients[0].statuses] == ["01"]

    bundle = tmp_path / "evidence.bin"
    assert main(["evidence", received, "--out", str(bundle), "--config", cluster.nodes[Z].config]) == 0
    capsys.readouterr()
    assert main(["verify-evidence", str(bundle), "--ca", str(cluster.dir / "ca" / "ca.pem")]) == 0
    out = capsys.readouterr().out
    assert f"held by {Z} for {X}, its predecessor" in out, out
