"""Retiring a node (`lienthong retire`, Admin.Retire) on a province and its communes in one process (real gRPC over
mutual TLS, real SQLite files, real keys): commune X is merged into Z; X's node, retired into Z, takes no new
document, sends on what it queued, says what is left, and once drained says how to revoke it; a restart keeps it
retiring. Only into the successor a held succession names (docs/restructuring.md)."""
from __future__ import annotations

import grpc

from node.cli import EXIT_REFUSED, main
from node.config import load_config
from node.events import ARRIVED, SUCCESSION
from node.grpc_errors import metadata_of, reason_of
from node.harness.waiting import EventWaiter
from node.pb import envelope_pb2 as pb
from node.runtime import Node

from tests.merger_tree import P, S, X, Z, refused, tree  # noqa: F401 - tree: the fixture

TIMEOUT = 30.0


def test_a_retiring_node_takes_no_new_mail_sends_on_what_it_holds_and_ends_drained(tree, capsys):
    x, s = tree.client(X), tree.client(S)
    e = refused(lambda: x.admin.retire(Z))  # no succession yet: an operator's slip must not stop its mail
    assert reason_of(e) == "RETIRE_NOT_SUCCESSOR" and e.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(refused(x.admin.retire_status)) == "NOT_RETIRING"
    assert reason_of(refused(lambda: x.admin.retire("not a code\n"))) == "INVALID_REQUEST"

    with EventWaiter(x, sent=False) as at_x:
        unread = s.send(pb.Document(subject="chưa đọc"), [X]).envelopes[0].message_id
        at_x.wait(lambda evs: any(ev.type == ARRIVED and ev.message_id == unread for ev in evs), TIMEOUT)
    x.admin.hold(P)  # X's one hop: what X sends now stays queued here
    waiting = x.send(pb.Document(subject="gửi trước khi sáp nhập"), [S]).envelopes[0].message_id

    with EventWaiter(x, inbox=False, sent=False, registry=True) as told:
        tree.client(P).admin.issue_succession([X], Z, 0, "Nghị quyết sắp xếp đơn vị hành chính cấp xã")
        told.wait(lambda evs: any(ev.type == SUCCESSION for ev in evs), TIMEOUT)
    e = refused(lambda: x.admin.retire(S))
    assert reason_of(e) == "RETIRE_NOT_SUCCESSOR" and metadata_of(e).get("successor") == Z, e
    e = refused(x.admin.retire_status)  # a refused retire changed nothing
    assert reason_of(e) == "NOT_RETIRING"
    still = x.send(pb.Document(subject="vẫn gửi được"), [S]).envelopes[0].message_id

    r = x.admin.retire(Z)
    assert (r.successor, r.queued, r.parked, r.unfetched, r.drained) == (Z, 2, 0, 1, False)  # the two documents
    again = x.admin.retire(Z)  # again: the progress, the first start kept
    assert again.started_ms == r.started_ms and x.admin.retire_status() == again

    e = refused(lambda: x.send(pb.Document(subject="mới"), [S]))
    assert reason_of(e) == "NODE_RETIRING" and metadata_of(e).get("successor") == Z, e
    assert reason_of(refused(lambda: x.send_batch([(pb.Document(subject="mới"), [S])]))) == "NODE_RETIRING"
    assert x.admin.retire_status().queued == 2  # nothing stored by the refusals
    to_x = s.send(pb.Document(subject="gửi mã cũ"), [X]).envelopes[0]  # others' new mail for X goes to Z
    assert (to_x.recipient, to_x.successor_of) == (Z, X)

    with EventWaiter(s, sent=False) as at_s:
        x.admin.release(P)  # what it holds is sent on
        at_s.wait(lambda evs: {ev.message_id for ev in evs if ev.type == ARRIVED} >= {waiting, still}, TIMEOUT)
    left = x.admin.retire_status()
    assert (left.queued, left.unfetched, left.drained) == (0, 1, False)  # its agency has not read one document

    x.fetch(unread)
    x.ack(unread)
    done = x.admin.retire_status()
    assert (done.queued, done.parked, done.unfetched, done.drained) == (0, 0, 0, True)
    assert f"lienthong ca revoke <certificate of {X}>" in done.revoke_command
    assert "cessation_of_operation" in done.revoke_command

    node, handle = tree[X]
    config = str(handle.config)
    assert main(["retire", "--status", "--config", config]) == 0  # the operator's command
    out = capsys.readouterr().out
    assert f"retiring into {Z}" in out and "left: 0 envelope(s) queued (0 parked), 0 document(s)" in out, out
    assert "drained: nothing left" in out and "cessation_of_operation" in out, out
    assert main(["retire", "--to", S, "--config", config]) == EXIT_REFUSED
    assert "RETIRE_NOT_SUCCESSOR" in capsys.readouterr().err
    assert main(["retire", "--config", config]) == 2  # neither --to nor --status

    node.stop(grace=1)  # a restart keeps it retiring
    restarted = Node(load_config(handle.config))
    restarted.start()
    tree[X] = (restarted, handle)
    c = handle.client()
    try:
        assert c.admin.retire_status().started_ms == r.started_ms
        assert reason_of(refused(lambda: c.send(pb.Document(subject="sau khởi động lại"), [S]))) == "NODE_RETIRING"
    finally:
        c.close()
