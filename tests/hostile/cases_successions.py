"""Forged, incompetent, oversized, cyclic and replayed succession lists (docs/restructuring.md).

Successions travel down the tree as CRLs do (Registry.PushSuccessions; the answers to registrations and
heartbeats), each list signed by the authority that issued it, so only a node's parent may push one, and even
the parent can pass on only what the competent authority signed: the parent of the codes it retires, for a
successor below it. Every refusal leaves the victim's lists (succession_lists) and everything else as it was.
Most cases use the honest district D's own connection to its commune C1: what a compromised relay could try."""
from __future__ import annotations

import time

from node.registry import successions as succ
from node.pb import admin_pb2 as apb
from node.pb import envelope_pb2 as pb
from node.pb import registry_pb2 as rpb

from .cases_envelopes import deliver
from .core import Observed, call, case
from .world import C1, C2, D, D2, G, M, P, R, X, document, issue, relayed, seal, status

PUSH = "Registry.PushSuccessions"
REASON = "sáp nhập"


def signed(s, issuer: str, pairs: list[tuple[list[str], str]], number: int | None = None) -> rpb.SignedSuccessionList:
    """A list `issuer` really signed (its own key and certificate): old codes -> successor, each."""
    return succ.sign(s.w.signer(issuer), number or int(time.time() * 1000),
                     [rpb.Succession(old_codes=old, successor=to, effective_ms=0, reason=REASON) for old, to in pairs],
                     int(time.time() * 1000))


def push(s, *lists: rpb.SignedSuccessionList, who: str = D, at: str = C1):
    return call(s.w.registry(who, at=at).PushSuccessions, rpb.SuccessionPush(lists=list(lists)))


@case("succession", "a parent passing down a succession list whose signature does not verify",
      "PERMISSION_DENIED", "SUCCESSION_BAD_SIGNATURE", via=f"{PUSH}, D → C1")
def _(s):
    genuine = signed(s, D, [([C1], C2)])
    forged = rpb.SuccessionList.FromString(genuine.body)
    forged.successions[0].successor = M  # C1's mail to the insider, under D's signature of something else
    return push(s, rpb.SignedSuccessionList(body=forged.SerializeToString(), signature=genuine.signature,
                                            cert_der=genuine.cert_der))


@case("succession", "a succession list signed by one agency and naming another as its issuer",
      "PERMISSION_DENIED", "SUCCESSION_BAD_SIGNATURE", via=f"{PUSH}, D → C1")
def _(s):
    body = rpb.SuccessionList(issuer=D, number=int(time.time() * 1000), successions=[
        rpb.Succession(old_codes=[C1], successor=M, reason=REASON)]).SerializeToString()
    signer = s.w.signer(M)  # the insider signs with its own key and certificate, and says D issued it
    return push(s, rpb.SignedSuccessionList(body=body, signature=signer.sign(body), cert_der=signer.cert_der))


@case("succession", "a commune issuing a succession for its province", "PERMISSION_DENIED",
      "SUCCESSION_NOT_COMPETENT", via=f"{PUSH}, D → C1")
def _(s):
    return push(s, signed(s, M, [([P], M)]))


@case("succession", "a sibling issuing a succession for another's communes", "PERMISSION_DENIED",
      "SUCCESSION_NOT_COMPETENT", via=f"{PUSH}, D → C1")
def _(s):
    return push(s, signed(s, D2, [([C1, C2], D2)]))  # D2 is D's sibling: C1 and C2 are not its to retire


@case("succession", "a parent passing down another branch's genuine succession list", "PERMISSION_DENIED",
      "SUCCESSION_NOT_COMPETENT", via=f"{PUSH}, D → C1")
def _(s):
    return push(s, signed(s, D2, [([X], R)]))  # D2 may retire its own communes, but its list is not C1's to hold


@case("succession", "a parent retiring its communes into a successor outside its subtree", "PERMISSION_DENIED",
      "SUCCESSION_NOT_COMPETENT", via=f"{PUSH}, D → C1")
def _(s):
    return push(s, signed(s, D, [([C1], D2)]))


@case("succession", "a child pushing a succession list up to its parent", "PERMISSION_DENIED",
      "SUCCESSION_NOT_COMPETENT", via=f"{PUSH}, M → D")
def _(s):
    return push(s, signed(s, M, []), who=M, at=D)


@case("succession", "a succession list making a commune succeed itself through another", "INVALID_ARGUMENT",
      "SUCCESSION_CYCLE", via=f"{PUSH}, D → C1")
def _(s):
    return push(s, signed(s, D, [([C1], C2), ([C2], C1)]))


@case("succession", "a succession naming a code as its own successor", "INVALID_ARGUMENT", "SUCCESSION_CYCLE",
      via=f"{PUSH}, D → C1")
def _(s):
    return push(s, signed(s, D, [([C1, C2], C2)]))


@case("succession", "a parent passing down an older succession list after a newer one", "FAILED_PRECONDITION",
      "SUCCESSION_STALE", via=f"{PUSH}, D → C1", prepares=True)
def _(s):
    newer = int(time.time() * 1000)
    older, latest = signed(s, D, [], newer - 1), signed(s, D, [], newer)  # empty: C1's routing stays as it is
    assert push(s, latest).status == "OK"  # C1 holds D's list `newer` now
    s.begin()
    return push(s, older)


@case("limits", "a push of 17 succession lists", "INVALID_ARGUMENT", "SUCCESSION_TOO_LARGE", via=f"{PUSH}, D → C1")
def _(s):
    one = signed(s, D, [])
    return push(s, *[one] * (succ.MAX_LISTS + 1))


@case("limits", "a succession list of 501 successions", "INVALID_ARGUMENT", "SUCCESSION_TOO_LARGE",
      via=f"{PUSH}, D → C1")
def _(s):
    return push(s, signed(s, D, [([C1], C2)] * (succ.MAX_SUCCESSIONS + 1)))


@case("limits", "a succession retiring 65 codes at once", "INVALID_ARGUMENT", "SUCCESSION_TOO_LARGE",
      via=f"{PUSH}, D → C1")
def _(s):
    return push(s, signed(s, D, [([f"000.{n:02d}.35.H53" for n in range(1, succ.MAX_OLD_CODES + 2)], C2)]))


@case("limits", "a heartbeat claiming succession lists from 17 issuers", "INVALID_ARGUMENT", "SUCCESSION_TOO_LARGE",
      via="Registry.Heartbeat, M → D")
def _(s):
    numbers = {f"000.00.{n:02d}.H53": 1 for n in range(1, succ.MAX_LISTS + 2)}
    return call(s.w.registry(M).Heartbeat, rpb.HeartbeatRequest(code=M, time_ms=int(time.time() * 1000),
                                                                succession_numbers=numbers))


@case("succession", "an operator issuing a succession for agencies that are not directly below the node",
      "PERMISSION_DENIED", "SUCCESSION_NOT_COMPETENT", via="Admin.IssueSuccession at D")
def _(s):
    admin = s.w.api(D).admin
    return call(admin.stub.IssueSuccession, apb.IssueSuccessionRequest(old_codes=[D2], successor=C1, reason=REASON),
                metadata=admin._client.metadata)


# ---- a successor answering for a retired agency (docs/restructuring.md, "History follows") ------------------
# D took a document from an agency below M (a fresh code per case, so no answer D cached before is reused),
# relayed by M; then someone claims to answer for that agency, retired, and revokes or takes the document back.
# D asks the tree (M answers lookups for the codes below it) whether that agency is retired and into whom.
# Each refusal leaves the document as it was (doc_progress) and records nothing.

HEIRS = "Exchange.Deliver, M → D, about a document an agency below M sent D"
_heirs = iter(range(5, 100))


def retired_sender(s, lists) -> tuple[str, str]:
    """A fresh agency below M, its document taken by D (relayed by M); M answers lookups for it with
    `lists(code)` (a SignedSuccessionList, or None: UNAVAILABLE) from now on. (code, the document's message id)"""
    w = s.w
    code = f"{next(_heirs):03d}.23.35.H53"
    heir = issue(w.ca_dir, w.root / "heirs" / code, code)
    header, raw = seal(heir.signer, D, document("gửi trước khi sáp nhập"))
    assert deliver(s, relayed(raw, w.signer(M))).status == "OK"
    answer = lists(code)
    w.fake.on_lookup = (lambda req, ctx: rpb.LookupResponse(entry=rpb.DirectoryEntry(succession=answer))) \
        if answer is not None else w.fake.unavailable
    return code, header.message_id


def answering_for(s, lists, who: str, change: pb.Payload, relay: bool) -> Observed:
    _, ref = retired_sender(s, lists)
    s.begin()
    try:
        raw = seal(s.w.signer(who), D, change, ref_message_id=ref)[1]
        return deliver(s, relayed(raw, s.w.signer(M)) if relay else raw)
    finally:
        s.w.fake.reset()


def retires(s, issuer: str, old: str, to: str = M) -> rpb.SignedSuccessionList:
    return signed(s, issuer, [([old], to)])


REVOKE = pb.Payload(document=pb.Document(subject="thu hồi", business=pb.Business(business_doc_type=1)))


@case("succession", "a revocation of a retired agency's document by an agency that is not its successor",
      "PERMISSION_DENIED", "NOT_A_SUCCESSOR", via=HEIRS, prepares=True)
def _(s):
    return answering_for(s, lambda code: retires(s, M, code), G, REVOKE, relay=True)  # M succeeds it, not G


@case("succession", "a take-back (13) of a retired agency's document by a successor named by a level that may not "
      "retire it", "PERMISSION_DENIED", "SUCCESSION_NOT_COMPETENT", via=HEIRS, prepares=True)
def _(s):
    return answering_for(s, lambda code: retires(s, R, code), M, status("13"), relay=False)  # R is not its parent


@case("succession", "a revocation of a retired agency's document, the lookup answered with a succession that "
      "retires another code", "PERMISSION_DENIED", "SUCCESSION_NOT_COVERING", via=HEIRS, prepares=True)
def _(s):
    return answering_for(s, lambda code: retires(s, M, G), M, REVOKE, relay=False)


@case("succession", "a revocation of a retired agency's document whose succession is answered by a forged list",
      "PERMISSION_DENIED", "SUCCESSION_BAD_SIGNATURE", via=HEIRS, prepares=True)
def _(s):
    def forged_list(code: str) -> rpb.SignedSuccessionList:
        genuine = retires(s, M, G)
        body = rpb.SuccessionList.FromString(genuine.body)
        body.successions[0].old_codes[:] = [code]  # M's signature over another list
        return rpb.SignedSuccessionList(body=body.SerializeToString(), signature=genuine.signature,
                                        cert_der=genuine.cert_der)
    return answering_for(s, forged_list, M, REVOKE, relay=False)


@case("succession", "an update of another agency's document while the tree cannot say whether it is retired",
      "UNAVAILABLE", "SUCCESSION_UNCERTAIN", via=HEIRS, prepares=True)
def _(s):
    update = pb.Payload(document=pb.Document(subject="đính chính", business=pb.Business(business_doc_type=2)))
    return answering_for(s, lambda code: None, M, update, relay=False)
