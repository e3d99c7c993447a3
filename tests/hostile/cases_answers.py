"""The insider as an answerer: D asks M (a lookup below it) or hands M mail (M is its next hop).

Poisoned lookup answers are refused and not cached; M's failures never reach D's caller as M's
text; questions from above or from a non-child cannot teach D a negative answer for its own
children; lookups are rate-limited per peer. As a next hop, M's receipts must prove custody and
its refusals end an envelope only for a permanent catalogue reason, with its words bounded.
"""
from __future__ import annotations

import time

import grpc

from node import envelope, receipts
from node.pb import envelope_pb2 as pb
from node.pb import exchange_pb2 as xpb
from node.pb import mailbox_pb2 as mpb
from node.pb import registry_pb2 as rpb
from node.registry import records
from node.registry import successions as succ

from .cases_registry import hand_made
from .core import Observed, call, case, refused
from .world import C1, C2, D, D2, G, M, M2, P, R, TIMEOUT, X, message_id_of, poll, unknown_version

LOOKUP = "Mailbox.Lookup at D, answered by M"
SECRET = "Traceback (most recent call last): /srv/m/secret.py line 7"


def ask_d(s, code: str) -> Observed:
    api = s.w.api(D)
    return call(api.stub.Lookup, mpb.AgencyLookupRequest(code=code), metadata=api.metadata)


def answered(s, answer) -> Observed:
    """D's local API looks up G (below M); M answers with `answer(request, context)`. Asked twice:
    a refused answer is not cached, so M is asked again."""
    w = s.w
    w.fake.on_lookup = answer
    asked = len(w.fake.lookups)
    try:
        first = ask_d(s, G)
        second = ask_d(s, G)
    finally:
        w.fake.reset()
    assert w.fake.lookups[asked:] == [G, G], w.fake.lookups[asked:]
    assert (first.status, first.reason) == (second.status, second.reason)
    assert "secret" not in first.detail and "Traceback" not in first.detail
    return first


def entry(record: rpb.SignedRecord) -> rpb.LookupResponse:
    return rpb.LookupResponse(entry=rpb.DirectoryEntry(record=record, reachable=True))


@case("poisoned answers", "lookup answered with another agency's genuine record", "PERMISSION_DENIED",
      "BAD_SIGNATURE", via=LOOKUP)
def _(s):
    c1 = s.w.registry(M).Lookup(rpb.LookupRequest(code=C1), timeout=TIMEOUT).entry.record  # public, signed by C1
    return answered(s, lambda req, ctx: entry(c1))


@case("poisoned answers", "lookup answered with a record for G on M's certificate", "PERMISSION_DENIED",
      "SENDER_MISMATCH", via=LOOKUP)
def _(s):
    return answered(s, lambda req, ctx: entry(hand_made(s.w.signer(M), G, endpoint=s.w.fake.address)))


@case("poisoned answers", "lookup answered with G's certificate, signed by M", "PERMISSION_DENIED", "BAD_SIGNATURE",
      via=LOOKUP)
def _(s):
    m = s.w.signer(M)
    return answered(s, lambda req, ctx: entry(hand_made(m, G, cert_der=s.w.ids[G].cert_der, sign=m.sign)))


@case("poisoned answers", "lookup answered with a record that does not parse", "INVALID_ARGUMENT", "MALFORMED",
      via=LOOKUP)
def _(s):
    return answered(s, lambda req, ctx: entry(rpb.SignedRecord(record=b"\x0a\xff\xff", signature=b"x")))


@case("internal text", "lookup answered with a certificate that does not parse", "PERMISSION_DENIED",
      "UNTRUSTED_CERT", via=LOOKUP)
def _(s):
    return answered(s, lambda req, ctx: entry(hand_made(s.w.signer(M), G, cert_der=b"\x30\x03\x02\x01\x00")))


@case("poisoned answers", "lookup answered with a record without an endpoint", "INVALID_ARGUMENT", "MISSING_FIELD",
      via=LOOKUP)
def _(s):
    return answered(s, lambda req, ctx: entry(hand_made(s.w.signer(G), G, endpoint="")))


@case("internal text", "lookup answered with a certificate of an unknown X.509 version", "PERMISSION_DENIED",
      "UNTRUSTED_CERT", via=LOOKUP)
def _(s):
    g = s.w.ids[G]
    return answered(s, lambda req, ctx: entry(hand_made(g.signer, G, cert_der=unknown_version(g.cert_der),
                                                        endpoint=s.w.fake.address)))


@case("internal text", "lookup failed by M with internal text", "UNAVAILABLE", "UNREACHABLE", via=LOOKUP)
def _(s):
    def fail(req, ctx):
        ctx.abort(grpc.StatusCode.INTERNAL, SECRET)
    return answered(s, fail)


@case("internal text", "lookup failed by M with a reason outside the catalogue", "UNAVAILABLE", "UNREACHABLE",
      via=LOOKUP)
def _(s):
    def fail(req, ctx):
        ctx.set_trailing_metadata([("lienthong-reason", "NO_SUCH_REASON")])
        ctx.abort(grpc.StatusCode.PERMISSION_DENIED, SECRET)
    return answered(s, fail)


@case("internal text", "lookup refused by M for good, with 6 kB of text and escapes", "PERMISSION_DENIED",
      "WRONG_PARENT", via=LOOKUP)
def _(s):
    """A permanent refusal from the registry on the way is passed on as it is, but its words bounded."""
    def fail(req, ctx):
        ctx.set_trailing_metadata([("lienthong-reason", "WRONG_PARENT")])
        ctx.abort(grpc.StatusCode.PERMISSION_DENIED, "\x1b]0;pwned\x07\x1b[2J" + "M nói: " * 1000)
    o = answered(s, fail)
    assert len(o.detail) <= 400 and o.detail.isprintable(), o.detail
    return o


# ---- listings: M answers for its subtree --------------------------------------------------------------

LISTING = "Mailbox.Directory (recursive) at D, M lists its subtree"
REGISTERED = {C1, C2, M, M2}


def listed(s, entries: list[rpb.DirectoryEntry], *, at: str = D, parent: str = "", recursive: bool = True) -> set:
    """What `at`'s local API lists when M answers its Children call with `entries`."""
    w = s.w
    w.fake.on_children = lambda req, ctx: rpb.ChildrenResponse(entries=entries)
    try:
        return {a.code for a in w.api(at).directory(parent=parent, recursive=recursive)}
    finally:
        w.fake.reset()


def listing(s, entries, expected: set, **kw) -> Observed:
    try:
        codes = listed(s, entries, **kw)
    except grpc.RpcError as e:
        return refused(e)
    assert codes == expected, codes
    return Observed("OK", "(listed)" if codes - REGISTERED else "(dropped)")


def public_record(s, code: str, at: str = P) -> rpb.SignedRecord:
    """An agency's own signed record, as any lookup returns it."""
    return s.w.registry(M, at).Lookup(rpb.LookupRequest(code=code), timeout=TIMEOUT).entry.record


@case("poisoned answers", "subtree listing with a record that does not parse", "OK", "(dropped)", via=LISTING)
def _(s):
    return listing(s, [rpb.DirectoryEntry(record=rpb.SignedRecord(record=b"\x0a\xff\xff"))], REGISTERED)


@case("poisoned answers", "subtree listing with an agency below M made up by M", "OK", "(dropped)", via=LISTING)
def _(s):
    return listing(s, [entry(hand_made(s.w.signer(M), "002.23.35.H53")).entry], REGISTERED)


@case("poisoned answers", "subtree listing with another district's genuine record", "OK", "(dropped)",
      via=LISTING)
def _(s):
    return listing(s, [entry(public_record(s, D2)).entry], REGISTERED)


@case("poisoned answers", "subtree listing with its own agency's genuine record (accepted)", "OK", "(listed)",
      via=LISTING)
def _(s):
    g = records_make(s, G)
    return listing(s, [entry(g).entry], REGISTERED | {G})


@case("poisoned answers", "M's children listed to a commune through D, one made up", "OK", "(dropped)",
      via="Mailbox.Directory (parent M) at C1, through D")
def _(s):
    return listing(s, [entry(hand_made(s.w.signer(M), "002.23.35.H53")).entry], set(), at=C1, parent=M,
                   recursive=False)


def records_make(s, code: str) -> rpb.SignedRecord:
    return records.make(s.w.signer(code), name=f"agency {code}", level=4, parent=M, endpoint="127.0.0.1:9",
                        now_ms=1)


# ---- poisoned negative answers, rate limits --------------------------------------------------------

def found_by(s, child: str, code: str) -> bool:
    return s.w.api(child).lookup(code).code == code


@case("poisoned answers", "a non-child's question cannot poison the answer for senders below", "NOT_FOUND",
      "UNKNOWN_RECIPIENT", via="Registry.Lookup, X → D (from_below=true), then C1 asks")
def _(s):
    o = call(s.w.registry(X).Lookup, rpb.LookupRequest(code=D2, from_below=True))
    assert found_by(s, C1, D2)  # D's own child still gets the answer through D's parent
    return o


@case("poisoned answers", "a question from above cannot poison the answer for senders below", "NOT_FOUND",
      "UNKNOWN_RECIPIENT", via="Registry.Lookup, M → D (from_below=false), then C2 asks")
def _(s):
    o = call(s.w.registry(M).Lookup, rpb.LookupRequest(code=P, from_below=False))
    assert found_by(s, C2, P)
    return o


@case("limits", "lookup of something that is no agency code", "INVALID_ARGUMENT", "INVALID_REQUEST",
      via="Registry.Lookup, X → D")
def _(s):
    return call(s.w.registry(X).Lookup, rpb.LookupRequest(code="../../etc/passwd" + "x" * 4000))


@case("limits", "lookups faster than 20/s beyond a burst of 100", "RESOURCE_EXHAUSTED", "RATE_LIMITED",
      via="Registry.Lookup, R → D")
def _(s):
    stub = s.w.registry(R)
    seen = []
    for _ in range(300):  # one after another (two at once at most: limits.registry_calls_per_peer)
        seen.append(call(stub.Lookup, rpb.LookupRequest(code=D)))
    answered = sum(o.status == "OK" for o in seen)
    assert 100 <= answered < 300, answered  # the burst is served, the flood is not
    return next((o for o in seen if o.reason == "RATE_LIMITED"), next(o for o in seen if o.status != "OK"))


# ---- M as D's next hop: receipts and refusals ----------------------------------------------------------

HOP = "Exchange.DeliverBatch, D → M (M's answer)"


def sent_entry(s, message_id: str):
    [e] = [e for e in s.w.api(D).sent_all() if e.message_id == message_id]
    return e


def d_sends_to_m(s, answer, attempts: int = 2) -> tuple[str, object]:
    """D's agency sends M a document; M answers every hand-over with `answer(raws)`. Returns the
    message id and D's sent entry once M was handed it `attempts` times."""
    w = s.w
    w.fake.on_deliver = answer
    [sent] = w.api(D).send(pb.Document(subject="gửi M"), [M]).envelopes
    s.begin()  # D's own send is the setting, not the attack
    try:
        w.fake.wait_deliveries(sent.message_id, attempts)
        entry = poll("D recorded M's answer", lambda: (e := sent_entry(s, sent.message_id)).attempts >= attempts and e)
    finally:
        w.fake.reset()
    return sent.message_id, entry


def settled(s, message_id: str) -> None:
    """M answers properly again: D's retry delivers, so nothing is left in flight for the next case."""
    poll("D's retry delivered", lambda: sent_entry(s, message_id).state == "delivered", timeout=15)


def rejection(reason: str, message: str = "nope"):
    return lambda raws: xpb.DeliverBatchResponse(
        outcomes=[xpb.Outcome(rejection=xpb.Rejection(reason=reason, message=message)) for _ in raws])


def kept(s, answer, expect_in_reason: str, label: str = "") -> Observed:
    mid, e = d_sends_to_m(s, answer)
    assert e.state == "pending" and expect_in_reason in e.reason, (e.state, e.reason)
    settled(s, mid)
    return Observed("OK", (label or expect_in_reason) + " (kept, retried)")


@case("flat trust", "M refuses with a reason outside the catalogue", "OK", "NOT_IN_THE_CATALOGUE (kept, retried)",
      via=HOP, prepares=True)
def _(s):
    return kept(s, rejection("NOT_IN_THE_CATALOGUE"), "NOT_IN_THE_CATALOGUE")


@case("flat trust", "M refuses with a transient catalogue reason", "OK", "UNREACHABLE (kept, retried)", via=HOP,
      prepares=True)
def _(s):
    return kept(s, rejection("UNREACHABLE"), "UNREACHABLE")


def receipts_edited(s, edit):
    def answer(raws):
        resp = s.w.fake.receipts(raws)
        for o in resp.outcomes:
            edit(o.receipt)
        return resp
    return answer


@case("internal text", "M's receipt with a certificate that does not parse", "OK", "UNTRUSTED_CERT (kept, retried)",
      via=HOP, prepares=True)
def _(s):
    return kept(s, receipts_edited(s, lambda r: setattr(r, "receiver_cert", b"\x30\x03\x02\x01\x00")),
                "UNTRUSTED_CERT")


@case("internal text", "M's receipt with a certificate of an unknown X.509 version", "OK",
      "UNTRUSTED_CERT (kept, retried)", via=HOP, prepares=True)
def _(s):
    return kept(s, receipts_edited(s, lambda r: setattr(r, "receiver_cert", unknown_version(r.receiver_cert))),
                "UNTRUSTED_CERT")


@case("flat trust", "M's receipt for other bytes", "OK", "BAD_RECEIPT (kept, retried)", via=HOP, prepares=True)
def _(s):
    return kept(s, receipts_edited(s, lambda r: setattr(r, "envelope_sha256", b"\0" * 32)), "BAD_RECEIPT")


@case("flat trust", "M's receipt signed by another agency", "OK", "BAD_RECEIPT (kept, retried)", via=HOP,
      prepares=True)
def _(s):
    x = s.w.signer(X)

    def answer(raws):
        items = [(message_id_of(r), envelope.sha256(r)) for r in raws]
        return xpb.DeliverBatchResponse(outcomes=[xpb.Outcome(receipt=r) for r in receipts.issue(x, items)])
    return kept(s, answer, "BAD_RECEIPT")


@case("flat trust", "M answers fewer outcomes than envelopes", "OK", "answer not taken (kept, retried)", via=HOP,
      prepares=True)
def _(s):
    return kept(s, lambda raws: xpb.DeliverBatchResponse(), "0 outcomes for 1 envelopes", "answer not taken")


@case("internal text", "M refuses for good with 100 kB of text and escapes", "OK", "MALFORMED (rejected, text bounded)",
      via=HOP, prepares=True)
def _(s):
    mid, e = d_sends_to_m(s, rejection("MALFORMED", "\x1b[2J" + SECRET * 2000), attempts=1)
    e = poll("D gave up", lambda: (x := sent_entry(s, mid)).state == "rejected" and x)
    assert e.reason.startswith("MALFORMED: ") and len(e.reason) <= 320 and e.reason.isprintable(), e.reason
    return Observed("OK", "MALFORMED (rejected, text bounded)").allowing(mid)  # and D's notice about it


@case("poisoned answers", "subtree listing with G's genuine record and a succession list retiring it whose "
      "signature fails (G listed, not as retired)", "OK", "(listed, no successor)", via=LISTING)
def _(s):
    genuine = succ.sign(s.w.signer(M), 1, [rpb.Succession(old_codes=[G], successor=M, reason="sáp nhập")],
                        int(time.time() * 1000))
    forged = rpb.SuccessionList.FromString(genuine.body)
    forged.successions[0].successor = "002.23.35.H53"  # edited after M signed it
    bad = rpb.SignedSuccessionList(body=forged.SerializeToString(), signature=genuine.signature,
                                   cert_der=genuine.cert_der)
    w = s.w
    w.fake.on_children = lambda req, ctx: rpb.ChildrenResponse(entries=[
        rpb.DirectoryEntry(record=records_make(s, G), reachable=True, succession=bad)])
    try:
        shown = {a.code: a for a in w.api(D).directory(recursive=True)}
    finally:
        w.fake.reset()
    assert G in shown and (shown[G].successor, shown[G].retired_by) == ("", ""), shown.get(G)
    return Observed("OK", "(listed, no successor)")
