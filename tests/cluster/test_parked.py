"""A relay restored (or re-provisioned) with an empty registry takes mail for children that have not
registered again yet and delivers it once they do: "not yet", never "no such agency" (issue 12).

Real node processes: D's data directory is replaced by an empty one while C2 is down; C1 registers
again at once, so D has a registered child (the case that used to refuse C2's mail for good). A
sender that does not seal (sealing.mode off: a node older than sealing) hands its document for C2
to D, which parks it and delivers it when C2 comes back. A sender that seals (the default,
`required`) gets no seal key for C2 from a tree without its record, so it keeps the document home
instead ("parking at the sender"), and sends it sealed once C2 has registered again: a relay's
"not registered yet" never makes it hand a document over in clear (issue 18).
"""
from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from pathlib import Path

import grpc

from node.harness import topology
from node.harness.waiting import EventWaiter
from node.pb import envelope_pb2 as pb

from .conftest import running, sent_entry

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


def reprovisioned(c) -> None:
    """D with an empty mailbox and registry (same keys and config) while C2 is down; C1 registers again."""
    c.kill(C2)
    c.kill(D)
    shutil.rmtree(Path(c.nodes[D].dir) / "data")
    c.start(D)
    registered(c, D, {C1})


def test_a_restored_relay_parks_mail_for_a_child_not_registered_again_and_delivers_it(tmp_path):
    with running(tmp_path, TREE, node_extra={C1: {"sealing": {"mode": "off"}}}) as c:
        reprovisioned(c)
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


def test_a_sealing_sender_keeps_mail_home_while_the_tree_has_no_record_and_seals_it_once_there_is(tmp_path):
    with running(tmp_path, TREE) as c:
        reprovisioned(c)
        sender = c.client(C1)
        with EventWaiter(sender) as events:
            [sent] = sender.send(pb.Document(subject="Mật: gửi xã chưa đăng ký lại"), [C2]).envelopes
            mid = sent.message_id
            entry = sent_entry(sender, mid, lambda e: "NOT_REGISTERED_YET" in e.reason)
            assert (entry.state, entry.delivered_ms) == ("not_registered_yet", 0) and "seal key" in entry.reason
            c.restart(C2)
            registered(c, D, {C1, C2})
            sender.admin.retry()  # as the operator would; else it is asked again every retry.max_delay
            events.wait(lambda evs: any(e.type == "arrived" and e.kind == pb.STATUS and e.ref_message_id == mid
                                        for e in evs), 30)
        [got] = [e for e in c.client(C2).inbox_all() if e.message_id == mid]
        assert got.sender == C1 and got.subject == "Mật: gửi xã chưa đăng ký lại"
        assert not [e for e in sender.inbox_all() if e.kind == pb.NOTICE]
        assert relayed_seal(c, D, mid) == pb.SEALED_P256_AES256GCM  # what D relayed, it could not read


def relayed_seal(c, relay: str, mid: str) -> int:
    """The seal scheme of the envelope `relay` holds for `mid` (read-only, from its mailbox)."""
    db = Path(c.nodes[relay].dir) / "data" / "mailbox.sqlite3"
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        [(raw,)] = conn.execute("SELECT raw FROM outbox_envelope WHERE message_id = ?", (mid,)).fetchall()
    finally:
        conn.close()
    return pb.Header.FromString(pb.Envelope.FromString(raw).header).seal
