"""Fuzzing what a peer or a packet controls: any exception outside the catalogue is a failure.

Hypothesis drives, in-process and bounded in examples (derandomized, so CI runs the same inputs
every time): envelope verification (random bytes, and validly signed envelopes with random
headers, payloads and relay marks, then mutated), a node's intake over a real SQLite file
(batches of all of these; an INTERNAL outcome is an unexpected exception caught inside),
receipts, agency records and registrations and heartbeats, signed statistics, and edXML import
(random XML-ish input, mutations of the real samples) with export of whatever import accepted, and
the local API's client tokens (authorization headers against api.tokens, and the config of them).
The property everywhere: the code under test returns, or raises `node.errors.Rejected`
(`node.edxml.EdxmlError` for edXML). The number of inputs each target tried is printed at the
end of the run (conftest.py) and kept in `hostile.fuzzing.TRIED`.
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node import envelope, fields, receipts, stats
from node.codes import case_twin_of
from node.clock import SYSTEM, FakeClock
from node.api.clients import SCOPES, Clients, authorize
from node.config import ConfigError, load_config, parse_config
from node.edxml import EdxmlError, export_edxml, import_edxml
from node.envelope import Signer
from node.errors import Reason, Rejected
from node.harness import nodes
from node.harness.nodes import NodeSpec
from node.identity import certs
from node.pb import envelope_pb2 as pb
from node.pb import registry_pb2 as rpb
from node.pb import stats_pb2 as spb
from node.registry import records
from node.exchange.intake import Intake
from node.exchange.service import PeerIdentity
from node.limits import Limits
from node.registry.directory import Directory
from node.registry.service import RegistryService
from node.runtime import Node
from node.store.database import Database

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ is not a package (importlib mode)
from hostile.fuzzing import REACHED, TRIED  # noqa: E402
from hostile.world import SAMPLES  # noqa: E402

# B is the node under fuzz (a province); A, a district below it, and C, another district, are its
# configured peers; A_CHILD is below A (its mail comes up through A); A is also what Directory serves.
B, A, C = "000.00.00.H53", "000.00.01.H53", "000.00.02.H53"
A_CHILD = "000.01.01.H53"
# LIENTHONG_FUZZ_SCALE=N runs N times the examples, with fresh random inputs (a longer hunt); by default
# every run tries the same inputs (derandomized), so CI is reproducible and bounded in time.
SCALE = int(os.environ.get("LIENTHONG_FUZZ_SCALE", "1"))
FUZZ = settings(max_examples=300 * SCALE, deadline=None, derandomize=SCALE == 1, database=None, print_blob=True,
                suppress_health_check=list(HealthCheck))


def examples(n: int) -> settings:
    return settings(FUZZ, max_examples=n * SCALE)


def tried(target: str) -> None:
    TRIED[target] = TRIED.get(target, 0) + 1


def reached(target: str, result) -> None:
    """Which outcome an input reached (a reason, or "accepted"), to show the fuzzer gets past the first checks."""
    what = result.reason.wire if isinstance(result, Rejected) else "accepted"
    REACHED.setdefault(target, {})
    REACHED[target][what] = REACHED[target].get(what, 0) + 1


def only_rejected(call, *args, **kw):
    """Run `call`; a Rejected is a refusal (fine), anything else an escape (the test fails)."""
    try:
        return call(*args, **kw)
    except Rejected as r:
        assert r.reason is not Reason.INTERNAL, r
        return r


# ---- the world the fuzzer attacks: B, its peer A, and C (trusted, elsewhere), one CA ------------------

class Fixture:
    def __init__(self, root: Path) -> None:
        ha, hb = nodes.pair(root, NodeSpec(A, "Sở A"), NodeSpec(B, "Sở B", peers={C: "127.0.0.1:1"}))
        self.ca = root / "ca"
        self.node = Node(load_config(hb.config))
        for hook in (self.node.dispatcher, self.node.intake, self.node.outgoing):
            hook.wake = lambda hop: None
        self.a = Signer.from_files(ha.dir / "keys" / "node.key", ha.dir / "keys" / "node.pem")
        self.b = self.node.signer
        files = certs.init_node(root / "c", C, "Sở C", self.ca)
        self.c = Signer.from_files(files.key, files.cert)
        files = certs.init_node(root / "a-child", A_CHILD, "xã dưới A", self.ca)
        self.a_child = Signer.from_files(files.key, files.cert)
        other_ca = nodes.make_ca(root / "other")
        files = certs.init_node(root / "foreign", A, "giả A", other_ca)
        self.foreign = Signer.from_files(files.key, files.cert)
        self.trust = self.node.trust
        # something stored to refer to: a document B received from A, and one B sent to A
        _, raw = envelope.seal(self.a, B, pb.Payload(document=pb.Document(subject="gốc")), lifetime_s=3600,
                               message_id="stored-in")
        assert isinstance(self.node.intake.receive([raw], A)[0], pb.Receipt)
        posted = self.node.outgoing.post(pb.Payload(document=pb.Document(subject="đi")), [A])
        self.sent_id = posted.envelopes[0][1]

    def close(self) -> None:
        self.node.db.close()


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    f = Fixture(tmp_path_factory.mktemp("fuzz"))
    yield f
    f.close()


# ---- strategies -----------------------------------------------------------------------------------

text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
small_bytes = st.binary(max_size=64)
EDGE_TIMES = st.sampled_from([envelope.EARLIEST_MS, envelope.EARLIEST_MS - 1, envelope.LATEST_MS,
                              envelope.LATEST_MS + 1, 253_402_300_799_000, 253_402_300_799_000 - 3600_000,
                              2**63 - 1, -2**63, 0])
big_int = st.one_of(st.integers(-2**63, 2**63 - 1), st.sampled_from([0, 1, -1, 10**15, 2**63 - 1, -2**63]))
WEIRD_IDS = ["../etc", "a/b", "", "x" * 129, "id\x00", ".hidden", "é"]


def usually(draw, good, weird, odds: int = 8):
    """`good` `odds` times in ten (so inputs get past the first checks), else something `weird`."""
    return draw(weird) if draw(st.integers(0, 9)) >= odds else draw(good)


def fresh_id(draw) -> str:
    """A new message id (not drawn: drawn ids repeat, and the duplicate paths have their own inputs)."""
    return uuid.uuid4().hex


def message_id(draw, f: "Fixture") -> str:
    """Mostly fresh; sometimes one already stored or sent (duplicates, conflicts); sometimes not an id."""
    return usually(draw, st.just(fresh_id(draw)),
                   st.sampled_from(["stored-in", f.sent_id, "m1"]) | st.sampled_from(WEIRD_IDS) | text, odds=7)


def documents(draw) -> pb.Document:
    doc = pb.Document(subject=draw(text), document_id=draw(text), content=draw(text))
    doc.business.business_doc_type = usually(draw, st.sampled_from([0, 0, 0, 1, 2, 3]), st.sampled_from([4, 2**32 - 1]))
    doc.other_info.priority = usually(draw, st.integers(0, 4), st.integers(0, 2**32 - 1))
    for _ in range(draw(st.integers(0, 3))):
        doc.attachments.add(name=usually(draw, text, st.sampled_from(["..", "a" * 256, "x\x00y", "/etc/passwd"])),
                            data=draw(small_bytes))
    for _ in range(draw(st.integers(0, 2))):
        doc.to.add(organ_id=draw(text))
    return doc


@st.composite
def payloads(draw) -> pb.Payload:
    kind = usually(draw, st.sampled_from(["document", "status"]), st.sampled_from(["notice", "empty"]))
    if kind == "document":
        return pb.Payload(document=documents(draw))
    if kind == "status":
        return pb.Payload(status=pb.Status(
            status_code=usually(draw, st.sampled_from(["01", "02", "03", "04", "05", "06", "13", "15", "16"]),
                                st.sampled_from(["99", "", "1"]) | text),
            description=draw(text), timestamp=draw(text)))
    if kind == "notice":
        return pb.Payload(notice=pb.Notice(ref_message_id=draw(text), reason=draw(text)))
    return pb.Payload()


FIELDS = ("signer", "created", "id", "sender", "recipient", "kind", "expires", "priority", "ref", "trace", "late",
          "bytes")


@st.composite
def signed_envelopes(draw, f: "Fixture", peer: str | None = A) -> bytes:
    """A validly signed envelope with a payload of any kind, such as `peer` may hand over, in which at
    most one thing is wrong (half of them are all right, so inputs get past the first checks): a
    header field, the signer, a relay mark, or the bytes after signing."""
    broken = draw(st.sampled_from((None,) * len(FIELDS) + FIELDS))
    honest = {A: [f.a, f.a_child], C: [f.c], None: [f.a, f.a_child, f.c]}[peer]
    signer = draw(st.sampled_from([f.foreign, f.b, f.c if peer == A else f.a] if broken == "signer" else honest))
    payload = draw(payloads())
    body = payload.SerializeToString()
    now = SYSTEM.now_ms()
    created = draw(big_int | EDGE_TIMES | st.integers(-10**9, 10**9).map(lambda d: now + d)) \
        if broken == "created" else now
    which = payload.WhichOneof("body")
    refs = st.sampled_from(["stored-in", f.sent_id, "m1"]) | st.just(fresh_id(draw))
    if broken == "ref":
        ref = draw(st.sampled_from(WEIRD_IDS) | refs | text)
    elif which == "status" or payload.document.business.business_doc_type:
        ref = draw(refs)
    else:
        ref = ""
    header = pb.Header(
        message_id=message_id(draw, f) if broken == "id" else fresh_id(draw),
        sender=draw(st.sampled_from([A, C, B, ""])) if broken == "sender" else signer.code,
        recipient=draw(st.sampled_from(["VN", "000.00.09.H53", "vxp.saas.03", "", "x" * 40, C, A_CHILD, A]))
        if broken == "recipient" else usually(draw, st.just(B), st.sampled_from([A, C, A_CHILD])),
        kind=draw(st.sampled_from([0, 1, 2, 3, 7])) if broken == "kind"
        else envelope.KIND_OF_PAYLOAD.get(which, pb.DOCUMENT),
        created_ms=created,
        expires_ms=draw(big_int) if broken == "expires" else min(created + 3600_000, 2**63 - 1),
        priority=draw(st.integers(0, 2**32 - 1)) if broken == "priority" else draw(st.integers(0, 4)),
        payload_sha256=envelope.sha256(body), payload_size=len(body), ref_message_id=ref)
    raw_header = header.SerializeToString()
    env = pb.Envelope(header=raw_header, signature=signer.sign(raw_header), sender_cert=signer.cert_der, payload=body)
    if broken == "trace":
        for hop in draw(st.lists(st.sampled_from([f.a, f.c, f.b]), max_size=3)):
            envelope.add_trace(env, hop)
        mutate_trace(draw, env, f)
    elif signer is f.a_child:  # its mail comes up through A
        envelope.add_trace(env, f.a)
    if broken == "late":  # the last relay's clock at the edges of what a mark may say
        envelope.add_trace(env, f.c if peer == C else f.a, clock=FakeClock(draw(EDGE_TIMES)))
    raw = env.SerializeToString()
    return mutate(draw, raw) if broken == "bytes" else raw


def mutate_trace(draw, env: pb.Envelope, f: Fixture) -> None:
    """A hand-made relay mark with any fields, signed by a real key (or not)."""
    tb = pb.TraceBody(code=draw(st.sampled_from([A, C, B, "", "x"])), time_ms=draw(big_int | EDGE_TIMES),
                      header_sha256=draw(st.sampled_from([envelope.sha256(env.header), b"", b"\0" * 32])),
                      prev_sha256=draw(st.sampled_from([envelope.sha256(env.trace[-1].signature if env.trace
                                                                        else env.signature), b""])))
    body = draw(st.one_of(st.just(tb.SerializeToString()), small_bytes))
    signer = draw(st.sampled_from([f.a, f.c]))
    env.trace.append(pb.TraceEntry(body=body, signature=draw(st.one_of(st.just(signer.sign(body)), small_bytes)),
                                   cert_der=draw(st.sampled_from([signer.cert_der, f.b.cert_der, b"", b"\x30\x03\x02\x01\x00"]))))


MUTATIONS = st.lists(st.tuples(st.sampled_from(["flip", "cut", "repeat", "insert", "truncate"]),
                               st.integers(0, 2**20), st.integers(1, 255), small_bytes), min_size=1, max_size=4)


def mutate(draw, raw: bytes) -> bytes:
    """Flip, cut, repeat or insert bytes. Every draw comes first, whatever the length of `raw` (signatures
    vary in length, and a strategy must draw the same things when Hypothesis replays an input)."""
    data = bytearray(raw)
    for op, where, n, insert in draw(MUTATIONS):
        if not data:
            break
        i = where % len(data)
        if op == "flip":
            data[i] ^= n
        elif op == "cut":
            del data[i:i + n % 17]
        elif op == "repeat":
            data[i:i] = data[i:i + n % 17]
        elif op == "insert":
            data[i:i] = insert
        else:
            del data[i:]
    return bytes(data)


# ---- envelope verification -------------------------------------------------------------------------

@FUZZ
@given(raw=st.binary(max_size=512))
def test_verify_random_bytes(fx, raw):
    tried("envelope.verify (random bytes)")
    only_rejected(envelope.verify, raw, fx.trust, max_size=1 << 20)


@FUZZ
@given(data=st.data())
def test_verify_signed_and_mutated_envelopes(fx, data):
    tried("envelope.verify (signed, random fields, mutated)")
    raw = data.draw(signed_envelopes(fx, data.draw(st.sampled_from([A, C, None]))))
    v = only_rejected(envelope.verify, raw, fx.trust, max_size=1 << 20)
    if not isinstance(v, Rejected):
        v = only_rejected(v.payload)
    reached("envelope.verify", v)


# ---- intake over a real SQLite file -------------------------------------------------------------------

@examples(150)
@given(data=st.data())
def test_intake_gives_every_envelope_its_own_outcome(fx, data):
    tried("Intake.receive (batches)")
    peer = data.draw(st.sampled_from([A, A, A, C, A_CHILD, None]))
    honest = signed_envelopes(fx, peer if peer != A_CHILD else A)
    batch = [data.draw(st.binary(max_size=64)) if data.draw(st.integers(0, 4)) == 4 else data.draw(honest)
             for _ in range(data.draw(st.integers(1, 4)))]
    results = only_rejected(fx.node.intake.receive, batch, peer)
    if isinstance(results, Rejected):
        assert results.reason in (Reason.NOT_A_NEIGHBOUR, Reason.OVER_LIMIT)
        return
    assert len(results) == len(batch)
    for r in results:
        assert isinstance(r, (pb.Receipt, Rejected)), r
        assert not (isinstance(r, Rejected) and r.reason is Reason.INTERNAL), r.detail
        reached("Intake.receive", r)


# ---- non-delivery notices ---------------------------------------------------------------------------

@examples(150)
@given(data=st.data())
def test_notices_are_taken_only_from_the_way_the_message_went(fx, data):
    """B sent `sent_id` to A (its next hop, a peer). A notice about it is taken only from A, naming A."""
    tried("Intake.receive (notices)")
    maker = data.draw(st.sampled_from([fx.a, fx.a, fx.c, fx.a_child]))
    ref = data.draw(st.sampled_from([fx.sent_id, fx.sent_id, "stored-in", "f" * 32]) | text)
    recipient = data.draw(st.sampled_from([A, A, B, C, A_CHILD, ""]) | text)
    notice = pb.Notice(ref_message_id=data.draw(st.sampled_from([ref, ref, ref, "other"])), recipient=recipient,
                       reason=data.draw(st.sampled_from(["UNKNOWN_RECIPIENT", "EXPIRED", ""]) | text),
                       detail=data.draw(text))
    _, raw = envelope.seal(maker, B, pb.Payload(notice=notice), lifetime_s=3600, ref_message_id=ref,
                           message_id=uuid.uuid4().hex)
    peer = maker.code if maker.code in (A, C) else A  # A_CHILD's mail comes up through A
    if maker.code == A_CHILD:
        raw = envelope.add_trace(pb.Envelope.FromString(raw), fx.a).SerializeToString()
    [result] = only_rejected(fx.node.intake.receive, [raw], peer)
    reached("Intake.receive (notices)", result)
    legitimate = maker.code == A and ref == fx.sent_id and notice.ref_message_id == ref and recipient == A
    assert isinstance(result, pb.Receipt) == legitimate, (maker.code, ref, notice.ref_message_id, recipient, result)
    if not legitimate:
        assert result.reason in (Reason.NOTICE_OFF_ROUTE, Reason.MALFORMED, Reason.OFF_ROUTE), result


# ---- receipts -------------------------------------------------------------------------------------

@FUZZ
@given(data=st.data())
def test_receipts_verify(fx, data):
    tried("receipts.Verifier.verify")
    items = [(uuid.uuid4().hex, envelope.sha256(data.draw(small_bytes))) for _ in range(data.draw(st.integers(1, 5)))]
    signer = data.draw(st.sampled_from([fx.b, fx.a, fx.foreign]))
    issued = receipts.issue(signer, items)
    i = data.draw(st.integers(0, len(items) - 1))
    r = issued[i]
    field = data.draw(st.sampled_from(["none", "body", "signature", "receiver_cert", "message_id", "envelope_sha256",
                                       "proof", "all"]))
    if field in ("body", "signature", "receiver_cert", "all"):
        for name in ("body", "signature", "receiver_cert") if field == "all" else (field,):
            value = getattr(r, name)
            setattr(r, name, mutate(data.draw, value) if data.draw(st.booleans()) else data.draw(small_bytes))
    elif field == "message_id":
        r.message_id = data.draw(text)
    elif field == "envelope_sha256":
        r.envelope_sha256 = data.draw(small_bytes)
    elif field == "proof":
        del r.proof[data.draw(st.integers(0, len(r.proof))):]
        for _ in range(data.draw(st.integers(0, 3))):
            r.proof.add(sibling=data.draw(small_bytes), sibling_left=data.draw(st.booleans()))
    expect = data.draw(st.sampled_from([B, A, "", "x" * 40]))
    verifier = receipts.Verifier(fx.trust)
    for _ in range(2):  # the second time through the verifier's cache
        only_rejected(verifier.verify, r, expect_receiver=expect, message_id=items[i][0], envelope_digest=items[i][1])
    only_rejected(receipts.verify, pb.Receipt.FromString(r.SerializeToString()), fx.trust, expect_receiver=expect,
                  message_id=data.draw(text), envelope_digest=data.draw(small_bytes))


# ---- agency records, registrations, heartbeats, signed statistics --------------------------------

# what node/fields.py refuses in a record, next to what it takes
WEIRD_NAMES = st.sampled_from(["x" * 300, "x" * 301, "y" * 100_000, "UBND\nAUDIT CHAIN BROKEN", "\x1b[2J", "xã \u202e",
                               "\u2028", "tab\t", "Sở Nội vụ", ""])
ENDPOINTS = st.sampled_from(["127.0.0.1:9", "", "unix:/tmp/x.sock", "unix:1234", "unix-abstract:x", "vsock:1:2",
                             "dns:///h:1", "ipv4:127.0.0.1:1", "[::1]:9", "[::1", "h:0", "h:65535", "h:65536",
                             "h:+1", "h:1/x", "a_b.c.:1", "1.2.3.999:1", "-h:1", "x" * 300 + ":1"])


@st.composite
def signed_records(draw, f: Fixture) -> rpb.SignedRecord:
    signer = draw(st.sampled_from([f.a_child, f.a, f.c, f.foreign]))
    twin = A_CHILD.replace("H53", "h53")
    record = rpb.AgencyRecord(code=draw(st.sampled_from([signer.code, A_CHILD, A, "", "vxp.x", twin]) | text),
                              name=draw(WEIRD_NAMES | text), level=draw(st.integers(0, 2**32 - 1)),
                              parent=draw(st.sampled_from([A, B, "", "VN", "vn", A.replace("H53", "h53")]) | text),
                              endpoint=draw(ENDPOINTS | text),
                              cert_der=draw(st.sampled_from([signer.cert_der, f.a.cert_der, b"", b"\x30\x00",
                                                             b"c" * 9000])),
                              issued_ms=draw(big_int), seal_key=draw(st.sampled_from([b"", b"k" * 300]) | small_bytes))
    raw = draw(st.one_of(st.just(record.SerializeToString()), small_bytes))
    return rpb.SignedRecord(record=raw, signature=draw(st.one_of(st.just(signer.sign(raw)), small_bytes)),
                            renewal_signature=draw(st.one_of(st.just(b""), st.just(signer.sign(raw)), small_bytes)))


@st.composite
def signed_stats(draw, f: Fixture) -> spb.SignedStats:
    signer = draw(st.sampled_from([f.a_child, f.a, f.c, f.foreign]))
    counters = spb.AgencyStats(code=draw(st.sampled_from([signer.code, A_CHILD, A, ""]) | text),
                               docs_received=draw(st.integers(0, 2**64 - 1)), as_of_ms=draw(big_int),
                               children=draw(st.lists(text, max_size=3)))
    raw = draw(st.one_of(st.just(counters.SerializeToString()), small_bytes))
    return spb.SignedStats(stats=raw, signature=draw(st.one_of(st.just(signer.sign(raw)), small_bytes)),
                           cert_der=draw(st.sampled_from([signer.cert_der, b"", b"\x30\x00"])))


@pytest.fixture(scope="module")
def directory(fx, tmp_path_factory):
    db = Database(tmp_path_factory.mktemp("fuzz-dir") / "d.sqlite3")
    d = Directory(db, fx.a, fx.trust, SYSTEM, name="Sở A", configured_parents={"vxp.conf.01": A_CHILD}, parent=None,
                  parent_address=None, transport=None, heartbeat_s=10, stale_after_s=30,
                  cache_ttl_s=300)
    d.register(records.make(fx.a_child, name="xã", level=3, parent=A, endpoint="127.0.0.1:9",
                            now_ms=SYSTEM.now_ms()), peer=A_CHILD)
    yield d
    db.close()


@FUZZ
@given(data=st.data())
def test_records_and_registrations(fx, directory, data):
    tried("records.verify + Directory.register")
    signed = data.draw(signed_records(fx))
    record = only_rejected(records.verify, signed, fx.trust)
    reached("records.verify", record)
    if not isinstance(record, Rejected):  # what is taken is within every bound of node/fields.py
        assert len(record.name) <= fields.NAME_LENGTH and record.name.isprintable(), record.name[:80]
        assert fields.endpoint_problem(record.endpoint) is None, record.endpoint
        assert case_twin_of(record.code) is None and case_twin_of(record.parent) is None
        assert len(signed.record) <= fields.RECORD_BYTES and len(record.seal_key) <= fields.SEAL_KEY_BYTES
    only_rejected(directory.register, signed, data.draw(st.sampled_from([A_CHILD, C, None])))


@FUZZ
@given(data=st.data())
def test_heartbeats_with_claims_and_statistics(fx, directory, data):
    tried("Directory.heartbeat (odd codes, signed stats) + stats.verify")
    codes = st.sampled_from([A, A_CHILD, B, C, "VN", "vxp.a.01", "vxp.b.01", "vxp.conf.01", "", "../x"]) | text
    odd = data.draw(st.dictionaries(codes, codes, max_size=4))
    rows = data.draw(st.lists(signed_stats(fx), max_size=4))
    for row in rows:
        only_rejected(stats.verify, row, fx.trust)
    only_rejected(directory.heartbeat, data.draw(st.sampled_from([A_CHILD, A_CHILD, C])),
                  data.draw(st.sampled_from([A_CHILD, None])), odd, rows)
    directory.heartbeat(A_CHILD, A_CHILD, {})  # withdraw whatever was accepted, for the next example


# ---- what one call makes a node verify: relay marks per batch, rows per heartbeat, a signature budget ------

@examples(100)
@given(data=st.data())
def test_batches_around_the_marks_limit_and_the_signature_budget(fx, data):
    """A batch's relay marks, all together, and the peer's signature budget are checked before any signature:
    over either, the batch is refused whole (OVER_LIMIT, SIGNATURE_BUDGET); under both, each envelope gets
    its own outcome."""
    tried("Intake.receive (relay marks per batch, signature budget)")
    intake = Intake(fx.node.db, fx.b, fx.trust, fx.node.router, SYSTEM, 1 << 20, queues=fx.node.dispatcher,
                    limits=Limits(marks_per_batch=8, signatures_per_second=1, signature_burst=data.draw(
                        st.sampled_from([5, 40]))))
    batch = []
    for _ in range(data.draw(st.integers(1, 4))):
        raw = data.draw(signed_envelopes(fx, A))
        try:
            env = pb.Envelope.FromString(raw)
        except Exception:  # a mutation that no longer parses: no marks to count, refused on its own
            batch.append(raw)
            continue
        for _ in range(data.draw(st.integers(0, 4))):
            if data.draw(st.booleans()):
                envelope.add_trace(env, fx.a)
            else:
                env.trace.add(body=data.draw(small_bytes), signature=data.draw(small_bytes),
                              cert_der=data.draw(st.sampled_from([fx.a.cert_der, b"", b"\x30\x00"])))
        batch.append(env.SerializeToString())
    marks = sum(_marks(raw) for raw in batch)
    results = only_rejected(intake.receive, batch, A)
    if marks > 8:
        assert isinstance(results, Rejected) and results.reason is Reason.OVER_LIMIT, results
    if isinstance(results, Rejected):
        assert results.reason in (Reason.OVER_LIMIT, Reason.SIGNATURE_BUDGET), results
        reached("Intake.receive (marks, budget)", results)
        return
    assert len(results) == len(batch)
    for r in results:
        reached("Intake.receive (marks, budget)", r)


def _marks(raw: bytes) -> int:
    try:
        return len(pb.Envelope.FromString(raw).trace)
    except Exception:
        return 0


class _Context:
    """What a servicer reads of a call in plain-text mode: nothing (PeerIdentity answers None)."""


@FUZZ
@given(data=st.data())
def test_heartbeats_around_the_rows_limit(fx, directory, data):
    tried("RegistryService.Heartbeat (rows per heartbeat)")
    service = RegistryService(directory, PeerIdentity(fx.trust, insecure=True),
                              Limits(stats_rows_per_heartbeat=3, registry_updates_per_second=1e6,
                                     registry_update_burst=1_000_000))
    rows = data.draw(st.lists(signed_stats(fx), max_size=5))
    request = rpb.HeartbeatRequest(code=data.draw(st.sampled_from([A_CHILD, A_CHILD, C]) | text), signed_stats=rows)
    result = only_rejected(service.Heartbeat, request, _Context())
    if len(rows) > 3:
        assert isinstance(result, Rejected) and result.reason is Reason.OVER_LIMIT, result
    reached("RegistryService.Heartbeat", result)
    directory.heartbeat(A_CHILD, A_CHILD, {})  # withdraw whatever was accepted, for the next example


# ---- edXML -------------------------------------------------------------------------------------------

SAMPLE_BYTES = [p.read_bytes() for p in sorted(SAMPLES.glob("*.edxml"))]
NAMES = sorted({m for b in SAMPLE_BYTES for m in re.findall(rb"<(?:edXML:)?([A-Za-z]+)", b)} - {b"xml"})
PREFIXES = ["", "edXML:", "x:", "ds:"]
NS_URIS = ["http://www.mic.gov.vn/TBT/QCVN_102_2016", "http://www.w3.org/2000/09/xmldsig#", "urn:other", ""]


# Strategies built once, not at every draw: building and validating them again for each element was most of
# these tests' time. Same draws in the same order, so the same inputs.
_ELEMENT_ATTR_NAMES = st.sampled_from(["xmlns", "xmlns:edXML", "xmlns:x", "xmlns:ds", "version", "Id"])
_ELEMENT_ATTR_VALUES = st.sampled_from(NS_URIS + ["1.0", "2.0"])
_ELEMENT_LEAVES = st.one_of(text, st.sampled_from(["2015/09/30", "01", "4294967296", "-1", "&amp;", "&bogus;",
                                                   "<![CDATA[x]]>", "QUJD", "!!", " 3 "]))
_PACKET_HEADS = st.sampled_from(["", '<?xml version="1.0" encoding="UTF-8"?>', '<?xml version="1.0" encoding="latin-1"?>',
                                 "\ufeff", "junk", "x" * 17])
_PACKET_ROOTS = st.sampled_from(['<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">', "<edXML>", "<other>"])


@st.composite
def _xml_elements(draw, depth: int) -> str:
    name = draw(st.sampled_from(PREFIXES)) + draw(st.sampled_from(NAMES)).decode()
    attrs = ""
    for _ in range(draw(st.integers(0, 2))):
        prefix = draw(_ELEMENT_ATTR_NAMES)
        attrs += f' {prefix}="{draw(_ELEMENT_ATTR_VALUES)}"'
    if depth >= 4 or draw(st.integers(0, 2)) == 0:
        body = draw(_ELEMENT_LEAVES)
        body = body.replace("<", "&lt;") if "CDATA" not in body and "&" not in body else body
    else:
        body = "".join(draw(_ELEMENT_LISTS[depth + 1]))
    return f"<{name}{attrs}>{body}</{name}>"


_ELEMENTS = {depth: _xml_elements(depth) for depth in range(6)}
_ELEMENT_LISTS = {depth: st.lists(_ELEMENTS[depth], max_size=4) for depth in range(6)}


def xml_elements(depth: int = 0) -> st.SearchStrategy[str]:
    """An XML element (and what it holds, down to depth 4) built from the samples' names."""
    return _ELEMENTS[depth]


@st.composite
def xml_packets(draw) -> bytes:
    head = draw(_PACKET_HEADS)
    root = draw(_PACKET_ROOTS)
    inner = "".join(draw(st.lists(xml_elements(1), max_size=3)))
    return (head + root + inner + ("</edXML>" if root.startswith("<edXML") else "</other>")).encode()


def import_then_export(data: bytes, target: str = "edXML") -> None:
    """Import; export what was accepted; import the export again. Only EdxmlError may be raised."""
    def step(what: str) -> None:
        REACHED.setdefault(target, {})
        REACHED[target][what] = REACHED[target].get(what, 0) + 1

    try:
        msg = import_edxml(data, warnings=[])
    except EdxmlError:
        return step("refused")
    try:
        packet = export_edxml(msg)
    except EdxmlError:
        return step("imported, export refused")
    try:
        import_edxml(packet, warnings=[])
    except EdxmlError:
        return step("imported, exported, re-import refused")
    step("round trip")


@examples(200)
@given(data=xml_packets())
def test_edxml_random_packets(data):
    tried("import_edxml/export_edxml (random XML)")
    import_then_export(data, "edXML random")


@examples(500)
@given(data=st.data())
def test_edxml_mutated_samples(data):
    tried("import_edxml/export_edxml (mutated samples)")
    sample = data.draw(st.sampled_from(SAMPLE_BYTES))
    how = data.draw(st.sampled_from(["values", "bytes", "element", "drop"]))
    if how == "values":  # the structure kept, some leaves' text replaced (numbers, dates, codes, base64, ...)
        leaves = list(re.finditer(rb">([^<>]*)</", sample))
        chosen = data.draw(st.lists(st.integers(0, len(leaves) - 1), min_size=1, max_size=4, unique=True))
        for i in sorted(chosen, reverse=True):
            value = data.draw(st.sampled_from(["", "0", "4294967296", "-1", "2015/02/30", "x" * 300, "&amp;&lt;",
                                               "QUJD", "!!!", "000.00.00.H53", "\u00a0 1 "]) | text)
            value = value.replace("&", "&amp;").replace("<", "&lt;") if "&" not in value[:1] else value
            sample = sample[:leaves[i].start(1)] + value.encode() + sample[leaves[i].end(1):]
    elif how == "bytes":
        sample = mutate(data.draw, sample)
    elif how == "element":  # an element of its own inserted anywhere between tags
        cuts = [m.end() for m in re.finditer(rb">", sample)]
        at = data.draw(st.sampled_from(cuts))
        sample = sample[:at] + data.draw(xml_elements(3)).encode() + sample[at:]
    else:  # an element and what it holds left out, or given twice
        elements = list(re.finditer(rb"<(edXML:\w+)[^>]*>.*?</\1>", sample, re.S))
        m = elements[data.draw(st.integers(0, len(elements) - 1))]
        twice = data.draw(st.booleans())
        sample = sample[:m.start()] + (m.group(0) * 2 if twice else b"") + sample[m.end():]
    import_then_export(sample, "edXML samples")


@examples(200)
@given(data=st.data())
def test_edxml_export_of_any_message(data):
    tried("export_edxml (random messages and traces)")
    if data.draw(st.booleans()):
        msg = documents(data.draw)
    else:
        msg = pb.Status(status_code=data.draw(st.sampled_from(["01", "13", "", "x"]) | text),
                        description=data.draw(text), timestamp=data.draw(text))
        msg.response_for.document_id = data.draw(text)
    msg.from_organ.organ_id = data.draw(text)
    msg.edxml_signature = data.draw(st.sampled_from(["", "<Signature/>", "<x>", "]]>"]) | text)
    trace = data.draw(st.one_of(st.none(), st.lists(st.tuples(text, st.sampled_from(["2024/01/02 03:04:05", ""]) | text),
                                                    max_size=3)))
    try:
        packet = export_edxml(msg, trace=trace)
    except EdxmlError:
        REACHED.setdefault("edXML export", {})
        REACHED["edXML export"]["export refused"] = REACHED["edXML export"].get("export refused", 0) + 1
        return
    import_then_export(packet, "edXML export")



# ---- client tokens (api.tokens) --------------------------------------------------------------------

TOKENS = {n: hashlib.sha256(n.encode()).hexdigest() for n in ("default", "qlvb", "monitor")}  # fixed: reproducible
CLIENTS = Clients([(n, t, SCOPES if n == "default" else ("read",) if n == "monitor" else ("read", "send"))
                   for n, t in TOKENS.items()])
METHODS = [f"/lienthong.v1.{s}/{m}" for s, m in (
    ("Mailbox", "Send"), ("Mailbox", "ListInbox"), ("Admin", "Purge"), ("Stats", "Get"), ("Mailbox", "Watch"))]


@st.composite
def authorization_headers(draw) -> str:
    """A client's header, mutated (a character changed, added or dropped, the case or the scheme changed, two
    tokens run together, spaces, another alphabet), or anything."""
    header = f"Bearer {TOKENS[draw(st.sampled_from(list(TOKENS)))]}"
    how = draw(st.integers(0, 8))
    i = draw(st.integers(0, len(header)))
    if how == 0:
        return draw(text)
    if how == 1:
        return header[:i] + draw(st.characters(exclude_categories=["Cs"])) + header[i + 1:]
    if how == 2:
        return header[:i] + header[i + 1:]
    if how == 3:
        return header[:i] + draw(st.characters(exclude_categories=["Cs"])) + header[i:]
    if how == 4:
        return header.swapcase() if draw(st.booleans()) else header.replace("Bearer", draw(
            st.sampled_from(["bearer", "Basic", "Bearer ", "", "Bearer\t"])), 1)
    if how == 5:
        return header + draw(st.sampled_from([" ", "\n", "\x00", TOKENS["qlvb"], ","])) + draw(text)
    if how == 6:
        return draw(st.sampled_from([" ", "\t", ""])) + header
    if how == 7:
        return header  # the real one: the oracle must accept it
    return f"Bearer {draw(st.sampled_from(list(TOKENS.values())))}"


@examples(2000)
@given(header=authorization_headers(), method=st.sampled_from(METHODS) | text)
def test_a_client_is_known_only_by_its_exact_token_and_held_to_its_scopes(header, method):
    """The local API's check, as its interceptor and the HTTP face run it: a header names a client only when
    it is exactly `Bearer <that client's token>`; a known client's call is let through or NOT_PERMITTED."""
    tried("api tokens (authorization headers)")
    client = CLIENTS.identify(header)
    owner = next((n for n, t in TOKENS.items() if header == f"Bearer {t}"), None)
    assert (client.name if client else None) == owner, header
    if client is None:
        REACHED.setdefault("api tokens", {})
        REACHED["api tokens"]["UNAUTHENTICATED"] = REACHED["api tokens"].get("UNAUTHENTICATED", 0) + 1
        return
    reached("api tokens", only_rejected(authorize, client, method))


@examples(300)
@given(entries=st.lists(st.fixed_dictionaries({}, optional={
    "name": st.sampled_from(["qlvb", "default", "Q", "a" * 33, "-x", "ok_1"]) | text,
    "token": st.sampled_from(list(TOKENS.values())) | text | st.integers(),
    "token_file": st.sampled_from(["missing.token", ""]) | text,
    "scopes": st.lists(st.sampled_from(["read", "send", "admin", "write", ""]) | text, max_size=4) | text}),
    max_size=4))
def test_api_tokens_config_loads_or_names_the_key(tmp_path_factory, entries):
    """Any api.tokens: loaded, or a ConfigError naming a key under api.tokens (never another exception)."""
    tried("config api.tokens")
    base = tmp_path_factory.getbasetemp()
    data = {"node": {"code": A, "name": "x", "data_dir": str(base / "d")}, "listen": "127.0.0.1:1",
            "tls": {"key": __file__, "cert": __file__, "trust_anchors": [__file__]},
            "api": {"listen": "127.0.0.1:2", "token": TOKENS["default"], "tokens": entries}}
    try:
        s = parse_config(data, base)
    except ConfigError as e:
        assert e.path.startswith("api.tokens"), (e.path, str(e))
        what = "refused"
    else:
        names = [c.name for c in s.api.tokens]
        assert len(set(names)) == len(names) and "default" not in names
        assert len({c.token for c in s.api.tokens} | {s.api.token}) == len(names) + 1
        what = "accepted"
    REACHED.setdefault("config api.tokens", {})
    REACHED["config api.tokens"][what] = REACHED["config api.tokens"].get(what, 0) + 1
