"""A document's life on the `small` topology, every node its own process.

Sender: a commune in Tây Ninh. Recipients in three other districts across two provinces.
The cluster is shared with other modules (see conftest.py): tests follow this module's own
message ids, and its statistics are checked as differences from before it sent anything.
"""
from __future__ import annotations

import grpc
import pytest

from node import envelope
from node.codes import Hierarchy
from node.envelope import Signer
from node.transport.grpc_peers import CALLED, TlsMaterial, open_channel
from node.harness.waiting import EventWaiter, wait_for_statuses
from node.pb import envelope_pb2 as pb
from node.pb import exchange_pb2 as xpb
from node.pb import exchange_pb2_grpc as xgrpc

SENDER = "000.21.35.H53"
R_COMMUNE, R_OTHER_PROVINCE, R_DISTRICT = "000.23.38.H53", "000.21.31.H29", "000.00.32.H29"
RECIPIENTS = [R_COMMUNE, R_OTHER_PROVINCE, R_DISTRICT]
FORGER = "000.22.35.H53"  # a neighbour of the sender that received nothing


@pytest.fixture(scope="module")
def before(cluster):
    """SENDER's and R_COMMUNE's own counters before this module sends anything."""
    counted = {code: stats_of(cluster, code, subtree=False).agencies[0] for code in (SENDER, R_COMMUNE)}
    r = counted[R_COMMUNE]
    # distinct_codes_returned is a count of a set, not a sum: the figure below is exact only if
    # R_COMMUNE has returned nothing but the automatic 01 (which every document it received got)
    assert r.distinct_codes_returned == (1 if r.docs_received else 0), (
        f"{R_COMMUNE} already returned other statuses on the shared cluster; give this module its own recipient")
    return counted


@pytest.fixture(scope="module")
def sent(cluster, before):
    doc = pb.Document(subject="Triển khai liên thông văn bản", document_id=f"{SENDER},2026/11/21,3/UBND")
    resp = cluster.client(SENDER).send(doc, RECIPIENTS)
    return resp.doc_id, {e.recipient: e.message_id for e in resp.envelopes}


def test_01_arrives_from_every_recipient_without_any_action(cluster, sent):
    doc_id, _ = sent
    track = wait_for_statuses(cluster.client(SENDER), doc_id, {r: ["01"] for r in RECIPIENTS})
    for r in track.recipients:
        assert [h.code for h in r.path] == Hierarchy().route(SENDER, r.recipient)


def test_statuses_show_in_order_and_a_wrong_step_is_refused(cluster, sent):
    doc_id, mids = sent
    a, b = cluster.client(R_COMMUNE), cluster.client(R_OTHER_PROVINCE)
    with pytest.raises(grpc.RpcError) as e:
        a.set_status(mids[R_COMMUNE], "05")
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "current status 01" in e.value.details()
    for code in ("03", "04", "05", "06"):
        a.set_status(mids[R_COMMUNE], code, f"bước {code}", pb.StaffInfo(staff="Lê C"))
    b.set_status(mids[R_OTHER_PROVINCE], "02", "không thuộc thẩm quyền")
    track = wait_for_statuses(cluster.client(SENDER), doc_id, {R_COMMUNE: ["01", "03", "04", "05", "06"], R_OTHER_PROVINCE: ["01", "02"],
                                         R_DISTRICT: ["01"]})
    [t] = [r for r in track.recipients if r.recipient == R_COMMUNE]
    assert [s.staff_info.staff for s in t.statuses[1:]] == ["Lê C"] * 4


def test_revoke_reaches_all_three_and_each_shows_it(cluster, sent):
    doc_id, mids = sent
    waiters = {r: EventWaiter(cluster.client(r), sent=False) for r in RECIPIENTS}
    try:
        revocations = {e.recipient: e.message_id
                       for e in cluster.client(SENDER).change(doc_id, 1, reason="thu hồi").envelopes}
        for r, w in waiters.items():
            w.wait(lambda evs, r=r: any(e.kind == pb.DOCUMENT and e.message_id == revocations[r] for e in evs),
                   timeout=60)
    finally:
        for w in waiters.values():
            w.close()
    for r in RECIPIENTS:
        [entry] = [e for e in cluster.client(r).inbox_all() if e.message_id == mids[r]]
        assert entry.state == "revoked" and entry.changed_by


def test_a_status_forged_by_a_non_recipient_is_rejected(cluster, sent):
    """FORGER signs a 06 for the document sent to R_COMMUNE and hands it to its district as itself."""
    doc_id, mids = sent
    keys = cluster.handle(FORGER).dir / "keys"
    forger = Signer.from_files(keys / "node.key", keys / "node.pem")
    status = pb.Payload(status=pb.Status(status_code="06", description="giả mạo"))
    forged, raw = envelope.seal(forger, SENDER, status, lifetime_s=600, ref_message_id=mids[R_COMMUNE])
    district = "000.00.35.H53"
    channel = open_channel(TlsMaterial((keys / "node.key").read_bytes(), (keys / "node.pem").read_bytes(),
                                       (keys / "ca.pem").read_bytes()), district, cluster.handle(district).listen, 1 << 20)

    def refused_on_forged(evs) -> bool:
        return any(e.type == "rejected" and e.message_id == forged.message_id for e in evs)

    # the relay's notice goes back to FORGER's node, which takes none about an envelope it never sent (this
    # one was signed outside it: NOTICE_OFF_ROUTE), so the refusal is read at the relay
    with EventWaiter(cluster.client(district), inbox=False) as ev:
        xgrpc.ExchangeStub(channel).Deliver(xpb.DeliverRequest(envelope=raw), timeout=10,
                                            metadata=((CALLED, district),))  # the relay takes custody
        ev.wait(refused_on_forged, timeout=60)  # ...the sender refuses it
    channel.close()
    [refusal] = [e for e in ev.events if e.type == "rejected" and e.message_id == forged.message_id]
    assert refusal.reason == "NOT_RECIPIENT"
    track = cluster.client(SENDER).track(doc_id)
    assert all(s.description != "giả mạo" for r in track.recipients for s in r.statuses)


def stats_of(cluster, code: str, subtree: bool):
    from node.pb import stats_pb2, stats_pb2_grpc
    client = cluster.client(code)
    return stats_pb2_grpc.StatsStub(client.channel).Get(stats_pb2.StatsRequest(subtree=subtree),
                                                        metadata=client.metadata, timeout=10)


def counters(a) -> tuple:
    return (a.docs_sent, a.envelopes_sent, a.docs_received, a.statuses_sent, a.statuses_received,
            a.docs_answered_3, a.docs_answered_5, a.distinct_codes_returned)


def test_province_statistics_match_what_its_subtree_exchanged(cluster, sent, before):
    """Counters travel up on heartbeats; the province's view must equal what each node counts itself."""
    province = "000.00.00.H53"
    h = Hierarchy()
    subtree = sorted(c for c in cluster.nodes if c == province or h.is_under(c, province))

    def matches(_=None) -> bool:
        view = {a.code: counters(a) for a in stats_of(cluster, province, subtree=True).agencies}
        own = {c: counters(stats_of(cluster, c, subtree=False).agencies[0]) for c in subtree}
        return view == own

    with EventWaiter(cluster.client(province), inbox=False, sent=False, registry=True) as ev:
        ev.wait(matches, timeout=120)
    view = {a.code: a for a in stats_of(cluster, province, subtree=True).agencies}
    assert set(view) == set(subtree)
    s, s0 = view[SENDER], before[SENDER]  # what this module added: the document and its revocation, 3 recipients each
    assert (s.docs_sent - s0.docs_sent, s.envelopes_sent - s0.envelopes_sent) == (2, 6)
    r, r0 = view[R_COMMUNE], before[R_COMMUNE]  # 01 03 04 05 06 on the document, 01 on the revocation
    assert (r.docs_received - r0.docs_received, r.statuses_sent - r0.statuses_sent,
            r.docs_answered_3 - r0.docs_answered_3, r.docs_answered_5 - r0.docs_answered_5,
            r.distinct_codes_returned) == (2, 6, 1, 1, 5)
    summary = stats_of(cluster, province, subtree=True).summary
    assert summary.agencies == len(subtree) and summary.meeting_5 >= 1
