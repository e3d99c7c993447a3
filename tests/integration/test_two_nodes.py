"""Two real node processes over mutual TLS: 200 documents A → B with B killed -9 part-way.

Afterwards B holds every document exactly once with a verifying signature, and A
holds a valid signed receipt for each: custody was transferred, never assumed.
"""
from __future__ import annotations

import threading

import pytest

from node import envelope, receipts
from node.clock import SYSTEM
from node.harness import nodes
from node.harness.waiting import EventWaiter
from node.identity.trust import TrustStore
from node.pb import envelope_pb2 as pb

A, B = "000.00.01.H53", "000.00.35.H53"
N = 200
FAST_RETRY = {"retry": {"first_delay": "100ms", "multiplier": 2.0, "max_delay": "1s"}}


@pytest.fixture
def pair(tmp_path):
    a, b = nodes.pair(tmp_path, nodes.NodeSpec(A, "Sở A", extra=FAST_RETRY), nodes.NodeSpec(B, "Huyện B", extra=FAST_RETRY))
    for h in (a, b):
        nodes.start(h)
    nodes.wait_healthy([a, b])
    yield a, b
    for h in (a, b):
        nodes.terminate(h)


def test_kill_9_receiver_mid_stream_loses_and_duplicates_nothing(pair, tmp_path):
    a, b = pair
    sent_ids: list[str] = []
    send_error: list[Exception] = []

    def send_all():
        client = a.client()
        try:
            for i in range(N):
                doc = pb.Document(subject=f"Công văn số {i}", document_id=f"{A},2026/11/21,{i}/VP",
                                  attachments=[pb.Attachment(name=f"{i}.txt", content_type="text/plain", data=bytes([i % 256]) * 1000)])
                sent_ids.append(client.send(doc, [B]).envelopes[0].message_id)
        except Exception as e:  # surfaced below
            send_error.append(e)

    with EventWaiter(a.client(), inbox=False) as a_events:
        with EventWaiter(b.client(), sent=False) as b_events:
            sender = threading.Thread(target=send_all)
            sender.start()
            b_events.wait(lambda evs: len(evs) >= 40, timeout=60)
        nodes.kill9(b)  # part-way: the rest is queued at A or in flight
        sender.join(60)
        assert not send_error and len(sent_ids) == N
        arrived_before_kill = len(b_events.events)
        assert arrived_before_kill < N

        nodes.start(b)
        nodes.wait_healthy([b])
        a_events.wait(lambda evs: {e.message_id for e in evs if e.type == "delivered"} >= set(sent_ids), timeout=120)

    # B: every document exactly once, each signature verifies
    inbox = b.client().inbox_all()
    assert sorted(e.message_id for e in inbox) == sorted(sent_ids)
    trust = TrustStore.from_files([tmp_path / "ca" / "ca.pem"], SYSTEM)
    bc = b.client()
    subjects, digests = set(), {}
    for e in inbox:
        got = bc.fetch(e.message_id)
        digests[e.message_id] = envelope.sha256(got.envelope)  # no relay: the exact bytes A handed over
        assert got.signature_verified
        v = envelope.verify(got.envelope, trust, max_size=1 << 24, check_expiry=False)
        assert v.header.sender == A and v.header.message_id == e.message_id
        subjects.add(got.payload.document.subject)
    assert subjects == {f"Công văn số {i}" for i in range(N)}

    # A: all delivered, each with B's signed receipt over the exact bytes it holds
    sent = a.client().sent_all()
    assert len(sent) == N and {s.state for s in sent} == {"delivered"}
    for s in sent:
        body = pb.ReceiptBody.FromString(s.receipt.body)
        assert body.receiver == B and s.receipt.message_id == s.message_id
        receipts.verify(s.receipt, trust, expect_receiver=B, message_id=s.message_id,
                                envelope_digest=digests[s.message_id])
    assert sum(s.attempts for s in sent) >= N
