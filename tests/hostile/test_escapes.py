"""What fuzzing and the hostile catalogue found, kept as tests.

1. A refusal raised while an envelope is being stored. Custody stored each accepted envelope in a savepoint with its handler (the documents
layer records it and queues the automatic 01; node.exchange.custody_commit now writes the rows that layer made
before the transaction, and the 01 is made before it). The handler could refuse there for a catalogue
reason, but the savepoint answered every failure INTERNAL: not final for the sender, which
retried the envelope for its whole lifetime while its hop backed off (a link jammed by one
envelope). Found by test_fuzz.py (Intake.receive) with a document a node signed to itself;
the real-process case is a document filled up to the receiver's size limit, whose automatic 01
(which copies the document's ids and adds the path) is over it (test_catalogue.py, "jam").

2. A certificate whose version byte is flipped: cryptography raises InvalidVersion, not ValueError,
and TrustStore let it through: INTERNAL for an envelope, a relay mark, a registration, a lookup
answer or a heartbeat's counters, and a receipt's failure went unrecorded (found by test_fuzz.py,
Intake.receive; the real-process cases are "... unknown X.509 version" in the catalogue).

3. Details that echo a peer's bytes (a header field, a relay mark's code, an odd code, an element's
text, a peer's own refusal) were unbounded: one refused envelope wrote its size into the audit log
and the node's log, and a refusal over gRPC's trailer limit reached its caller without its reason
(found by the catalogue's "... of 100 kB" cases).

4. and 5. (below): what a child answers for its subtree, in listings and in counters.
"""
from __future__ import annotations

import pytest

from node import envelope, stats
from node.clock import FakeClock
from node.codes import Hierarchy
from node.config import load_config
from node.errors import MAX_DETAIL, Reason, Rejected
from node.harness import nodes
from node.harness.nodes import NodeSpec
from node.pb import envelope_pb2 as pb
from node.pb import registry_pb2 as rpb
from node.pb import stats_pb2 as spb
from node.registry import records
from node.registry.directory import Directory
from node.runtime import Node
from node.store import audit, inbox, outbox
from node.store import stats as stats_store
from node.store.database import Database

A, B = "000.00.01.H53", "000.00.02.H53"
LIMIT = 8192


@pytest.fixture
def b_node(tmp_path):
    """B (messages.max_size 8 KiB), not serving: envelopes go straight into its intake; A is its peer."""
    ha, hb = nodes.pair(tmp_path, NodeSpec(A, "Sở A"), NodeSpec(B, "Sở B", extra={"messages": {"max_size": LIMIT}}))
    b = Node(load_config(hb.config))
    b.dispatcher.wake = lambda hop: None
    a = Node(load_config(ha.config))
    yield a, b
    for n in (a, b):
        n.db.close()


def stored(node: Node) -> tuple:
    return (inbox.count(node.db), outbox.counts(node.db),
            node.db.query_one("SELECT count(*) AS n FROM received")["n"])


def test_a_document_whose_automatic_01_would_be_over_the_limit_is_refused_for_good(b_node):
    a, b = b_node
    target, n = LIMIT - 16, LIMIT - 2048
    for _ in range(10):
        h, raw = envelope.seal(a.signer, B, pb.Payload(document=pb.Document(document_id="x" * n)), lifetime_s=600)
        if target <= len(raw) <= LIMIT:
            break
        n += target - len(raw)
    assert target <= len(raw) <= LIMIT
    good = envelope.seal(a.signer, B, pb.Payload(document=pb.Document(subject="nhỏ")), lifetime_s=600)[1]
    before = stored(b)

    full, small = b.intake.receive([raw, good], A)

    assert isinstance(full, Rejected) and full.reason is Reason.TOO_LARGE and full.reason.permanent, full
    assert "automatic status 01" in full.detail
    assert isinstance(small, pb.Receipt)  # the rest of the batch is stored
    assert inbox.get(b.db, h.message_id) is None
    assert stored(b)[0] == before[0] + 1 and stored(b)[2] == before[2] + 1


def test_an_envelope_a_node_signed_to_itself_is_refused_not_an_incident(b_node, caplog):
    _, b = b_node
    h, raw = envelope.seal(b.signer, B, pb.Payload(document=pb.Document(subject="cho chính mình")), lifetime_s=600)
    before = stored(b)

    [result] = b.intake.receive([raw], None)  # plain-text hand-over: no peer to compare the path with

    assert isinstance(result, Rejected) and result.reason is Reason.INVALID_REQUEST, result
    assert not [r for r in caplog.records if r.name == "lienthong.incident"]
    assert stored(b) == before and inbox.get(b.db, h.message_id) is None


def test_a_certificate_of_an_unknown_x509_version_is_untrusted_not_an_incident(b_node):
    a, _ = b_node
    v3 = b"\xa0\x03\x02\x01\x02"
    flipped = a.signer.cert_der.replace(v3, b"\xa0\x03\x02\x01\x03")
    assert flipped != a.signer.cert_der
    with pytest.raises(Rejected) as e:
        a.trust.identify(flipped)
    assert e.value.reason is Reason.UNTRUSTED_CERT


def test_a_detail_stays_printable_and_bounded_whatever_it_quotes():
    r = Rejected(Reason.SENDER_MISMATCH, "header says \x1b[2J" + "9" * 100_000)
    assert len(r.detail) == MAX_DETAIL and r.detail.isprintable() and r.detail.endswith("…")
    assert len(str(r)) < MAX_DETAIL + 40 and len(r.public_text) < MAX_DETAIL + 40
    assert Rejected(Reason.NOT_FOUND, "no message abc").detail == "no message abc"  # what is fine stays as it is


def test_the_audit_log_keeps_a_bounded_row_of_whatever_a_peer_sent(tmp_path):
    db = Database(tmp_path / "a.sqlite3")
    try:
        with db.transaction() as tx:
            audit.append_many(tx, [(1, audit.REJECTED_IN, "x" * 100_000, "p" * 1000, "d" * 100_000)])
            audit.append(tx, 2, audit.REJECTED_IN, "y" * 100_000, "", "e" * 100_000)
        rows = db.query("SELECT length(message_id) AS m, length(peer) AS p, length(detail) AS d FROM audit")
        assert all(r["m"] <= 128 and r["p"] <= 128 and r["d"] <= 1000 for r in rows)
    finally:
        db.close()


# 4. A child answering for its subtree was believed as it was: a record that did not parse failed the
#    whole listing (INTERNAL), and made-up or moved agencies were listed (catalogue: "subtree listing ...").

def test_a_childs_listing_of_its_subtree_keeps_only_the_agencies_own_records_below_it(tmp_path, pki, clock):
    d_code, child, below, elsewhere = "000.00.35.H53", "000.21.35.H53", "001.21.35.H53", "000.00.38.H53"
    db = Database(tmp_path / "d.sqlite3")
    try:
        d = Directory(db, pki.signer(d_code), pki.trust(clock), clock, name="huyện", configured_parents={},
                      parent=None, parent_address=None, transport=None, heartbeat_s=10,
                      stale_after_s=30, cache_ttl_s=300)
        make = lambda code, parent: records.make(pki.signer(code), name=code, level=3, parent=parent,  # noqa: E731
                                                 endpoint="127.0.0.1:9", now_ms=clock.now_ms())
        d.register(make(child, d_code), peer=child)
        made_up = rpb.AgencyRecord(code="002.21.35.H53", endpoint="127.0.0.1:9",
                                   cert_der=pki.signer(child).cert_der).SerializeToString()
        answer = [rpb.SignedRecord(record=b"\x0a\xff\xff"), make(below, child), make(elsewhere, "000.00.00.H53"),
                  rpb.SignedRecord(record=made_up, signature=pki.signer(child).sign(made_up))]
        d._call_down = lambda code, call: rpb.ChildrenResponse(entries=[rpb.DirectoryEntry(record=r) for r in answer])
        listed = {rpb.AgencyRecord.FromString(e.record.record).code for e in d.children(d_code, recursive=True)}
        assert listed == {child, below}
    finally:
        db.close()


# 5. A row of counters lists its agency's registered children (for not_reported): a child could name
#    agencies anywhere in the tree, and its parent's subtree view listed them as silent.

def test_counters_naming_children_outside_their_agency_are_dropped(tmp_path, pki, clock):
    child = "000.21.35.H53"
    db = Database(tmp_path / "s.sqlite3")
    try:
        row = spb.AgencyStats(code=child, as_of_ms=1, children=["001.21.35.H53", "000.00.00.H29"])
        stats.record_heartbeat(db, child, [stats.sign(pki.signer(child), row)], Hierarchy(), pki.trust(clock), 1)
        assert stats_store.subtree(db) == []
        row = spb.AgencyStats(code=child, as_of_ms=2, children=["001.21.35.H53"])
        stats.record_heartbeat(db, child, [stats.sign(pki.signer(child), row)], Hierarchy(), pki.trust(clock), 2)
        assert [r.code for r in stats_store.subtree(db)] == [child]
    finally:
        db.close()


# 6. A heartbeat claiming the national root's code "VN" as an odd code below the child was accepted: no
#    node above could then build its tree (every learned odd code ignored from then on, up to the root).

def test_a_heartbeat_may_not_claim_the_root(tmp_path, pki, clock):
    d_code, child = "000.00.35.H53", "000.21.35.H53"
    db = Database(tmp_path / "d.sqlite3")
    try:
        d = Directory(db, pki.signer(d_code), pki.trust(clock), clock, name="huyện", configured_parents={},
                      parent=None, parent_address=None, transport=None, heartbeat_s=10,
                      stale_after_s=30, cache_ttl_s=300)
        d.register(records.make(pki.signer(child), name="xã", level=3, parent=d_code, endpoint="127.0.0.1:9",
                                now_ms=clock.now_ms()), peer=child)
        with pytest.raises(Rejected) as e:
            d.heartbeat(child, child, {"VN": child, "vxp.saas.03": child})
        assert e.value.reason is Reason.WRONG_PARENT
        d.heartbeat(child, child, {"vxp.saas.03": child})
        assert d.hierarchy.parent("vxp.saas.03") == child  # the tree still builds with what may be claimed
    finally:
        db.close()


# 7. A relay mark dated in the last hours of 9999 (UTC) passed, but it is year 10000 in Vietnam's time,
#    in which the automatic 01 writes the path: OverflowError inside the custody transaction (INTERNAL).

def test_a_relay_mark_too_late_for_vietnams_calendar_is_bad_time(b_node):
    a, b = b_node
    env = pb.Envelope.FromString(envelope.seal(a.signer, B, pb.Payload(document=pb.Document(subject="x")),
                                               lifetime_s=600)[1])
    env = envelope.add_trace(env, a.signer, clock=FakeClock(253_402_300_799_000 - 3600_000))
    with pytest.raises(Rejected) as e:
        envelope.verify(env.SerializeToString(), b.trust, max_size=LIMIT)
    assert e.value.reason is Reason.BAD_TIME
