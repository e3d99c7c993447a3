"""A document sent while the recipient's seal key cannot be looked up is sealed before it leaves
(node.exchange.late_seal), on real processes: province P, districts A and B under it.

A and B register with P; P is stopped; A's agency sends B a document with a marker in its body
and attachment. The Send is taken (store-and-forward: the agency's software is not told to come
back later), and the envelope waits in A's outbox in clear, A's own disk only. P comes back; before
A hands the envelope over it looks B's key up through P, makes the envelope again sealed (same
message id), and only that crosses P: P's files never hold the marker, B reads exactly what was
sent."""
from __future__ import annotations

import secrets
import sqlite3

import pytest

from node.harness import nodes
from node.harness.inproc import FAST_REGISTRY
from node.harness.nodes import NodeSpec
from node.harness.waiting import EventWaiter
from node.pb import envelope_pb2 as pb
from tests.cluster.test_sealed_cluster import holders

P, A, B = "000.00.00.H53", "000.00.35.H53", "000.00.36.H53"
TIMEOUT = 60.0
EXTRA = {**FAST_REGISTRY, "retry": {"first_delay": "100ms", "max_delay": "1s"}}


def outbox_seal(handle, message_id: str) -> int:
    """The seal of the envelope A keeps for `message_id` (read-only look at A's own file)."""
    db = sqlite3.connect(f"file:{handle.dir / 'data' / 'mailbox.sqlite3'}?mode=ro", uri=True)
    try:
        [(raw,)] = db.execute("SELECT raw FROM outbox_envelope WHERE message_id = ?", (message_id,)).fetchall()
    finally:
        db.close()
    return pb.Header.FromString(pb.Envelope.FromString(raw).header).seal


@pytest.fixture
def tree(tmp_path):
    ca = nodes.make_ca(tmp_path)
    addresses = {code: f"127.0.0.1:{nodes.free_port()}" for code in (P, A, B)}
    hp = nodes.prepare_node(tmp_path, ca, NodeSpec(P, "Tỉnh P", extra=EXTRA), addresses)
    ha = nodes.prepare_node(tmp_path, ca, NodeSpec(A, "Huyện A", peers={P: P}, parent=P, extra=EXTRA), addresses)
    hb = nodes.prepare_node(tmp_path, ca, NodeSpec(B, "Huyện B", peers={P: P}, parent=P, extra=EXTRA), addresses)
    try:
        nodes.start(hp)
        nodes.wait_healthy([hp], TIMEOUT)
        nodes.start_registered(hp, ha, TIMEOUT)
        nodes.start_registered(hp, hb, TIMEOUT)
        yield hp, ha, hb
    finally:
        for h in (hp, ha, hb):
            nodes.terminate(h)


def test_a_document_sent_while_the_key_cannot_be_looked_up_is_sealed_before_it_leaves(tree):
    hp, ha, hb = tree
    marker = f"KÍN-{secrets.token_hex(12)}"
    file_marker = secrets.token_hex(10) + "-attachment"
    assert nodes.terminate(hp) == 0  # A has never asked for B's record: nothing cached, nothing to ask
    a, b = ha.client(), hb.client()
    doc = pb.Document(subject=marker)
    doc.attachments.add(name="phu-luc.txt", content_type="text/plain", data=file_marker.encode())
    with EventWaiter(a, inbox=False) as sent, EventWaiter(b) as arrived:
        mid = a.send(doc, [B]).envelopes[0].message_id  # taken, though P is down
        assert outbox_seal(ha, mid) == pb.PLAIN          # kept at home in clear until the key is known
        nodes.start(hp)
        sent.wait(lambda _: mid in sent.ids("delivered"), TIMEOUT)
        arrived.wait(lambda _: mid in arrived.ids("arrived"), TIMEOUT)
    assert outbox_seal(ha, mid) == pb.SEALED_P256_AES256GCM  # made again, same message id
    got = b.fetch(mid)
    assert got.payload.document.subject == marker
    assert got.payload.document.attachments[0].data == file_marker.encode()
    assert pb.Header.FromString(pb.Envelope.FromString(got.envelope).header).seal == pb.SEALED_P256_AES256GCM
    assert nodes.terminate(hp) == 0
    assert holders(hp.dir, [marker.encode(), file_marker.encode()]) == []
