"""The tiered registry and relaying, on a small in-process tree over real gRPC and mutual TLS.

    000.00.00.H53 (province)
    ├── 000.00.35.H53 (district) ── 000.23.35.H53 (commune)
    └── 000.00.38.H53 (district) ── 000.11.38.H53 (commune)
"""
from __future__ import annotations

import grpc
import pytest

from node.clock import SYSTEM
from node.codes import Hierarchy
from node.grpc_errors import metadata_of, reason_of
from node.transport.grpc_peers import TlsMaterial, open_channel
from node.harness.waiting import EventWaiter
from node.pb import envelope_pb2 as pb
from node.pb import registry_pb2_grpc as rgrpc
from node.registry import records
from node.harness.inproc import start_tree

P, D1, D2, C1, C2 = "000.00.00.H53", "000.00.35.H53", "000.00.38.H53", "000.23.35.H53", "000.11.38.H53"
PARENT = {D1: P, D2: P, C1: D1, C2: D2}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    t = start_tree(tmp_path_factory.mktemp("tree"), {P: None, **PARENT})
    yield t
    t.stop()


def test_children_register_and_the_directory_lists_them(tree):
    province = tree[P][1].client()
    assert {a.code for a in province.directory(parent=P)} == {D1, D2}
    everyone = province.directory(recursive=True)
    assert {a.code for a in everyone} == {D1, D2, C1, C2}
    assert all(a.reachable for a in everyone)
    [d1] = [a for a in everyone if a.code == D1]
    assert (d1.level, d1.parent, d1.name) == (2, P, f"agency {D1}")
    # by level and by name, asked from a commune: resolved through the tree
    commune = tree[C1][1].client()
    assert {a.code for a in commune.directory(parent=P, recursive=True, level=3)} == {C1, C2}
    assert [a.code for a in commune.directory(parent=P, recursive=True, name_contains="11.38")] == [C2]


def test_lookup_walks_up_then_down(tree):
    found = tree[C1][1].client().lookup(C2)
    assert (found.code, found.parent, found.level) == (C2, D2, 3)
    assert found.endpoint == tree[C2][1].listen
    with pytest.raises(grpc.RpcError) as e:
        tree[C1][1].client().lookup("000.99.38.H53")  # placed under D2 by the code rule, not registered: nobody
    # holds it today: NOT_FOUND naming where mail for it would wait (not a 503 a client retries for ever)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND and reason_of(e.value) == "UNKNOWN_RECIPIENT"
    assert metadata_of(e.value)["waits_at"] == D2
    with pytest.raises(grpc.RpcError) as e:
        tree[C1][1].client().lookup("vxp.nobody.99")  # no place in the tree at all: nobody has it
    assert e.value.code() == grpc.StatusCode.NOT_FOUND and reason_of(e.value) == "UNKNOWN_RECIPIENT"


def test_commune_to_commune_is_relayed_with_its_full_verified_path(tree):
    sender, recipient = tree[C1][1].client(), tree[C2][1].client()
    with EventWaiter(recipient, sent=False) as arrivals:
        [sent] = sender.send(pb.Document(subject="Liên thông qua cây"), [C2]).envelopes
        arrivals.wait(lambda evs: sent.message_id in {e.message_id for e in evs}, timeout=30)
    got = recipient.fetch(sent.message_id)
    assert got.signature_verified
    assert [h.code for h in got.path] == Hierarchy().route(C1, C2) == [C1, D1, P, D2, C2]
    # the sender's receipt comes from its first hop, its parent district
    [entry] = [e for e in sender.sent_all() if e.message_id == sent.message_id]
    assert pb.ReceiptBody.FromString(entry.receipt.body).receiver == D1


def test_unknown_recipient_gets_a_notice_not_a_retry_storm(tree):
    sender = tree[C1][1].client()
    with EventWaiter(sender) as events:
        [sent] = sender.send(pb.Document(subject="Không ai nhận"), ["000.00.00.H99"]).envelopes  # no such province
        events.wait(lambda evs: any(e.type == "arrived" for e in evs), timeout=30)
    [entry] = [e for e in sender.sent_all() if e.message_id == sent.message_id]
    assert entry.state == "rejected" and entry.reason.startswith("UNKNOWN_RECIPIENT") and entry.attempts <= 1
    assert entry.reason.count("UNKNOWN_RECIPIENT") == 1  # not repeated by each hop that passed the refusal on
    notice = [e for e in sender.inbox_all() if e.kind == pb.NOTICE][-1]
    payload = sender.fetch(notice.message_id).payload
    assert payload.notice.ref_message_id == sent.message_id and payload.notice.reason == "UNKNOWN_RECIPIENT"


def register_as(tree, registrant_code: str, record_signer, at: str):
    """Call Register on node `at`, connecting with `registrant_code`'s certificate."""
    handle = tree[registrant_code][1]
    key = (handle.dir / "keys" / "node.key").read_bytes()
    cert = (handle.dir / "keys" / "node.pem").read_bytes()
    anchors = (handle.dir / "keys" / "ca.pem").read_bytes()
    channel = open_channel(TlsMaterial(key, cert, anchors), at, tree[at][1].listen, 1 << 20)
    record = records.make(record_signer, name="x", level=3, parent=at, endpoint="127.0.0.1:1", now_ms=SYSTEM.now_ms())
    try:
        return rgrpc.RegistryStub(channel).Register(record, timeout=10)
    finally:
        channel.close()


def test_registration_under_the_wrong_parent_is_refused(tree):
    with pytest.raises(grpc.RpcError) as e:
        register_as(tree, C1, tree[C1][0].signer, at=D2)  # C1 belongs under D1
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED and reason_of(e.value) == "WRONG_PARENT"


def test_registering_another_agencys_code_is_refused(tree):
    with pytest.raises(grpc.RpcError) as e:
        register_as(tree, C1, tree[C2][0].signer, at=D2)  # C1's connection, C2's record
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED and reason_of(e.value) == "SENDER_MISMATCH"
    assert {a.endpoint for a in tree[D2][1].client().directory(parent=D2)} == {tree[C2][1].listen}
