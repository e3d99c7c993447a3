"""Fifteen real node processes (configs/topologies/small.yaml): documents relayed through the tree
arrive exactly once with their whole path verified; unknown recipients get a notice, not
retries; the registry refuses children that are not who or where they claim to be.

The cluster is shared with other modules (see conftest.py): a test looks only at the inbox and
outbox rows a node added after the test started (`seq` above a mark taken before it sent)."""
from __future__ import annotations

import time

import grpc
import pytest

from node import codes
from node.grpc_errors import fields_of, metadata_of, reason_of
from node.transport.grpc_peers import CALLED, TlsMaterial, open_channel
from node.harness.waiting import EventWaiter
from node.identity import certs
from node.envelope import Signer
from node.pb import envelope_pb2 as pb
from node.pb import registry_pb2 as rpb
from node.pb import registry_pb2_grpc as rgrpc

from .conftest import sent_entry

DISTRICT = "000.00.32.H29"   # every commune also sends to this district ...
PROVINCE = "000.00.00.H53"   # ... and to this province


def last_seq(entries) -> int:
    """The mark to take before acting: rows added afterwards have a greater `seq`."""
    return max((e.seq for e in entries), default=0)


def document(sender: str, n: int) -> pb.Document:
    return pb.Document(subject=f"Công văn {n} của {sender}", document_id=f"{sender},2026/11/21,{n}/UBND",
                       attachments=[pb.Attachment(name=f"{n}.txt", content_type="text/plain",
                                                  data=f"{sender} #{n}".encode() * 50)])


def test_every_commune_reaches_every_commune_a_district_and_a_province_once_with_its_path(cluster, small):
    communes = small.leaves()
    assert len(communes) == 8
    targets = {c: [r for r in communes if r != c] + [DISTRICT, PROVINCE] for c in communes}
    recipients = set(communes) | {DISTRICT, PROVINCE}
    expected: dict[str, dict[str, str]] = {r: {} for r in recipients}   # recipient -> {message id: sender}

    inbox_mark = {r: last_seq(cluster.client(r).inbox_all()) for r in recipients}
    sent_mark = {c: last_seq(cluster.client(c).sent_all()) for c in communes}
    # one stream per agency, inbox and sent together: a host caps its Watch streams host-wide (each holds one
    # of its shared API workers), and with one host per province five of these agencies share one host
    streams = {r: EventWaiter(cluster.client(r)) for r in recipients}
    watchers = streams
    senders = {c: streams[c] for c in communes}
    try:
        for i, c in enumerate(communes):
            for sent in cluster.client(c).send(document(c, i), targets[c]).envelopes:
                expected[sent.recipient][sent.message_id] = c
        for r, w in watchers.items():
            w.wait(lambda evs, r=r: {e.message_id for e in evs if e.type == "arrived"} >= set(expected[r]), 60)
        # every arrival committed its automatic 01 with it: each commune's outbox now holds all this
        # test put there (its documents and those 01s); wait until all of it has passed to a first hop
        for c, w in senders.items():
            mine = {m for r in recipients for m, s in expected[r].items() if s == c}
            ours = {s.message_id for s in cluster.client(c).sent_all() if s.seq > sent_mark[c]}
            assert mine <= ours
            w.wait(lambda evs, ours=ours: {e.message_id for e in evs if e.type == "delivered"} >= ours, 60)
    finally:
        for w in streams.values():
            w.close()

    assert sum(map(len, expected.values())) == 8 * 7 + 8 * 2
    for r in recipients:
        client = cluster.client(r)
        docs = [e for e in client.inbox_all() if e.kind == pb.DOCUMENT and e.seq > inbox_mark[r]]
        ids = [e.message_id for e in docs]
        assert sorted(ids) == sorted(expected[r]), f"{r}: inbox differs from what was sent to it"
        for e in docs:
            sender = expected[r][e.message_id]
            assert e.sender == sender
            got = client.fetch(e.message_id)
            assert got.signature_verified and got.payload.document.subject.endswith(sender)
            assert [h.code for h in got.path] == codes.Hierarchy().route(sender, r)
            assert all(h.verified for h in got.path)
            times = [h.time_ms for h in got.path]
            assert times == sorted(times)
    for c in communes:
        sent = [s for s in cluster.client(c).sent_all() if s.seq > sent_mark[c]]
        assert {s.state for s in sent if s.kind == pb.DOCUMENT} == {"delivered"}
        for s in sent:  # custody passed to the first hop, under its signed receipt
            body = pb.ReceiptBody.FromString(s.receipt.body)
            assert body.receiver == codes.next_hop(c, s.recipient) and s.receipt.message_id == s.message_id


@pytest.mark.parametrize("unknown", [
    "vxp.nobody.99",   # outside the QCVN form and placed nowhere: nobody in the tree has it
])
def test_an_unknown_recipient_of_no_scheme_is_refused_at_once_and_nothing_is_queued(cluster, unknown):
    """docs/api.md, Agency codes: a recipient that is not a QCVN 102 code and that nobody holds is a bad request
    (issue 17, vendor 2), not a send that ends in a notice."""
    sender = "000.21.35.H53"
    client = cluster.client(sender)
    mark = last_seq(client.sent_all())
    with pytest.raises(grpc.RpcError) as e:
        client.send(document(sender, 99), [unknown])
    assert (e.value.code(), reason_of(e.value), fields_of(e.value)) == (
        grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST", ["recipients[0]"])
    assert not [s for s in client.sent_all() if s.seq > mark]


def test_a_recipient_in_a_province_not_registered_yet_is_kept_at_the_sender_not_refused(cluster):
    """The code rule places 000.21.35.H61 under a province that never registered with the root: "not yet"
    (NOT_REGISTERED_YET), not refused for good (issue 12). Nobody publishes a seal key for it, so the sender
    keeps it home (sealing.mode required, the default) rather than let a relay hold it in clear (issue 18);
    it is asked for again every retry.max_delay."""
    sender, unknown = "000.21.35.H53", "000.21.35.H61"
    client = cluster.client(sender)
    with pytest.raises(grpc.RpcError) as e:
        client.lookup(unknown)
    assert reason_of(e.value) == "UNKNOWN_RECIPIENT" and metadata_of(e.value)["waits_at"] == "VN"
    with EventWaiter(client) as events:
        [sent] = client.send(document(sender, 98), [unknown]).envelopes
        mid = sent.message_id
        entry = sent_entry(client, mid, lambda e: "NOT_REGISTERED_YET" in e.reason)
    # it waits for a registration at the sender itself (sealed: no key to seal to yet), handed to no relay
    assert (entry.state, entry.waits_at, entry.delivered_ms) == ("not_registered_yet", sender, 0)
    assert "seal key" in entry.reason
    assert not [e for e in events.events if e.message_id == mid and e.type in ("delivered", "rejected", "expired")]


# ---- the registry refuses children that are not who or where they say ----------------------

TARGET = "000.00.38.H53"    # a district with children 000.23.38.H53 and 000.24.38.H53


def record(signer: Signer, *, code: str | None = None, parent: str = TARGET) -> rpb.SignedRecord:
    body = rpb.AgencyRecord(code=code or signer.code, name=f"UBND {code or signer.code}",
                            level=3, parent=parent, endpoint="127.0.0.1:9", cert_der=signer.cert_der,
                            issued_ms=int(time.time() * 1000)).SerializeToString()
    return rpb.SignedRecord(record=body, signature=signer.sign(body))


@pytest.fixture(scope="module")
def identities(cluster, tmp_path_factory):
    """Keys and certificates for would-be children: from the cluster's CA, and from another CA."""
    root = tmp_path_factory.mktemp("identities")
    ca = cluster.dir / "ca"

    def issue(code: str, ca_dir=ca):
        d = root / ca_dir.parent.name / code
        certs.init_node(d, code, f"UBND {code}", ca_dir)
        return Signer.from_files(d / "node.key", d / "node.pem"), d

    other_ca = root / "other" / "ca"
    certs.init_ca(other_ca, "some other CA")
    return issue, other_ca


def register(cluster, signed: rpb.SignedRecord, key_dir, *, as_code: str | None = None) -> rpb.RegisterResponse:
    """Register `signed` with TARGET over mTLS, authenticated by the key and certificate in key_dir."""
    tls = TlsMaterial(key_pem=(key_dir / "node.key").read_bytes(), cert_pem=(key_dir / "node.pem").read_bytes(),
                      anchors_pem=(cluster.dir / "ca" / "ca.pem").read_bytes())
    with open_channel(tls, TARGET, cluster.nodes[TARGET].listen, 1 << 20) as channel:
        # naming the agency called, as every peer does: on a host of several it picks the agency
        return rgrpc.RegistryStub(channel).Register(signed, timeout=10, metadata=((CALLED, TARGET),))


def children_of_target(cluster) -> set[str]:
    return {a.code for a in cluster.directory(TARGET)}


def test_a_child_with_a_valid_identity_under_the_district_is_accepted(cluster, identities):
    issue, _ = identities
    signer, d = issue("000.26.38.H53")
    resp = register(cluster, record(signer), d)
    assert resp.heartbeat_ms > 0
    assert "000.26.38.H53" in children_of_target(cluster)


def test_a_commune_that_is_not_under_the_district_is_refused_as_wrong_parent(cluster, identities):
    issue, _ = identities
    signer, d = issue("000.25.35.H53")   # a real identity, but of a commune of district 35
    with pytest.raises(grpc.RpcError) as e:
        register(cluster, record(signer, parent=TARGET), d)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reason_of(e.value) == "WRONG_PARENT"
    assert "000.25.35.H53" not in children_of_target(cluster)


def test_a_commune_cannot_register_another_communes_code(cluster, identities):
    issue, _ = identities
    x_dir = cluster.dir / "000.23.38.H53" / "keys"          # authenticated as commune X ...
    y, _ = issue("000.27.38.H53")                           # ... presenting commune Y's own signed record
    with pytest.raises(grpc.RpcError) as e:
        register(cluster, record(y), x_dir)
    assert (e.value.code(), reason_of(e.value)) == (grpc.StatusCode.PERMISSION_DENIED, "SENDER_MISMATCH")
    # ... or a record for Y's code signed with X's own key and certificate
    x = Signer.from_files(x_dir / "node.key", x_dir / "node.pem")
    with pytest.raises(grpc.RpcError) as e:
        register(cluster, record(x, code="000.27.38.H53"), x_dir)
    assert (e.value.code(), reason_of(e.value)) == (grpc.StatusCode.PERMISSION_DENIED, "SENDER_MISMATCH")
    assert "000.27.38.H53" not in children_of_target(cluster)


def test_an_identity_from_another_ca_is_refused(cluster, identities):
    issue, other_ca = identities
    signer, d = issue("000.28.38.H53", other_ca)
    with pytest.raises(grpc.RpcError) as e:
        register(cluster, record(signer), d)
    # refused in the TLS handshake (the district only accepts client certificates from its CA)
    # or, if it got that far, by the registry
    assert (e.value.code() == grpc.StatusCode.UNAVAILABLE
            or (e.value.code(), reason_of(e.value)) == (grpc.StatusCode.PERMISSION_DENIED, "UNTRUSTED_CERT"))
    assert "000.28.38.H53" not in children_of_target(cluster)


def test_the_tree_is_the_directory(cluster, small):
    """Each node lists its own children; any node resolves any code through the tree."""
    for code in small.codes:
        kids = set(small.children(code))
        listed = {a.code: a for a in cluster.directory(code)}
        assert kids <= set(listed) and all(listed[k].reachable for k in kids)
    sub = {a.code for a in cluster.directory("000.23.38.H53", parent="000.00.00.H29", recursive=True)}
    assert sub == set(small.subtree("000.00.00.H29"))
    found = cluster.lookup("000.23.38.H53", "000.22.32.H29")
    assert (found.code, found.parent, found.endpoint) == ("000.22.32.H29", "000.00.32.H29", cluster.nodes["000.22.32.H29"].listen)
    with pytest.raises(grpc.RpcError) as e:  # placed under 000.00.38.H53 by the code rule, never registered
        cluster.lookup("000.23.38.H53", "000.99.38.H53")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND and reason_of(e.value) == "UNKNOWN_RECIPIENT"
    with pytest.raises(grpc.RpcError) as e:  # no place in the tree at all
        cluster.lookup("000.23.38.H53", "vxp.nobody.99")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_bench_cluster_breaks_a_relayed_documents_time_down_hop_by_hop(cluster):
    """scripts/bench-cluster's per_hop: for every hop of the route, read back from the mailboxes; the parts
    add up to the document's whole passage (creation to the recipient's arrival event), none is negative."""
    from node.harness import bench_cluster

    sender, recipient = bench_cluster.CROSS_DISTRICT
    got = bench_cluster.latency(cluster, sender, recipient, 6, 1_000, 20.0)
    hops = got["per_hop"]
    route = codes.DEFAULT.route(sender, recipient)
    assert hops["documents"] == 6
    assert [(h["from"], h["to"]) for h in hops["hops"]] == list(zip(route, route[1:]))
    for h in hops["hops"]:
        for part in ("custody_to_sent_ms", "sent_to_verified_ms", "verified_to_custody_ms"):
            assert h[part]["p50"] is not None and 0 <= h[part]["p50"] <= h[part]["p90"], (part, h)
    assert 0 <= hops["at_recipient_commit_ms"]["p50"]
    # the hops' shares telescope to the whole passage, so no time is counted twice or left out
    whole = sum(h[part]["p50"] for h in hops["hops"]
                for part in ("custody_to_sent_ms", "sent_to_verified_ms", "verified_to_custody_ms"))
    assert whole + hops["at_recipient_commit_ms"]["p50"] <= got["post_to_arrival"]["max_ms"] + len(route)
