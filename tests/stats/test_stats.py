"""Statistics: own counters from the mailbox tables, child reports stored per heartbeat,
de-duplication, the distinct-code bars and the summary shares."""
from __future__ import annotations

import sqlite3

import pytest

from node import stats
from node.codes import Hierarchy
from node.pb import envelope_pb2 as pb
from node.pb import stats_pb2 as spb
from node.store import stats as store
from node.store.database import Database

ME, ME_NAME = "000.00.35.H53", "UBND huyện Hòa Thành"
C1, C2 = "000.23.35.H53", "000.24.35.H53"     # communes under ME
OTHER = "000.00.38.H53"                        # a sibling district, not under ME
DOC, STATUS, NOTICE = pb.DOCUMENT, pb.STATUS, pb.NOTICE


@pytest.fixture
def db(tmp_path):
    d = Database(tmp_path / "m.sqlite3")
    yield d
    d.close()


_seq = iter(range(10**9))


def _id(prefix: str) -> str:
    return f"{prefix}{next(_seq):08d}"


def add_doc(db, kind=DOC, doc_id=None) -> str:
    doc_id = doc_id or _id("doc")
    with db.transaction() as c:
        c.execute("INSERT INTO docs (doc_id, created_ms, kind) VALUES (?,?,?)", (doc_id, 1, kind))
    return doc_id


def add_outbox(db, kind=DOC, origin="local") -> str:
    mid = _id("out")
    with db.transaction() as c:
        c.execute("INSERT INTO outbox (message_id, sender, recipient, next_hop, kind, priority, origin,"
                  " created_ms, expires_ms) VALUES (?,?,?,?,?,?,?,?,?)", (mid, ME, C1, C1, kind, 0, origin, 1, 2))
    return mid


def add_inbox(db, kind=DOC) -> str:
    mid = _id("in")
    with db.transaction() as c:
        c.execute("INSERT INTO inbox (message_id, sender, kind, priority, received_ms) VALUES (?,?,?,?,?)",
                  (mid, OTHER, kind, 0, 1))
    return mid


def answer(db, doc_message_id: str, *codes: str) -> None:
    with db.transaction() as c:
        c.executemany("INSERT INTO status_out (doc_message_id, status_code, status_message_id, issued_ms) VALUES (?,?,?,?)",
                      [(doc_message_id, code, _id("so"), 1) for code in codes])


def status_back(db, doc_message_id: str, code: str = "03") -> None:
    with db.transaction() as c:
        c.execute("INSERT INTO status_in (status_message_id, doc_message_id, recipient, status_code, issued_ms, status,"
                  " received_ms) VALUES (?,?,?,?,?,?,?)", (_id("si"), doc_message_id, C1, code, 1, b"", 1))


def agency(code: str, as_of: int = 1, *, name: str = "", received: int = 0, a3: int = 0, a5: int = 0,
           codes: int = 0, sent: int = 0, statuses: int = 0) -> spb.AgencyStats:
    return spb.AgencyStats(code=code, name=name or f"agency {code}", as_of_ms=as_of, docs_received=received,
                           docs_answered_3=a3, docs_answered_5=a5, distinct_codes_returned=codes,
                           docs_sent=sent, statuses_sent=statuses)


def unsigned(*rows: spb.AgencyStats) -> list[tuple[spb.AgencyStats, spb.SignedStats]]:
    """Rows as the store keeps them, for tests of the store alone (it does not check signatures)."""
    return [(a, spb.SignedStats(stats=a.SerializeToString())) for a in rows]


def signed(pki, *rows: spb.AgencyStats) -> list[spb.SignedStats]:
    """Rows as each agency signs its own."""
    return [stats.sign(pki.signer(a.code), a) for a in rows]


def counters(a: spb.AgencyStats) -> dict:
    return {f: getattr(a, f) for f in ("docs_sent", "envelopes_sent", "docs_received", "statuses_sent",
                                       "statuses_received", "docs_answered_3", "docs_answered_5",
                                       "distinct_codes_returned")}


# ---- own counters ------------------------------------------------------------------------

def test_empty_mailbox_counts_zero(db, clock):
    own = store.own_counters(db, ME, ME_NAME, clock.now_ms())
    assert (own.code, own.name, own.as_of_ms) == (ME, ME_NAME, clock.now_ms())
    assert set(counters(own).values()) == {0}


def test_every_counter_from_the_tables(db, clock):
    for kind in (DOC, DOC, STATUS):
        add_doc(db, kind)
    sent = [add_outbox(db) for _ in range(3)]          # three document envelopes of ours
    add_outbox(db, kind=STATUS)                        # a status we sent: not a document envelope
    add_outbox(db, origin="relay")                     # relayed for someone else
    add_outbox(db, origin="relay")
    docs = [add_inbox(db) for _ in range(4)]
    add_inbox(db, STATUS)
    status_env = add_inbox(db, STATUS)
    add_inbox(db, NOTICE)

    answer(db, docs[0], "01", "03", "04")              # 3 distinct
    answer(db, docs[1], "01", "03", "04", "05", "06")  # 5 distinct
    answer(db, docs[2], "01", "01", "03")              # 3 statuses, 2 distinct codes
    answer(db, docs[3], "01")
    answer(db, status_env, "01", "02", "03", "04", "05")  # not on a received document: no "answered" count
    for mid in sent[:2]:
        status_back(db, mid, "01")
    status_back(db, sent[0], "03")

    own = store.own_counters(db, ME, ME_NAME, clock.now_ms())
    assert counters(own) == {
        "docs_sent": 2, "envelopes_sent": 3, "docs_received": 4,
        "statuses_sent": 3 + 5 + 3 + 1 + 5, "statuses_received": 3,
        "docs_answered_3": 2, "docs_answered_5": 1,
        "distinct_codes_returned": 6,                  # 01 02 03 04 05 06
    }


def test_answered_counts_distinct_codes_not_statuses(db, clock):
    doc = add_inbox(db)
    answer(db, doc, "01", "05", "05", "05", "05")      # five statuses, two codes
    own = store.own_counters(db, ME, ME_NAME, 0)
    assert (own.statuses_sent, own.docs_answered_3, own.docs_answered_5, own.distinct_codes_returned) == (5, 0, 0, 2)
    answer(db, doc, "03")
    assert store.own_counters(db, ME, ME_NAME, 0).docs_answered_3 == 1


def test_own_counters_read_a_committed_snapshot_without_the_database_lock(db):
    add_inbox(db)
    with db.transaction() as c:                        # the node is mid-write, holding the lock
        c.execute("INSERT INTO inbox (message_id, sender, kind, priority, received_ms) VALUES ('x', ?, 1, 0, 1)", (OTHER,))
        assert store.own_counters(db, ME, ME_NAME, 0).docs_received == 1
    assert store.own_counters(db, ME, ME_NAME, 0).docs_received == 2


def test_own_counter_queries_read_indexes_only(db):
    """No table is read row by row: every scan of a mailbox table is over a covering index."""
    conn = sqlite3.connect(str(db.path))
    try:
        plan = [row[3] for q in (store._TOTALS, store._DISTINCT_CODES, store._ANSWERED)
                for row in conn.execute("EXPLAIN QUERY PLAN " + q, {"doc": DOC})]
    finally:
        conn.close()
    tables = ("docs", "outbox", "inbox", "status_out", "status_in", "i")
    scans = [step for step in plan if step.split(" ")[:1] == ["SCAN"] and step.split(" ")[1] in tables]
    assert scans and all("USING COVERING INDEX" in step for step in scans), plan


# ---- bars and summary ------------------------------------------------------------------------

@pytest.mark.parametrize("codes, m3, m5", [(0, False, False), (2, False, False), (3, True, False),
                                           (4, True, False), (5, True, True), (9, True, True)])
def test_bar_is_distinct_codes_returned(codes, m3, m5):
    a = agency(ME, codes=codes)
    assert (stats.meets(a, 3), stats.meets(a, 5)) == (m3, m5)


def test_own_bar_follows_codes_returned_anywhere(db):
    answer(db, add_inbox(db), "01", "03")
    answer(db, add_inbox(db), "04")
    own = store.own_counters(db, ME, ME_NAME, 0)
    # no single document got 3 codes, but the agency's software returns three different statuses
    assert (own.docs_answered_3, own.distinct_codes_returned) == (0, 3)
    assert stats.summarize([own]).meeting_3 == 1


def test_summarize_empty_list_is_all_zero():
    assert stats.summarize([]) == spb.StatsSummary()


def test_summarize_nobody_received_anything_has_zero_shares():
    s = stats.summarize([agency(ME, codes=3, sent=4), agency(C1)])
    assert (s.agencies, s.meeting_3, s.docs_received, s.share_answered_3, s.share_answered_5, s.docs_sent) == (2, 1, 0, 0.0, 0.0, 4)


def test_summarize_shares_are_over_all_documents_received():
    s = stats.summarize([
        agency(ME, received=10, a3=8, a5=2, codes=6, sent=5, statuses=30),
        agency(C1, received=30, a3=4, a5=0, codes=3, sent=1, statuses=40),
        agency(C2, received=0, codes=1),
    ])
    assert (s.agencies, s.meeting_3, s.meeting_5) == (3, 2, 1)
    assert (s.docs_received, s.docs_sent, s.statuses_sent) == (40, 6, 70)
    assert s.share_answered_3 == pytest.approx(12 / 40)
    assert s.share_answered_5 == pytest.approx(2 / 40)


# ---- child reports -------------------------------------------------------------------------------

def test_a_new_heartbeat_replaces_what_that_child_reported(db):
    store.store_child_subtree(db, C1, unsigned(agency(C1, 10), agency("000.01.35.H53", 10)), now_ms=10)
    store.store_child_subtree(db, C2, unsigned(agency(C2, 10)), now_ms=10)
    store.store_child_subtree(db, C1, unsigned(agency(C1, 20, received=7)), now_ms=20)
    rows = store.subtree(db)
    assert [(r.code, r.as_of_ms) for r in rows] == [(C1, 20), (C2, 10)]
    assert rows[0].docs_received == 7


def test_a_code_twice_in_one_report_keeps_the_newest(db):
    store.store_child_subtree(db, C1, unsigned(agency(C1, 30, received=3), agency(C1, 50, received=5), agency(C1, 40)), 1)
    [row] = store.subtree(db)
    assert (row.as_of_ms, row.docs_received) == (50, 5)


def test_forget_child_drops_its_rows(db):
    store.store_child_subtree(db, C1, unsigned(agency(C1)), 1)
    store.store_child_subtree(db, C2, unsigned(agency(C2)), 1)
    store.forget_child(db, C1)
    assert [r.code for r in store.subtree(db)] == [C2]


def test_collect_own_only_or_with_subtree(db, clock):
    answer(db, add_inbox(db), "01", "03", "04")
    store.store_child_subtree(db, C1, unsigned(agency(C1, received=10, a3=5, codes=4)), 1)

    mine = stats.collect(db, ME, ME_NAME, clock, subtree=False)
    assert [a.code for a in mine.agencies] == [ME]
    assert (mine.summary.agencies, mine.summary.docs_received, mine.summary.meeting_3) == (1, 1, 1)

    everyone = stats.collect(db, ME, ME_NAME, clock, subtree=True)
    assert [a.code for a in everyone.agencies] == [ME, C1]
    assert everyone.agencies[0].as_of_ms == clock.now_ms()
    assert (everyone.summary.agencies, everyone.summary.docs_received, everyone.summary.meeting_3) == (2, 11, 2)
    assert everyone.summary.share_answered_3 == pytest.approx(6 / 11)


def test_collect_deduplicates_by_code_keeping_the_newest(db, clock):
    grandchild = "000.01.35.H53"
    # a commune moved between two children: both still have a report for it
    store.store_child_subtree(db, C1, unsigned(agency(C1, 100), agency(grandchild, 100, received=1)), 100)
    store.store_child_subtree(db, C2, unsigned(agency(C2, 100), agency(grandchild, 200, received=2)), 200)
    # a child claiming our own code never overrides our own counters
    store.store_child_subtree(db, "000.25.35.H53", unsigned(agency(ME, clock.now_ms() + 10**6, received=99)), 1)
    resp = stats.collect(db, ME, ME_NAME, clock, subtree=True)
    assert [a.code for a in resp.agencies] == [ME, grandchild, C1, C2]
    assert resp.agencies[0].docs_received == 0 and resp.agencies[0].name == ME_NAME
    assert resp.agencies[1].docs_received == 2
    assert resp.summary.agencies == 4


def test_heartbeat_payload_is_own_counters_signed_and_the_stored_subtree_as_signed(db, clock, pki):
    add_doc(db)
    [c1] = signed(pki, agency(C1, 5))
    store.store_child_subtree(db, C1, [(agency(C1, 5), c1)], 5)
    payload = stats.heartbeat_payload(db, pki.signer(ME), ME_NAME, clock)
    rows = [stats.verify(p, pki.trust(clock)) for p in payload]
    assert [(a.code, a.docs_sent) for a in rows] == [(ME, 1), (C1, 0)]
    assert rows[0].as_of_ms == clock.now_ms()
    assert payload[1] == c1  # forwarded exactly as C1 signed it


def test_heartbeat_payload_never_raises(db, clock, monkeypatch, pki):
    def broken(*a, **k):
        raise sqlite3.OperationalError("disk I/O error")
    monkeypatch.setattr(store, "own_counters", broken)
    assert stats.heartbeat_payload(db, pki.signer(ME), ME_NAME, clock) == []


def test_reports_travel_up_two_levels(tmp_path, clock, pki):
    """commune → district → province, each storing what its child sent."""
    province, district, commune = (Database(tmp_path / f"{n}.sqlite3") for n in ("p", "d", "c"))
    trust = pki.trust(clock)
    try:
        answer(commune, add_inbox(commune), "01", "03", "04", "05", "06")
        hierarchy = Hierarchy()
        stats.record_heartbeat(district, C1, stats.heartbeat_payload(commune, pki.signer(C1), "xã", clock),
                               hierarchy, trust, 1)
        stats.record_heartbeat(province, ME, stats.heartbeat_payload(district, pki.signer(ME), ME_NAME, clock),
                               hierarchy, trust, 2)
        resp = stats.collect(province, "000.00.00.H53", "UBND tỉnh", clock, subtree=True)
        assert [a.code for a in resp.agencies] == ["000.00.00.H53", ME, C1]
        assert (resp.agencies[2].name, resp.agencies[2].docs_answered_5) == ("xã", 1)
        assert (resp.summary.meeting_5, resp.summary.share_answered_5) == (1, 1.0)
    finally:
        for d in (province, district, commune):
            d.close()


def test_record_heartbeat_keeps_only_the_childs_subtree(db, pki, clock):
    trust = pki.trust(clock)
    rows = signed(pki, agency(C1), agency("000.01.23.H53"), agency("000.00.00.H53"), agency(OTHER))
    # C1 is a commune of ME; "000.01.23.H53" is not below it
    stats.record_heartbeat(db, C1, rows, Hierarchy(), trust, 1)
    assert [r.code for r in store.subtree(db)] == [C1]
    stats.record_heartbeat(db, ME, signed(pki, agency(ME), agency(C1), agency(C2), agency(OTHER)), Hierarchy(),
                           trust, 2)
    assert [r.code for r in store.subtree(db)] == [ME, C1, C1, C2]


def test_record_heartbeat_with_an_empty_report_keeps_the_previous_one(db, pki, clock):
    stats.record_heartbeat(db, C1, signed(pki, agency(C1, 5)), Hierarchy(), pki.trust(clock), 5)
    stats.record_heartbeat(db, C1, [], Hierarchy(), pki.trust(clock), 6)
    assert [(r.code, r.as_of_ms) for r in store.subtree(db)] == [(C1, 5)]


def test_a_child_can_neither_invent_agencies_nor_inflate_another_agencys_counters(db, pki, clock):
    """Invented statistics: C1 reports counters for agencies under it that it signed itself (one
    invented, one real but inflated), and a row with no signature at all. Only its own stand."""
    trust = pki.trust(clock)
    grandchild = "001.23.35.H53"  # under C1 by the code rule
    own = stats.sign(pki.signer(C1), agency(C1, received=3))
    forged = [stats.sign(pki.signer(C1), agency(f"{n:03d}.23.35.H53", received=10**6)) for n in range(2, 300)]
    inflated = stats.sign(pki.signer(C1), agency(grandchild, received=10**6))
    bare = spb.SignedStats(stats=agency(grandchild, received=10**6).SerializeToString())
    stats.record_heartbeat(db, C1, [own, *forged, inflated, bare], Hierarchy(), trust, 1)
    assert [(r.code, r.docs_received) for r in store.subtree(db)] == [(C1, 3)]
    # the grandchild's own signed counters, forwarded by C1, are kept
    real = stats.sign(pki.signer(grandchild), agency(grandchild, received=4))
    stats.record_heartbeat(db, C1, [own, real], Hierarchy(), trust, 2)
    assert [(r.code, r.docs_received) for r in store.subtree(db)] == [(C1, 3), (grandchild, 4)]


def test_a_subtree_view_names_the_registered_agencies_that_did_not_report(db, pki, clock):
    c1 = agency(C1)
    c1.children.extend(["001.23.35.H53", "002.23.35.H53"])
    store.store_child_subtree(db, C1, [(c1, stats.sign(pki.signer(C1), c1))], 1)
    store.store_child_subtree(db, "001.23.35.H53", unsigned(agency("001.23.35.H53")), 1)
    resp = stats.collect(db, ME, ME_NAME, clock, subtree=True)
    assert list(resp.not_reported) == ["002.23.35.H53"]


def test_odd_codes_are_vouched_through_the_hierarchy():
    odd = "vxp.saas.03"
    h = Hierarchy({odd: C1})
    assert [r.code for r in stats.vouched(C1, [agency(odd), agency(C2)], h)] == [odd]
    assert stats.vouched(C1, [agency(odd)], Hierarchy()) == []


def test_own_counters_are_counted_again_only_after_a_commit(db, monkeypatch):
    """Every heartbeat asks for them: with nothing committed since the last count (an idle agency) no
    connection is opened; the first commit after it is counted."""
    add_inbox(db)
    opened = []
    real = store._reader

    def counting(d):
        opened.append(d)
        return real(d)
    monkeypatch.setattr(store, "_reader", counting)
    assert store.own_counters(db, ME, ME_NAME, 1).docs_received == 1
    again = store.own_counters(db, ME, ME_NAME, 2)
    assert (again.docs_received, again.as_of_ms, len(opened)) == (1, 2, 1)
    add_inbox(db)
    assert store.own_counters(db, ME, ME_NAME, 3).docs_received == 2 and len(opened) == 2
