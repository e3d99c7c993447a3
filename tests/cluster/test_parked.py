"""A relay restored (or re-provisioned) with an empty registry takes mail for children that have not
registered again yet and delivers it once they do: "not yet", never "no such agency" (issue 12).

Real node processes: D's data directory is replaced by an empty one while C2 is down; C1 registers
again at once, so D has a registered child (the case that used to refuse C2's mail for good), and
C1's document for C2 is parked at D, then delivered when C2 comes back.
"""
from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import grpc

from node.harness import topology
from node.harness.waiting import EventWaiter
from node.pb import envelope_pb2 as pb

from .conftest import running

P, D, C1, C2 = "000.00.00.H53", "000.00.35.H53", "000.21.35.H53", "000.22.35.H53"
TREE = topology.parse({"name": "parked", "nodes": [
    {"code": P, "name": "tỉnh", "children": [
        {"code": D, "name": "huyện", "children": [{"code": C1, "name": "xã một"}, {"code": C2, "name": "xã hai"}]}]}]})


def registered(c, parent: str, codes: set[str], timeout: float = 60.0) -> None:
    """Paced reads of `parent`'s directory until it lists exactly `codes` as its children."""
    deadline, pace = time.monotonic() + timeout, threading.Event()
    while True:
        try:
            if {a.code for a in c.directory(parent, parent=parent)} == codes:
                return
        except grpc.RpcError:
            pass  # still starting
        assert time.monotonic() < deadline, f"{parent} does not list {codes} after {timeout}s"
        pace.wait(0.1)


def test_a_restored_relay_parks_mail_for_a_child_not_registered_again_and_delivers_it(tmp_path):
    with running(tmp_path, TREE) as c:
        c.kill(C2)
        c.kill(D)
        data = Path(c.nodes[D].dir) / "data"
        shutil.rmtree(data)  # re-provisioned: same keys and config, an empty mailbox and registry
        c.start(D)
        registered(c, D, {C1})  # C1 (alive) registers again; C2 is down
        sender = c.client(C1)
        with EventWaiter(sender) as events:
            [sent] = sender.send(pb.Document(subject="Gửi xã chưa đăng ký lại"), [C2]).envelopes
            mid = sent.message_id
            events.wait(lambda evs: any(e.type == "delivered" and e.message_id == mid for e in evs), 30)
            # D took custody (a receipt, not a refusal): the envelope waits there for C2
            [entry] = [s for s in sender.sent_all() if s.message_id == mid]
            assert pb.ReceiptBody.FromString(entry.receipt.body).receiver == D
            assert (entry.state, entry.waits_at) == ("not_registered_yet", D)  # and the sender is told so
            c.restart(C2)
            # C2 registered again: D sends what it parked, and C2's automatic 01 comes back to C1
            events.wait(lambda evs: any(e.type == "arrived" and e.kind == pb.STATUS and e.ref_message_id == mid
                                        for e in evs), 30)
        [got] = [e for e in c.client(C2).inbox_all() if e.message_id == mid]
        assert got.sender == C1
        assert not [e for e in sender.inbox_all() if e.kind == pb.NOTICE]  # no non-delivery notice
