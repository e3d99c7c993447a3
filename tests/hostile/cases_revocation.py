"""Forged, stale and oversized revocation lists: CRLs travel down the tree (Registry.PushCrl), so only a
node's parent may push one, and even the parent can only pass on what the CA signed, newer than what the
node holds. Every refusal leaves the victim's kept CRL (data/crl.der) and everything else as it was.
The last cases use the honest district D's own connection: what a compromised relay could try."""
from __future__ import annotations

from node.identity import certs, revocation
from node.pb import registry_pb2 as rpb

from .core import call, case
from .world import C1, D, M, X

PUSH = "Registry.PushCrl"


def crl(s) -> bytes:
    """A genuine list from the cluster's CA, with a number higher than any before it."""
    return revocation.make_crl(s.w.ca_dir).read_bytes()


@case("revocation", "a child pushing a CRL up to its parent", "PERMISSION_DENIED", "WRONG_PARENT",
      via=f"{PUSH}, M → D")
def _(s):
    return call(s.w.registry(M).PushCrl, rpb.CrlPush(crl_der=crl(s)))


@case("revocation", "a trusted node that is nobody's parent here pushing a CRL", "PERMISSION_DENIED",
      "WRONG_PARENT", via=f"{PUSH}, X → C1")
def _(s):
    return call(s.w.registry(X, at=C1).PushCrl, rpb.CrlPush(crl_der=crl(s)))


@case("revocation", "a parent passing down a CRL another CA signed", "PERMISSION_DENIED", "UNTRUSTED_CERT",
      via=f"{PUSH}, D → C1")
def _(s):
    rogue = s.w.root / "rogue-crl-ca"
    if not (rogue / "ca.pem").exists():
        certs.init_ca(rogue, "lienthong test CA")  # the same name as the real CA: only the signature differs
    for _ in range(3):
        forged = revocation.make_crl(rogue).read_bytes()
    return call(s.w.registry(D, at=C1).PushCrl, rpb.CrlPush(crl_der=forged))


@case("revocation", "a parent passing down an older CRL than the one held", "FAILED_PRECONDITION",
      "CRL_OUTDATED", via=f"{PUSH}, D → C1", prepares=True)
def _(s):
    older, newer = crl(s), crl(s)
    push = s.w.registry(D, at=C1).PushCrl
    assert push(rpb.CrlPush(crl_der=newer), timeout=10).crl_number >= 2  # C1 holds the newer list now
    s.begin()
    return call(push, rpb.CrlPush(crl_der=older))


@case("limits", "a parent passing down a CRL of 1 MiB and one byte", "RESOURCE_EXHAUSTED", "TOO_LARGE",
      via=f"{PUSH}, D → C1")
def _(s):
    return call(s.w.registry(D, at=C1).PushCrl, rpb.CrlPush(crl_der=b"\x30" * (revocation.MAX_CRL_BYTES + 1)))


@case("revocation", "a parent passing down bytes that are no CRL", "INVALID_ARGUMENT", "MALFORMED",
      via=f"{PUSH}, D → C1")
def _(s):
    return call(s.w.registry(D, at=C1).PushCrl, rpb.CrlPush(crl_der=b"\x30\x82\x01\x00" + b"\x00" * 300))
