"""`lienthong evidence DOC --out FILE`: one message's custody as a single signed protobuf file.

The bundle holds the envelope bytes as this node keeps them (header, sender's signature,
relay marks), the receipts over exactly those bytes, every status envelope about the
message with its receipts, every certificate those signatures use, and the CRL the node
checks certificates against (tls.crl). The node signs the whole with its agency key, so a
changed byte anywhere is refused; every signature inside stays checkable on its own.
"""
from __future__ import annotations

from pathlib import Path

from google.protobuf.message import DecodeError

from ..clock import Clock
from ..envelope import Signer
from ..errors import Rejected
from ..identity import sealing, signed
from ..identity.sealing import SealKey
from ..pb import envelope_pb2 as pb
from ..pb import evidence_pb2 as epb
from ..pb import registry_pb2 as rpb
from ..registry import successions
from ..store.evidence import Found, Mailbox

VERSION = 1


class EvidenceError(Exception):
    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def find(mailbox: Path, ref: str) -> Found:
    box = Mailbox(mailbox)
    try:
        ids = box.candidates(ref)
        if not ids:
            raise EvidenceError(f"{ref}: no message this node sent or received has that message id, doc id or "
                                "DocumentId", 2)
        if len(ids) > 1:
            raise EvidenceError(f"{ref} names {len(ids)} messages; give one message id: {', '.join(sorted(ids)[:10])}",
                                2)
        found = box.find(ids[0])
        assert found is not None
        return found
    finally:
        box.close()


def _certs_of(raw: bytes, receipts: list[pb.Receipt]) -> list[bytes]:
    env = pb.Envelope.FromString(raw)
    return [env.sender_cert, *(t.cert_der for t in env.trace), *(r.receiver_cert for r in receipts)]


def disclosed_key(raw: bytes, own: SealKey | None, held_wrap: bytes | None = None) -> bytes:
    """The content key of an envelope sealed to this node (or to a predecessor whose mailbox it took over:
    `held_wrap`), to put in the bundle; b"" when plain, not ours or not opening (the bundle then proves custody
    without showing content)."""
    if own is None:
        return b""
    env = pb.Envelope.FromString(raw)
    header = pb.Header.FromString(env.header)
    if header.seal != pb.SEALED_P256_AES256GCM:
        return b""
    try:
        if held_wrap:
            return sealing.held_content_key(env.payload, header, held_wrap, [own])
        return sealing.content_key(env.payload, header, own)
    except Rejected:
        return b""


def links(held_for: str, maker: str, lists: list[bytes]) -> list[bytes]:
    """Of the signed succession lists held, those retiring `held_for` into `maker` (its chain followed)."""
    retired: dict[str, tuple[str, bytes]] = {}
    for data in lists:
        try:
            body = successions.parse(rpb.SignedSuccessionList.FromString(data))
        except (DecodeError, Rejected):
            continue
        for s in body.successions:
            for code in s.old_codes:
                retired[code] = (s.successor, data)
    used: list[bytes] = []
    code = held_for
    for _ in range(successions.MAX_CHAIN):
        if code == maker or code not in retired:
            break
        code, data = retired[code]
        if data not in used:
            used.append(data)
    return used


def make(found: Found, signer: Signer, clock: Clock, crls: list[bytes], seal_key: SealKey | None = None,
         disclose_document: bool = False) -> bytes:
    """Statuses' content keys are disclosed (so a verifier reads which status was given); the document's
    only with `disclose_document`, as its content may be confidential to the third party."""
    def item(held, disclose: bool) -> epb.EvidenceItem:
        return epb.EvidenceItem(envelope=held.envelope, receipts=[pb.Receipt.FromString(r) for r in held.receipts],
                                content_key=disclosed_key(held.envelope, seal_key, held.content_wrap)
                                if disclose else b"")

    doc = item(found.document, disclose_document)
    statuses = [item(s, True) for s in found.statuses]
    certs: list[bytes] = []
    for it in (doc, *statuses):
        for der in _certs_of(it.envelope, list(it.receipts)):
            if der and der not in certs:
                certs.append(der)
    body = epb.EvidenceBody(version=VERSION, message_id=found.document.message_id, made_by=signer.code,
                            made_ms=clock.now_ms(), document=doc, statuses=statuses, certificates=certs,
                            crls=crls, made_by_cert=signer.cert_der, held_for=found.held_for or "",
                            successions=links(found.held_for, signer.code, found.succession_lists)
                            if found.held_for else []).SerializeToString()
    return epb.EvidenceBundle(body=body, signature=signed.sign(signer, body).signature).SerializeToString()
