"""One envelope handed over by a malicious insider: every check of node.envelope.verify and intake.

M is a registered child of D and hands D envelopes over mutual TLS with its real certificate;
each is refused with its stable reason before anything is stored. (The cases of
tests/exchange/test_exchange_grpc.py, here against a real node process and a real insider.)
"""
from __future__ import annotations

import time

from node import envelope
from node.pb import envelope_pb2 as pb
from node.pb import exchange_pb2 as xpb

from .core import Observed, Scene, call, case, outcome
from .world import (C1, C2, D, G, M, MAX_SIZE, P, PARKED_PER_ORIGIN, R, TIMEOUT, X, poll, document, edited, expired_identity, foreign_identity, forged,
                    relayed, seal, status, unknown_version)

DELIVER = "Exchange.Deliver, M → D"
YEAR_MS = 365 * 86400 * 1000


def deliver(s: Scene, raw: bytes, who: str = M, at: str = D) -> Observed:
    return call(s.w.exchange(who, at).Deliver, xpb.DeliverRequest(envelope=raw))


def mine(s: Scene, payload: pb.Payload | None = None, **kw) -> bytes:
    """A fresh envelope from M to D."""
    return seal(s.w.signer(M), D, payload, **kw)[1]


def header_edit(s: Scene, edit, payload: pb.Payload | None = None) -> Observed:
    m = s.w.signer(M)
    return deliver(s, forged(mine(s, payload), m, edit))


# ---- structure and signatures -------------------------------------------------------------

@case("envelope", "bytes that are no envelope", "INVALID_ARGUMENT", "MALFORMED", via=DELIVER)
def _(s):
    return deliver(s, b"\xff\xff\xff\xff not an envelope")


@case("envelope", "header bytes that do not parse", "INVALID_ARGUMENT", "MALFORMED", via=DELIVER)
def _(s):
    return deliver(s, edited(mine(s), lambda env: setattr(env, "header", b"\x0a\xff\xff\xff")))


@case("envelope", "header signed over other bytes", "PERMISSION_DENIED", "BAD_SIGNATURE", via=DELIVER)
def _(s):
    m = s.w.signer(M)
    return deliver(s, edited(mine(s), lambda env: setattr(env, "signature", m.sign(b"something else"))))


@case("envelope", "unsigned envelope", "PERMISSION_DENIED", "BAD_SIGNATURE", via=DELIVER)
def _(s):
    return deliver(s, edited(mine(s), lambda env: env.ClearField("signature")))


@case("envelope", "payload swapped after signing", "INVALID_ARGUMENT", "DIGEST_MISMATCH", via=DELIVER)
def _(s):
    other = document("tampered").SerializeToString()
    return deliver(s, edited(mine(s), lambda env: setattr(env, "payload", other)))


@case("envelope", "payload size that lies", "INVALID_ARGUMENT", "DIGEST_MISMATCH", via=DELIVER)
def _(s):
    return header_edit(s, lambda h: setattr(h, "payload_size", h.payload_size + 1))


@case("envelope", "no sender certificate", "PERMISSION_DENIED", "UNKNOWN_SENDER", via=DELIVER)
def _(s):
    return deliver(s, edited(mine(s), lambda env: env.ClearField("sender_cert")))


@case("envelope", "sender certificate from a foreign CA", "PERMISSION_DENIED", "UNTRUSTED_CERT", via=DELIVER)
def _(s):
    return deliver(s, seal(foreign_identity(s.w, M).signer, D)[1])


@case("envelope", "sender certificate that does not parse", "PERMISSION_DENIED", "UNTRUSTED_CERT", via=DELIVER)
def _(s):
    o = deliver(s, edited(mine(s), lambda env: setattr(env, "sender_cert", b"\x30\x82\x01\x00 not DER")))
    assert "parse" in o.detail  # the public detail, not the parser's exception text
    return o


@case("internal text", "sender certificate of an X.509 version that does not exist", "PERMISSION_DENIED",
      "UNTRUSTED_CERT", via=DELIVER)
def _(s):
    return deliver(s, edited(mine(s), lambda env: setattr(env, "sender_cert", unknown_version(env.sender_cert))))


@case("internal text", "relay mark whose certificate has an unknown X.509 version", "PERMISSION_DENIED",
      "UNTRUSTED_CERT", via=DELIVER)
def _(s):
    m = s.w.signer(M)
    env = from_g(s)
    mark(env, M, unknown_version(m.cert_der), m.sign)
    return deliver(s, env.SerializeToString())


@case("envelope", "expired sender certificate", "PERMISSION_DENIED", "CERT_EXPIRED", via=DELIVER)
def _(s):
    return deliver(s, seal(expired_identity(s.w, M).signer, D)[1])


@case("envelope", "header names another sender than the certificate", "PERMISSION_DENIED", "SENDER_MISMATCH",
      via=DELIVER)
def _(s):
    return header_edit(s, lambda h: setattr(h, "sender", C1))


@case("envelope", "a sibling's captured envelope replayed by M", "PERMISSION_DENIED", "PEER_MISMATCH", via=DELIVER)
def _(s):
    return deliver(s, seal(s.w.signer(C2), D)[1])  # C2 signed it; M, connecting, left no mark


@case("envelope", "mail from below M handed over without M's relay mark", "PERMISSION_DENIED", "PEER_MISMATCH",
      via=DELIVER)
def _(s):
    return deliver(s, seal(s.w.signer(G), C1)[1])


@case("envelope", "an outsider's mail for an outsider, relayed by M", "FAILED_PRECONDITION", "NOT_FOR_THIS_NODE",
      via=DELIVER)
def _(s):
    return deliver(s, relayed(seal(s.w.signer(X), R)[1], s.w.signer(M)))


@case("limits", "mail for made-up codes below the victim, past the insider's parking quota", "RESOURCE_EXHAUSTED",
      "PARK_FULL", via=DELIVER)
def _(s):
    """Below D by the code rule but never registered: D cannot tell them from communes not set up yet, so it
    parks them (transient, not refused), but only PARKED_PER_ORIGIN of M's; the next is refused for now (M
    keeps it). A retry of one parked is answered with its receipt, and the quota is M's alone: what a
    commune's node older than sealing hands D for a code not registered yet is still parked. An upgraded
    commune's node keeps such mail home instead: there is no seal key to be had (sealing.mode required)."""
    m = s.w.signer(M)
    parked = [seal(m, f"000.{29 + i}.35.H53", lifetime_s=10 * YEAR_MS / 1000) for i in range(PARKED_PER_ORIGIN)]
    for header, raw in parked:
        assert deliver(s, raw).status == "OK"
    refused = deliver(s, seal(m, "000.39.35.H53", lifetime_s=10 * YEAR_MS / 1000)[1])
    assert deliver(s, parked[0][1]).status == "OK"  # the same envelope again: its stored receipt
    kept = s.w.api(C1).send(pb.Document(subject="Gửi xã mới"), ["000.40.35.H53"]).envelopes[0].message_id
    poll("C1 keeps its own mail home", lambda: s.w.rows(C1, f"SELECT 1 FROM outbox WHERE message_id = '{kept}' "
                                                            "AND state = 'pending' AND not_before_ms IS NOT NULL"))
    old_node, raw = seal(s.w.signer(C1), "000.41.35.H53")
    assert deliver(s, raw, who=C1).status == "OK"
    sent = old_node.message_id
    poll("D parks C1's mail", lambda: s.w.rows(D, f"SELECT 1 FROM outbox WHERE message_id = '{sent}' "
                                                  f"AND parked_by = '{C1}' AND state = 'pending'"))
    assert not s.w.rows(D, f"SELECT 1 FROM outbox WHERE message_id = '{kept}'")
    return refused.allowing(sent, kept, *(h.message_id for h, _ in parked))


@case("envelope", "envelope over the victim's size limit", "RESOURCE_EXHAUSTED", "TOO_LARGE", via=DELIVER)
def _(s):
    doc = pb.Document(subject="lớn", attachments=[pb.Attachment(name="scan.pdf", data=b"\0" * (1 << 20))])
    return deliver(s, mine(s, pb.Payload(document=doc)))


def unsigned_field(number: int, data: bytes) -> bytes:
    """A length-delimited protobuf field no message of ours has: appended to a message's bytes, it parses."""
    n, length = len(data), b""
    while True:
        length += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
        n >>= 7
        if not n:
            break
    return bytes([(number << 3) | 2]) + length + data


@case("envelope", "a megabyte of unknown fields outside the signature", "INVALID_ARGUMENT", "UNSIGNED_FIELDS",
      via=DELIVER)
def _(s):
    """Everything signed is carried as bytes (header, payload, trace bodies): fields around them are
    nobody's word. Stored, every relay would keep and pass on the megabyte (under D's 1 MiB limit)."""
    raw = mine(s) + unsigned_field(15, b"\0" * (MAX_SIZE - 8192))
    assert len(raw) < MAX_SIZE and pb.Envelope.FromString(raw).signature
    return deliver(s, raw)


@case("envelope", "an unknown field in a relay mark, outside its signed body", "INVALID_ARGUMENT", "UNSIGNED_FIELDS",
      via=DELIVER)
def _(s):
    env = pb.Envelope.FromString(relayed(from_g(s).SerializeToString(), s.w.signer(M)))
    env.trace[-1].MergeFromString(unsigned_field(9, b"x" * 1000))
    return deliver(s, env.SerializeToString())


# ---- header fields ----------------------------------------------------------------------------

for name in ("recipient", "sender"):
    @case("limits", f"header {name} of 100 kB", "INVALID_ARGUMENT", "MALFORMED", via=DELIVER)
    def _(s, name=name):
        """Such a recipient was relayed up to the root; an unbounded field echoed in a refusal was written
        whole into the audit log and the node's log, and its status went over gRPC's trailer limit."""
        o = header_edit(s, lambda h: setattr(h, name, "000.00.09.H53" + "9" * 100_000))
        assert len(o.detail) <= 400
        return o


@case("limits", "relay mark naming a code of 100 kB", "PERMISSION_DENIED", "BAD_TRACE", via=DELIVER)
def _(s):
    env, m = from_g(s), s.w.signer(M)
    mark(env, "X" * 100_000, m.cert_der, m.sign)
    o = deliver(s, env.SerializeToString())
    assert len(o.detail) <= 400
    return o


@case("envelope", "no message id", "INVALID_ARGUMENT", "MISSING_FIELD", via=DELIVER)
def _(s):
    return header_edit(s, lambda h: h.ClearField("message_id"))


@case("envelope", "no recipient", "INVALID_ARGUMENT", "MISSING_FIELD", via=DELIVER)
def _(s):
    return header_edit(s, lambda h: h.ClearField("recipient"))


@case("envelope", "no kind", "INVALID_ARGUMENT", "MISSING_FIELD", via=DELIVER)
def _(s):
    return header_edit(s, lambda h: setattr(h, "kind", pb.KIND_UNSPECIFIED))


@case("envelope", "payload of another kind than the header says", "INVALID_ARGUMENT", "MISSING_FIELD", via=DELIVER)
def _(s):
    return header_edit(s, lambda h: setattr(h, "kind", pb.STATUS))


@case("envelope", "payload bytes that do not parse", "INVALID_ARGUMENT", "MALFORMED", via=DELIVER)
def _(s):
    return deliver(s, forged(mine(s), s.w.signer(M), payload=b"\xff\xff\xff\xff"))


@case("envelope", "header priority 7", "INVALID_ARGUMENT", "INVALID_REQUEST", via=DELIVER)
def _(s):
    return header_edit(s, lambda h: setattr(h, "priority", 7))


@case("envelope", "envelope past its lifetime", "FAILED_PRECONDITION", "EXPIRED", via=DELIVER)
def _(s):
    def an_hour_ago(h):
        h.created_ms -= 3600_000
        h.expires_ms = h.created_ms + 60_000
    return header_edit(s, an_hour_ago)


@case("envelope", "created before 2000", "INVALID_ARGUMENT", "BAD_TIME", via=DELIVER)
def _(s):
    return header_edit(s, lambda h: setattr(h, "created_ms", 1))


@case("envelope", "created two days ahead of the receiver's clock", "INVALID_ARGUMENT", "BAD_TIME", via=DELIVER)
def _(s):
    def ahead(h):
        h.created_ms += 2 * 86400_000
        h.expires_ms = h.created_ms + 3600_000
    return header_edit(s, ahead)


@case("jam", "creation time beyond year 9999", "INVALID_ARGUMENT", "BAD_TIME", via=DELIVER)
def _(s):
    return header_edit(s, lambda h: setattr(h, "created_ms", 10**15))


@case("envelope", "lifetime that ends before it starts", "INVALID_ARGUMENT", "BAD_TIME", via=DELIVER)
def _(s):
    return header_edit(s, lambda h: setattr(h, "expires_ms", h.created_ms - 60_000))


@case("envelope", "lifetime beyond ten years", "INVALID_ARGUMENT", "BAD_TIME", via=DELIVER)
def _(s):
    return header_edit(s, lambda h: setattr(h, "expires_ms", h.created_ms + 11 * YEAR_MS))


# ---- message ids that would name a path (CLI file handling, checked at the receiving node) ------------

for label, bad in (("a path", "../../etc/passwd"), ("a separator", "a/b"), ("a NUL", "id\x00x"),
                   ("a control character", "id\x1b[2J"), ("129 characters", "x" * 129), ("a leading dot", ".hidden")):
    @case("cli files", f"message id with {label}", "INVALID_ARGUMENT", "MALFORMED", via=DELIVER)
    def _(s, bad=bad):
        return header_edit(s, lambda h: setattr(h, "message_id", bad))


@case("cli files", "reference to a message id with a path", "INVALID_ARGUMENT", "MALFORMED", via=DELIVER)
def _(s):
    return header_edit(s, lambda h: setattr(h, "ref_message_id", "..\\..\\boot.ini"))


# ---- what the victim's handlers read -----------------------------------------------------------------

@case("envelope", "status with an unknown code", "INVALID_ARGUMENT", "INVALID_REQUEST", via=DELIVER)
def _(s):
    return deliver(s, mine(s, status("99"), ref_message_id=s.w.docs["from_d"]))


@case("envelope", "status that names no document", "INVALID_ARGUMENT", "MISSING_FIELD", via=DELIVER)
def _(s):
    return deliver(s, mine(s, status("03")))


@case("envelope", "business_doc_type 9", "INVALID_ARGUMENT", "INVALID_REQUEST", via=DELIVER)
def _(s):
    return deliver(s, mine(s, document("lạ", business=pb.Business(business_doc_type=9))))


@case("envelope", "revoke that names no document", "INVALID_ARGUMENT", "MISSING_FIELD", via=DELIVER)
def _(s):
    return deliver(s, mine(s, document("thu hồi", business=pb.Business(business_doc_type=1))))


@case("limits", "101 attachments in one document", "INVALID_ARGUMENT", "OVER_LIMIT", via=DELIVER)
def _(s):
    doc = pb.Document(subject="nhiều tệp", attachments=[pb.Attachment(name=f"{i}.pdf") for i in range(101)])
    return deliver(s, mine(s, pb.Payload(document=doc)))


@case("limits", "attachment name of 256 characters", "INVALID_ARGUMENT", "OVER_LIMIT", via=DELIVER)
def _(s):
    doc = pb.Document(subject="tên dài", attachments=[pb.Attachment(name="a" * 252 + ".pdf")])
    return deliver(s, mine(s, pb.Payload(document=doc)))


# ---- relay marks ------------------------------------------------------------------------------

def from_g(s: Scene, to: str = C1) -> pb.Envelope:
    """Mail from G (below M) that M relays: the route G → M → D → C1 is by the tree."""
    return pb.Envelope.FromString(seal(s.w.signer(G), to)[1])


def mark(env: pb.Envelope, code: str, cert_der: bytes, sign, *, time_ms: int | None = None,
         prev: bytes | None = None, header: bytes | None = None) -> None:
    """Append a hand-made trace entry (what envelope.add_trace does, with every field chosen)."""
    body = pb.TraceBody(code=code, time_ms=time_ms or int(time.time() * 1000),
                        header_sha256=header or envelope.sha256(env.header),
                        prev_sha256=prev or envelope.sha256(env.trace[-1].signature if env.trace else env.signature))
    raw = body.SerializeToString()
    env.trace.append(pb.TraceEntry(body=raw, signature=sign(raw), cert_der=cert_der))


@case("relay", "17 relay marks", "INVALID_ARGUMENT", "OVER_LIMIT", via=DELIVER)
def _(s):
    env, m = from_g(s), s.w.signer(M)
    for _ in range(17):
        envelope.add_trace(env, m)
    return deliver(s, env.SerializeToString())


@case("relay", "forged earlier mark: X's code on M's certificate", "PERMISSION_DENIED", "BAD_TRACE", via=DELIVER)
def _(s):
    env, m = from_g(s), s.w.signer(M)
    mark(env, X, m.cert_der, m.sign)
    envelope.add_trace(env, m)
    return deliver(s, env.SerializeToString())


@case("relay", "forged earlier mark: X's certificate, signed by M", "PERMISSION_DENIED", "BAD_TRACE", via=DELIVER)
def _(s):
    env, m = from_g(s), s.w.signer(M)
    mark(env, X, s.w.ids[X].cert_der, m.sign)
    envelope.add_trace(env, m)
    return deliver(s, env.SerializeToString())


@case("relay", "earlier mark not chained to the envelope", "PERMISSION_DENIED", "BAD_TRACE", via=DELIVER)
def _(s):
    env, m, x = from_g(s), s.w.signer(M), s.w.signer(X)
    mark(env, X, x.cert_der, x.sign, prev=b"\0" * 32)
    envelope.add_trace(env, m)
    return deliver(s, env.SerializeToString())


@case("relay", "mark lifted from another envelope", "PERMISSION_DENIED", "BAD_TRACE", via=DELIVER)
def _(s):
    m = s.w.signer(M)
    other = envelope.add_trace(from_g(s), m)
    env = envelope.add_trace(from_g(s), m)
    env.trace[0].CopyFrom(other.trace[0])
    return deliver(s, env.SerializeToString())


@case("relay", "relay mark dated beyond year 9999", "INVALID_ARGUMENT", "BAD_TIME", via=DELIVER)
def _(s):
    env, m = from_g(s), s.w.signer(M)
    mark(env, M, m.cert_der, m.sign, time_ms=10**15)
    return deliver(s, env.SerializeToString())


@case("jam", "relay mark dated in the last hours of year 9999 (UTC)", "INVALID_ARGUMENT", "BAD_TIME", via=DELIVER)
def _(s):
    """Valid UTC, but year 10000 in Vietnam's time, in which the automatic 01 writes the path: it failed
    inside the custody transaction (INTERNAL, retried by the sender while its hop backed off)."""
    env, m = from_g(s, to=D), s.w.signer(M)
    mark(env, M, m.cert_der, m.sign, time_ms=253_402_300_799_000 - 3600_000)  # 9999-12-31T22:59:59Z
    return deliver(s, env.SerializeToString())


@case("relay", "relay mark that does not parse", "INVALID_ARGUMENT", "MALFORMED", via=DELIVER)
def _(s):
    env, m = from_g(s), s.w.signer(M)
    env.trace.append(pb.TraceEntry(body=b"\x0a\xff\xff", signature=m.sign(b"\x0a\xff\xff"), cert_der=m.cert_der))
    return deliver(s, env.SerializeToString())


@case("relay", "relay mark with a certificate that does not parse", "PERMISSION_DENIED", "UNTRUSTED_CERT",
      via=DELIVER)
def _(s):
    env, m = from_g(s), s.w.signer(M)
    mark(env, M, b"\x30\x03\x02\x01\x00", m.sign)
    return deliver(s, env.SerializeToString())


# ---- message ids already in use ------------------------------------------------------------------

@case("envelope", "message id of a stored document, other content", "ALREADY_EXISTS", "DUPLICATE_CONFLICT",
      via=DELIVER)
def _(s):
    return deliver(s, mine(s, document("thế chỗ"), message_id=s.w.docs["to_d"]))


@case("jam", "message id of one in the receiver's own outbox", "ALREADY_EXISTS", "DUPLICATE_CONFLICT", via=DELIVER)
def _(s):
    return deliver(s, mine(s, document("trùng"), message_id=s.w.docs["from_d"]))


# ---- jamming a link with one envelope ------------------------------------------------------------------

BATCH = "Exchange.DeliverBatch, M → D (per-envelope outcome)"


def batch_with(s: Scene, bad: bytes) -> Observed:
    """[good, bad, good]: the bad one is refused alone and both good ones are stored."""
    m = s.w.signer(M)
    (h1, good1), (h2, good2) = seal(m, D, document("một")), seal(m, D, document("hai"))
    resp = s.w.exchange(M).DeliverBatch(xpb.DeliverBatchRequest(envelopes=[good1, bad, good2]), timeout=TIMEOUT)
    first, middle, last = (outcome(o) for o in resp.outcomes)
    assert (first.status, last.status) == ("OK", "OK"), (first, last)
    stored = {r[0] for r in s.w.rows(D, "SELECT message_id FROM inbox")}
    assert {h1.message_id, h2.message_id} <= stored
    return middle.allowing(h1.message_id, h2.message_id)


@case("jam", "creation time beyond 9999 in the middle of a batch", "INVALID_ARGUMENT", "BAD_TIME", via=BATCH)
def _(s):
    return batch_with(s, forged(mine(s), s.w.signer(M), lambda h: setattr(h, "created_ms", 10**15)))


@case("jam", "receiver's own outbox id in the middle of a batch", "ALREADY_EXISTS", "DUPLICATE_CONFLICT", via=BATCH)
def _(s):
    return batch_with(s, mine(s, document("trùng"), message_id=s.w.docs["from_d"]))


@case("jam", "payload priority 99 (edXML OtherInfo)", "OK", "", via=DELIVER)
def _(s):
    odd = pb.Document(subject="ưu tiên lạ")
    odd.other_info.priority = 99
    h, raw = seal(s.w.signer(M), D, pb.Payload(document=odd))
    o = deliver(s, raw)
    [(priority,)] = s.w.rows(D, f"SELECT priority FROM inbox WHERE message_id = '{h.message_id}'")
    assert priority == 0  # only the signed header's priority is used
    return o.allowing(h.message_id)


@case("jam", "document at the size limit whose automatic 01 would not fit", "RESOURCE_EXHAUSTED", "TOO_LARGE",
      via=DELIVER)
def _(s):
    """The automatic 01 copies the document's ids and adds the path, so it is a little larger than a
    document filled up to the receiver's limit. It once failed inside the custody transaction: INTERNAL,
    which the sender retries, and its whole hop backs off for as long as the envelope lives."""
    m, target, n = s.w.signer(M), MAX_SIZE - 16, MAX_SIZE - 4096
    for _ in range(10):
        raw = seal(m, D, pb.Payload(document=pb.Document(document_id="x" * n,
                                                         from_organ=pb.Organization(organ_id=M))))[1]
        if target <= len(raw) <= MAX_SIZE:
            break
        n += target - len(raw)
    assert target <= len(raw) <= MAX_SIZE, len(raw)
    o = deliver(s, raw)
    assert "01" in o.detail, o.detail
    return o


@case("jam", "a batch of 1001 envelopes", "INVALID_ARGUMENT", "OVER_LIMIT", via="Exchange.DeliverBatch, M → D")
def _(s):
    raw = mine(s)
    return call(s.w.exchange(M).DeliverBatch, xpb.DeliverBatchRequest(envelopes=[raw] * 1001))


# ---- flat trust: only neighbours hand over, and only what the tree routes through them -------------------

@case("flat trust", "a trusted node that is no neighbour hands over a batch", "PERMISSION_DENIED", "NOT_A_NEIGHBOUR",
      via="Exchange.DeliverBatch, X → D")
def _(s):
    return call(s.w.exchange(X).DeliverBatch, xpb.DeliverBatchRequest(envelopes=[seal(s.w.signer(X), D)[1]]))


@case("flat trust", "a trusted node that is no neighbour hands over one envelope", "PERMISSION_DENIED",
      "NOT_A_NEIGHBOUR", via="Exchange.Deliver, X → D")
def _(s):
    return deliver(s, seal(s.w.signer(X), C1)[1], who=X)


@case("flat trust", "a grandchild hands over to the province directly", "PERMISSION_DENIED", "NOT_A_NEIGHBOUR",
      via="Exchange.Deliver, M → P")
def _(s):
    return deliver(s, seal(s.w.signer(M), P)[1], at=P)


@case("flat trust", "M relays an outsider's mail into the victim's subtree", "PERMISSION_DENIED", "OFF_ROUTE",
      via=DELIVER)
def _(s):
    return deliver(s, relayed(seal(s.w.signer(X), C1)[1], s.w.signer(M)))


@case("flat trust", "M relays an outsider's mail for the victim itself", "PERMISSION_DENIED", "OFF_ROUTE", via=DELIVER)
def _(s):
    return deliver(s, relayed(seal(s.w.signer(X), D)[1], s.w.signer(M)))


@case("flat trust", "M relays a sibling's captured mail to another sibling", "PERMISSION_DENIED", "OFF_ROUTE",
      via=DELIVER)
def _(s):
    return deliver(s, relayed(seal(s.w.signer(C2), C1)[1], s.w.signer(M)))
