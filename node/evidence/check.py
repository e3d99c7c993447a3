"""`lienthong verify-evidence FILE --ca CA_CERT`: check a bundle offline and say what it proves.

Only the CA's certificate is trusted. Every certificate must chain to it and have been
valid, and not revoked by a CRL in the bundle, at the time it signed what it signed (not
today: evidence is read years later, after certificates expired). The bundle's own
signature covers every byte of its body, the signer's certificate included (one outside it
could be re-encoded, a byte its parser ignores changed, and pass), and the bundle is
re-encoded to check its framing, so one changed byte anywhere is refused, naming what failed. What is proved comes from
signed headers, payload digests, relay marks and receipts; a payload is read only to show a
status's code when it is not sealed, and never counts as proof.

The bundle's maker must be the message's sender or recipient, or hold it for one of them, a retired
predecessor whose mailbox it took over (lienthong takeover): then the bundle names that predecessor and
carries the signed succession lists retiring it into the maker, each checked as a node checks one (its
issuer's certified key signed it, the issuer is competent by the code rule), in effect when the bundle was
made. A missing or forged link refuses the bundle.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509
from google.protobuf.message import DecodeError

from .. import envelope as env_mod
from .. import receipts as receipts_mod
from ..clock import SYSTEM, Clock
from ..errors import Reason, Rejected
from ..identity import revocation, sealing, signed
from ..identity.trust import Identity, TrustStore
from ..pb import envelope_pb2 as pb
from ..pb import evidence_pb2 as epb
from ..pb import registry_pb2 as rpb
from ..registry import successions
from ..terminal import shown
from .make import VERSION

MAX_BUNDLE = 1 << 30
KIND_NAMES = {pb.DOCUMENT: "document", pb.STATUS: "status", pb.NOTICE: "notice"}


class Refused(Exception):
    """The bundle proves nothing: the message names what failed."""


class _ChainOnly(TrustStore):
    """Chains to the CA, whatever the date: validity and revocation are checked at each signature's own time."""

    def identify(self, cert_der: bytes, check_validity: bool = True) -> Identity:
        return super().identify(cert_der, check_validity=False)


def when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


@dataclass
class Claim:
    """A signature made by `ident` at `time_ms` (what the bundle says it did then)."""
    ident: Identity
    time_ms: int
    what: str


@dataclass
class Custody:
    receiver: str
    time_ms: int


@dataclass
class Message:
    message_id: str
    kind: str
    sender: str
    sender_subject: str
    recipient: str
    created_ms: int
    digest: bytes
    size: int
    path: list[tuple[str, int]]
    custody: list[Custody]
    status_code: str = ""       # statuses with a readable payload (plain, or its content key disclosed)
    description: str = ""
    subject: str = ""           # the document's, when its content key is disclosed (evidence --disclose)


@dataclass
class Proof:
    made_by: str
    made_ms: int
    ca: str
    document: Message
    statuses: list[Message]
    crls: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        d = self.document
        out = [f"evidence for {d.kind} {d.message_id}: every signature checks against the CA {self.ca}",
               f"bundle made by {self.made_by} at {when(self.made_ms)}",
               f"sent:     by {d.sender} ({shown(d.sender_subject)}) at {when(d.created_ms)} to {d.recipient}; "
               f"payload {d.size} bytes, SHA-256 {d.digest.hex()} (signed in the header)"]
        if d.subject:
            out.append(f"content:  subject \"{shown(d.subject)}\" (content key disclosed; opens the signed ciphertext)")
        out.append("path:     " + " -> ".join(f"{c} at {when(t)}" for c, t in d.path) + " (signed marks)")
        for c in d.custody:
            out.append(f"custody:  taken over by {c.receiver} at {when(c.time_ms)} (signed receipt, Merkle proof)")
        if not d.custody:
            out.append("custody:  no receipt in the bundle")
        for s in self.statuses:
            code = f"status {shown(s.status_code)}" if s.status_code else "a status (payload sealed: code not shown)"
            out.append(f"status:   {code} by {s.sender} at {when(s.created_ms)} (message {s.message_id})"
                       + (f": {shown(s.description)}" if s.description else ""))
            out.append("          path " + " -> ".join(f"{c} at {when(t)}" for c, t in s.path))
            for c in s.custody:
                out.append(f"          taken over by {c.receiver} at {when(c.time_ms)} (signed receipt)")
        if self.statuses:
            first = min(self.statuses, key=lambda s: s.created_ms)
            out.append(f"received: {d.recipient} held the {d.kind} by {when(first.created_ms)} "
                       f"(its signed status {shown(first.status_code)} about it)".replace("  ", " "))
        out += [f"crl:      {c}" for c in self.crls] or ["crl:      none in the bundle (revocation not checked)"]
        out += [f"note:     {n}" for n in self.notes]
        return "\n".join(out)


def check(data: bytes, ca_certs: list[x509.Certificate], clock: Clock = SYSTEM) -> Proof:
    if len(data) > MAX_BUNDLE:
        raise Refused(f"bundle is {len(data)} bytes, over {MAX_BUNDLE}")
    bundle = epb.EvidenceBundle()
    try:
        bundle.ParseFromString(data)
    except DecodeError:
        raise Refused("the bundle does not parse") from None
    if epb.EvidenceBundle(body=bundle.body, signature=bundle.signature).SerializeToString() != data:
        raise Refused("the bundle's framing is not what was written (bytes added, removed or changed)")
    body = epb.EvidenceBody()
    try:
        body.ParseFromString(bundle.body)  # read before its signature is checked only to find the signer's certificate
    except DecodeError:
        raise Refused("the bundle's body does not parse") from None
    trust = _ChainOnly(ca_certs, clock)
    claims: list[Claim] = []
    changed = "the bundle was changed after it was made"
    try:
        maker = signed.check(trust, body.made_by_cert, bundle.signature, bundle.body, signer=None,
                             wrong_signer=lambda i: Rejected(Reason.BAD_SIGNATURE),  # unused: any agency may make one
                             bad_signature=lambda: Rejected(Reason.BAD_SIGNATURE, changed))
    except Rejected as r:
        if r.reason is Reason.BAD_SIGNATURE:
            who = trust.identify(body.made_by_cert).code
            raise Refused(f"the bundle's signature by {who} does not verify: {changed}") from None
        raise Refused(f"the bundle's signer certificate: {r.public_text}") from None
    if body.version != VERSION:
        raise Refused(f"bundle version {body.version}, this program reads {VERSION}")
    if body.made_by != maker.code:
        raise Refused(f"the bundle says it was made by {body.made_by}, its signature is {maker.code}'s")
    claims.append(Claim(maker, body.made_ms, "the bundle's signature"))
    doc = _message(body.document, "document", trust, clock, claims)
    if doc.message_id != body.message_id:
        raise Refused(f"the bundle is about {body.message_id} but holds envelope {doc.message_id}")
    statuses = []
    for i, item in enumerate(body.statuses):
        s = _message(item, f"status[{i}]", trust, clock, claims)
        header = pb.Header.FromString(pb.Envelope.FromString(item.envelope).header)
        if header.kind != pb.STATUS or header.ref_message_id != doc.message_id:
            raise Refused(f"status[{i}] ({s.message_id}) is not a status about {doc.message_id}")
        if s.sender != doc.recipient:
            raise Refused(f"status[{i}] is signed by {s.sender}, not by the recipient {doc.recipient}")
        statuses.append(s)
    for i, der in enumerate(body.certificates):
        try:
            trust.identify(der)
        except Rejected as r:
            raise Refused(f"certificates[{i}]: {r.public_text}") from None
    proof = Proof(maker.code, body.made_ms, ca_certs[0].subject.rfc4514_string(), doc, statuses)
    held = _holder(body, doc, trust, claims)
    if held:
        proof.notes.append(held)
    _revocation(body.crls, ca_certs, claims, proof)
    for c in claims:
        if not c.ident.not_before_ms <= c.time_ms <= c.ident.not_after_ms:
            raise Refused(f"{c.what}: the certificate of {c.ident.code} was not valid at {when(c.time_ms)}")
    return proof


def _holder(body: epb.EvidenceBody, doc: Message, trust: TrustStore, claims: list[Claim]) -> str:
    """"" when the maker sent or received the message; else, what shows it holds it for a predecessor."""
    if body.made_by in (doc.sender, doc.recipient):
        return ""
    who = f"{doc.sender} -> {doc.recipient}"
    if not body.held_for or body.held_for not in (doc.sender, doc.recipient):
        raise Refused(f"the bundle is made by {body.made_by}, which neither sent nor received {doc.message_id} "
                      f"({who}), and names no predecessor of its it holds the message for")
    retired: dict[str, tuple[str, int, str]] = {}
    for i, data in enumerate(body.successions):
        try:
            signed_list = rpb.SignedSuccessionList.FromString(data)
            issuer = trust.identify(signed_list.cert_der)
            listed = successions.verify(signed_list, trust, successions.CODE_RULE)
        except DecodeError:
            raise Refused(f"successions[{i}] does not parse") from None
        except Rejected as r:
            raise Refused(f"successions[{i}]: {r.public_text}") from None
        claims.append(Claim(issuer, listed.issued_ms, f"successions[{i}]: {listed.issuer}'s signature"))
        for s in listed.successions:
            for code in s.old_codes:
                retired[code] = (s.successor, s.effective_ms, listed.issuer)
    code, steps = body.held_for, []
    for _ in range(successions.MAX_CHAIN):
        if code == body.made_by or code not in retired:
            break
        successor, effective_ms, issuer = retired[code]
        if effective_ms > body.made_ms:
            raise Refused(f"the succession of {code} by {issuer} takes effect at {when(effective_ms)}, after the "
                          "bundle was made")
        steps.append(f"{code} -> {successor} by {issuer} from {when(effective_ms)}")
        code = successor
    if code != body.made_by:
        raise Refused(f"the bundle is made by {body.made_by} for {body.held_for}, but no signed succession in it "
                      f"retires {body.held_for} into {body.made_by}: the succession link is missing")
    return (f"held by {body.made_by} for {body.held_for}, its predecessor, which the message was "
            f"{'sent by' if body.held_for == doc.sender else 'addressed to'} (signed succession: {'; '.join(steps)})")


def _readable(item: epb.EvidenceItem, v: env_mod.Verified, name: str) -> pb.Payload | None:
    """The payload when plain or opened by the disclosed content key; None when sealed and not disclosed.
    A disclosed key that does not open the signed ciphertext refuses the bundle: it would be a lie."""
    if v.header.seal == pb.PLAIN:
        try:
            return v.payload()
        except Rejected:
            return None
    if not item.content_key:
        return None
    try:
        p = pb.Payload.FromString(sealing.open_with_key(v.envelope.payload, v.header, item.content_key))
    except (Rejected, DecodeError):
        raise Refused(f"{name}: the disclosed content key does not open its sealed payload") from None
    if p.WhichOneof("body") is None or env_mod.KIND_OF_PAYLOAD[p.WhichOneof("body")] != v.header.kind:
        raise Refused(f"{name}: the disclosed content is not a {KIND_NAMES.get(v.header.kind, '?')}")
    return p


def _message(item: epb.EvidenceItem, name: str, trust: TrustStore, clock: Clock, claims: list[Claim]) -> Message:
    raw = item.envelope
    try:
        v = env_mod.verify(raw, trust, max_size=len(raw), clock=clock, check_expiry=False)
    except Rejected as r:
        raise Refused(f"{name} envelope: {r.public_text}") from None
    h = v.header
    claims.append(Claim(v.sender, h.created_ms, f"{name}: {h.sender}'s signature"))
    for i, entry in enumerate(v.envelope.trace):
        t = pb.TraceBody.FromString(entry.body)
        claims.append(Claim(trust.identify(entry.cert_der), t.time_ms, f"{name}: relay mark {i} by {t.code}"))
    custody = []
    verifier = receipts_mod.Verifier(trust)
    for j, receipt in enumerate(item.receipts):
        try:
            receiver = trust.identify(receipt.receiver_cert)
            rb = verifier.verify(receipt, expect_receiver=receiver.code, message_id=h.message_id,
                                 envelope_digest=v.digest)
        except Rejected as r:
            raise Refused(f"{name} receipt[{j}]: {r.public_text}") from None
        claims.append(Claim(receiver, rb.received_ms, f"{name}: receipt by {receiver.code}"))
        custody.append(Custody(receiver.code, rb.received_ms))
    m = Message(h.message_id, KIND_NAMES.get(h.kind, "?"), h.sender, v.sender.subject, h.recipient, h.created_ms,
                h.payload_sha256, h.payload_size, v.path, custody)
    payload = _readable(item, v, name)  # the proof is the signed header and digest; content only shown
    if payload is not None and payload.WhichOneof("body") == "status":
        m.status_code, m.description = payload.status.status_code[:8], payload.status.description[:200]
    elif payload is not None and payload.WhichOneof("body") == "document":
        m.subject = payload.document.subject[:200]
    return m


def _revocation(crls, ca_certs: list[x509.Certificate], claims: list[Claim], proof: Proof) -> None:
    for i, data in enumerate(crls):
        try:
            loaded = revocation.load(data, ca_certs)
        except ValueError as e:
            raise Refused(f"crls[{i}]: {e}") from None
        crl = x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----") else x509.load_der_x509_crl(data)
        for c in claims:
            entry = crl.get_revoked_certificate_by_serial_number(c.ident.serial)
            if entry is None or c.ident.issuer != crl.issuer:
                continue
            revoked_ms = int(entry.revocation_date_utc.timestamp() * 1000)
            if revoked_ms <= c.time_ms:
                raise Refused(f"{c.what}: the certificate of {c.ident.code} (serial {c.ident.serial:x}) was revoked "
                              f"at {when(revoked_ms)}, before it signed at {when(c.time_ms)} (crls[{i}])")
            proof.notes.append(f"the certificate of {c.ident.code} was revoked at {when(revoked_ms)}, after "
                               f"{c.what} at {when(c.time_ms)}")
        proof.crls.append(f"number {loaded.number} from {crl.issuer.rfc4514_string()}, issued "
                          f"{crl.last_update_utc:%Y-%m-%d %H:%M UTC}: no certificate used was revoked before it signed")
