"""How many updates one document takes (limits.updates_per_document): a revocation revokes every update of its
document with it, in its one custody transaction, so that number is bounded where the updates arrive (two
in-process nodes; real gRPC, mTLS, SQLite)."""
from __future__ import annotations

from node.harness.inproc import running_pair
from node.harness.nodes import NodeSpec
from node.harness.waiting import EventWaiter
from node.pb import envelope_pb2 as pb

A, B = "000.00.01.H53", "000.00.02.H53"
TIMEOUT = 20.0


def arrived(client_b, act):
    """Run `act()` (a SendResponse) and wait until its envelope arrives at B; its message id."""
    with EventWaiter(client_b, sent=False) as ev:
        mid = act().envelopes[0].message_id
        ev.wait(lambda evs: mid in {e.message_id for e in evs}, TIMEOUT)
    return mid


def test_updates_past_the_recipients_bound_are_refused_there_and_the_revocation_revokes_those_taken(tmp_path):
    a = NodeSpec(A, "Sở A")
    b = NodeSpec(B, "Sở B", extra={"limits": {"updates_per_document": 2}})
    with running_pair(tmp_path, a, b, TIMEOUT) as (_, _, ha, hb):
        client_a, client_b = ha.client(TIMEOUT), hb.client(TIMEOUT)
        try:
            sent = client_a.send(pb.Document(subject="Bản gốc"), [B])
            original = sent.envelopes[0].message_id
            with EventWaiter(client_b, sent=False) as ev:
                ev.wait(lambda evs: original in {e.message_id for e in evs}, TIMEOUT)
            updates = [arrived(client_b, lambda i=i: client_a.change(
                sent.doc_id, 2, document=pb.Document(subject=f"Bản sửa {i}"))) for i in (1, 2)]
            with EventWaiter(client_a, inbox=False) as ev:  # the third: B refuses it
                third = client_a.change(sent.doc_id, 2, document=pb.Document(subject="Bản sửa 3"))
                mid = third.envelopes[0].message_id
                [refused] = [e for e in ev.wait(lambda evs: mid in {e.message_id for e in evs if e.type == "rejected"},
                                                TIMEOUT) if e.type == "rejected" and e.message_id == mid]
            assert refused.reason == "OVER_LIMIT"
            assert mid not in {e.message_id for e in client_b.inbox_all()}
            # the revocation revokes the two updates B took, with the document
            arrived(client_b, lambda: client_a.change(sent.doc_id, 1, reason="thu hồi"))
            states = {x.message_id: x.state for x in client_b.inbox_all()}
            assert [states[m] for m in (original, *updates)] == ["revoked"] * 3
        finally:
            client_a.close()
            client_b.close()
