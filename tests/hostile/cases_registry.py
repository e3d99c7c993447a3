"""Routing hijack and registration forgery: a registered child vouching for what it may not.

A heartbeat may vouch only for odd codes in the child's own subtree; a registration must be the
agency's own signed record, under the right parent, with the one certificate registered for its
code. Every refusal leaves D's registry, odd codes and routes as they were.
"""
from __future__ import annotations

import time

from node.pb import exchange_pb2 as xpb
from node.pb import mailbox_pb2 as mpb
from node.pb import registry_pb2 as rpb

from .core import Observed, call, case, refused
from .world import (C1, C2, CONFIGURED, D, D2, G, HELD, M, M2, P, X, expired_identity, foreign_identity,
                    poll, relayed, seal, second_identity, unknown_version)

HEARTBEAT = "Registry.Heartbeat, M → D"
REGISTER = "Registry.Register → D"


def claim(s, odd: dict[str, str], who: str = M) -> Observed:
    try:
        s.w.heartbeat(who, odd=odd)
    except Exception as e:  # grpc.RpcError
        return refused(e)
    return Observed("OK")


for label, odd in (
        ("a QCVN commune of another district", {"000.21.38.H53": M}),
        ("a sibling's QCVN code", {C1: M}),
        ("the parent's own code", {D: M}),
        ("the grandparent's code", {P: M}),
        ("an odd code under another child", {"vxp.evil.01": C1}),
        ("an odd code another child already holds", {HELD: M}),
        ("an odd code the victim's YAML places elsewhere", {CONFIGURED: M}),
        ("something that is no agency code", {"../../x": M}),
        ("odd codes that vouch for each other in a loop", {"vxp.a.01": "vxp.b.01", "vxp.b.01": "vxp.a.01"}),
        ("the national root's code", {"VN": M}),
):
    @case("hijack", f"heartbeat claiming {label}", "PERMISSION_DENIED", "WRONG_PARENT", via=HEARTBEAT)
    def _(s, odd=odd):
        return claim(s, odd)


@case("limits", "heartbeat claiming an odd code of 100 kB", "PERMISSION_DENIED", "WRONG_PARENT", via=HEARTBEAT)
def _(s):
    return claim(s, {"vxp." + "x" * 100_000: M})


@case("hijack", "heartbeat for another child's code", "PERMISSION_DENIED", "SENDER_MISMATCH", via=HEARTBEAT)
def _(s):
    try:
        s.w.heartbeat(M, code=C1)
    except Exception as e:
        return refused(e)
    return Observed("OK")


@case("hijack", "heartbeat from a trusted node nobody registered", "NOT_FOUND", "UNKNOWN_RECIPIENT",
      via="Registry.Heartbeat, X → D")
def _(s):
    try:
        s.w.heartbeat(X, rows=[])
    except Exception as e:
        return refused(e)
    return Observed("OK")


@case("hijack", "withdrawn odd-code claim stops routing at once", "NOT_FOUND", "UNKNOWN_RECIPIENT",
      via="Mailbox.Lookup at D after M's withdrawal")
def _(s):
    w, odd = s.w, "vxp.gone.01"
    api = w.api(D)
    asked = len(w.fake.lookups)
    w.heartbeat(M, odd={odd: M})  # a claim in M's own subtree: accepted, D routes the code to M
    first = call(api.stub.Lookup, mpb.AgencyLookupRequest(code=odd), metadata=api.metadata)
    assert first.reason == "UNREACHABLE" and w.fake.lookups[asked:] == [odd], first  # D asked M (fake M is silent)
    w.heartbeat(M)  # withdrawn
    after = call(api.stub.Lookup, mpb.AgencyLookupRequest(code=odd), metadata=api.metadata)
    assert w.fake.lookups[asked:] == [odd]  # not asked again: D no longer routes the code to M
    # D reported the claim up while it stood: wait until P has dropped it too (one heartbeat of D's)
    poll("P forgets the withdrawn code", lambda: not w.rows(P, f"SELECT 1 FROM odd_codes WHERE code = '{odd}'"))
    return after


# ---- registration ------------------------------------------------------------------------------

def register(s, who, record: rpb.SignedRecord) -> Observed:
    return call(s.w.registry(who).Register, record)


def hand_made(signer, code: str, *, cert_der: bytes | None = None, parent: str = D, endpoint: str = "127.0.0.1:9",
              sign=None) -> rpb.SignedRecord:
    record = rpb.AgencyRecord(code=code, name="giả", level=3, parent=parent, endpoint=endpoint,
                              cert_der=signer.cert_der if cert_der is None else cert_der,
                              issued_ms=int(time.time() * 1000)).SerializeToString()
    return rpb.SignedRecord(record=record, signature=(sign or signer.sign)(record))


@case("hijack", "registration of a code the code rule places elsewhere", "PERMISSION_DENIED", "WRONG_PARENT",
      via=REGISTER)
def _(s):
    return register(s, X, s.w.record(X))


@case("hijack", "registration naming another parent", "PERMISSION_DENIED", "WRONG_PARENT", via=REGISTER)
def _(s):
    return register(s, M, s.w.record(M, parent=D2))


@case("hijack", "registration of a sibling's code on M's certificate", "PERMISSION_DENIED", "SENDER_MISMATCH",
      via=REGISTER)
def _(s):
    return register(s, M, hand_made(s.w.signer(M), C1))


@case("hijack", "second certificate for a registered code", "PERMISSION_DENIED", "CERT_IN_USE", via=REGISTER)
def _(s):
    bis = second_identity(s.w, C1)
    return register(s, bis, s.w.record(bis))


@case("hijack", "second certificate with a renewal signed by its own key", "PERMISSION_DENIED", "CERT_IN_USE",
      via=REGISTER)
def _(s):
    bis = second_identity(s.w, C2)
    return register(s, bis, s.w.record(bis, previous=bis.signer))


@case("hijack", "renewal signed by the registered key (accepted)", "OK", "", via=REGISTER)
def _(s):
    """The one way to a second certificate: the key registered so far signs the new record too."""
    bis = second_identity(s.w, M2)
    o = register(s, bis, s.w.record(bis, endpoint="127.0.0.1:9", previous=s.w.signer(M2)))
    s.w.ids[M2] = bis  # M2's registered certificate from now on (its old one still connects)
    [(cert,)] = s.w.rows(D, f"SELECT hex(record) FROM registry WHERE code = '{M2}'")
    assert bis.cert_der.hex().upper() in cert
    return o.allowing(M2)


@case("hijack", "agency record that does not parse", "INVALID_ARGUMENT", "MALFORMED", via=REGISTER)
def _(s):
    return register(s, M, rpb.SignedRecord(record=b"\x0a\xff\xff", signature=s.w.signer(M).sign(b"\x0a\xff\xff")))


@case("hijack", "agency record without an endpoint", "INVALID_ARGUMENT", "MISSING_FIELD", via=REGISTER)
def _(s):
    return register(s, M, s.w.record(M, endpoint=""))


@case("hijack", "agency record signed over other bytes", "PERMISSION_DENIED", "BAD_SIGNATURE", via=REGISTER)
def _(s):
    m = s.w.signer(M)
    return register(s, M, hand_made(m, M, sign=lambda raw: m.sign(raw + b"!")))


@case("hijack", "agency record with a certificate that does not parse", "PERMISSION_DENIED", "UNTRUSTED_CERT",
      via=REGISTER)
def _(s):
    return register(s, M, hand_made(s.w.signer(M), M, cert_der=b"\x30\x03\x02\x01\x00"))


@case("internal text", "agency record whose certificate has an unknown X.509 version", "PERMISSION_DENIED",
      "UNTRUSTED_CERT", via=REGISTER)
def _(s):
    m = s.w.signer(M)
    return register(s, M, hand_made(m, M, cert_der=unknown_version(m.cert_der)))


@case("hijack", "agency record with a certificate from a foreign CA", "PERMISSION_DENIED", "UNTRUSTED_CERT",
      via=REGISTER)
def _(s):
    return register(s, M, s.w.record(foreign_identity(s.w, M)))


@case("hijack", "agency record with an expired certificate", "PERMISSION_DENIED", "CERT_EXPIRED", via=REGISTER)
def _(s):
    return register(s, M, s.w.record(expired_identity(s.w, M)))


@case("hijack", "client certificate from a foreign CA", "UNAVAILABLE", "", via="TLS handshake → D")
def _(s):
    return register(s, foreign_identity(s.w, C2), s.w.record(M))


# ---- the certificate a child registered (node.registry.pins) -------------------------------------

PINNED = "Exchange.Deliver → D, C1 registered with its own certificate"


def handed(s, who, raw: bytes) -> Observed:
    return call(s.w.exchange(who).Deliver, xpb.DeliverRequest(envelope=raw))


@case("hijack", "second certificate for a registered code hands over as that agency", "PERMISSION_DENIED",
      "CERT_NOT_REGISTERED", via=PINNED)
def _(s):
    """The CA issued C1 a second certificate (by mistake, or to whoever stole its request): valid, and
    C1's code, but not the one C1 registered. It once connected to D as C1 and had its document delivered."""
    bis = second_identity(s.w, C1)
    return handed(s, bis, seal(bis.signer, D)[1])


@case("hijack", "document signed by a second certificate, handed over on the registered one", "PERMISSION_DENIED",
      "CERT_NOT_REGISTERED", via=PINNED)
def _(s):
    bis = second_identity(s.w, C1)
    return handed(s, C1, seal(bis.signer, D)[1])


@case("hijack", "relay mark made with a second certificate of the registered relay", "PERMISSION_DENIED",
      "CERT_NOT_REGISTERED", via="Exchange.Deliver, M → D, G's mail marked by M's second certificate")
def _(s):
    bis = second_identity(s.w, M)
    return handed(s, M, relayed(seal(s.w.signer(G), C1)[1], bis.signer))
