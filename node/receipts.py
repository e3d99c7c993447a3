"""Signed custody receipts: one signature per batch, one self-contained proof per envelope.

Signing (and the sender verifying) one ECDSA signature per envelope was a third of a
hop's CPU. A node now signs the root of a Merkle tree over every (message id, envelope
digest) pair it committed in one transaction; each envelope's receipt carries its leaf
and the sibling hashes up to that root. A receipt alone still proves custody of exactly
those bytes, so it can be stored, returned again for a duplicate, and checked by anyone
holding the trust anchors. Hashing follows RFC 6962: leaves and inner nodes get distinct
prefixes, so no inner node can pass for a leaf.
"""
from __future__ import annotations

import hashlib
import struct

from google.protobuf.message import DecodeError

from .clock import SYSTEM, Clock
from .envelope import Signer
from .errors import Reason, Rejected
from .identity import signed
from .identity.trust import TrustStore
from .pb import envelope_pb2 as pb


def leaf_hash(message_id: str, envelope_digest: bytes) -> bytes:
    mid = message_id.encode()
    return hashlib.sha256(b"\x00" + struct.pack(">H", len(mid)) + mid + envelope_digest).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _tree(leaves: list[bytes]) -> tuple[bytes, list[list[tuple[bytes, bool]]]]:
    """The root and each leaf's path to it as (sibling, sibling is on the left) steps; an odd node out is
    carried up unchanged."""
    proofs: list[list[tuple[bytes, bool]]] = [[] for _ in leaves]
    level = [(h, [i]) for i, h in enumerate(leaves)]  # (hash, leaves below it)
    while len(level) > 1:
        up = []
        for j in range(0, len(level) - 1, 2):
            (lh, lbelow), (rh, rbelow) = level[j], level[j + 1]
            for i in lbelow:
                proofs[i].append((rh, False))
            for i in rbelow:
                proofs[i].append((lh, True))
            up.append((_node(lh, rh), lbelow + rbelow))
        if len(level) % 2:
            up.append(level[-1])
        level = up
    return level[0][0], proofs


def issue(signer: Signer, items: list[tuple[str, bytes]], clock: Clock = SYSTEM) -> list[pb.Receipt]:
    """Receipts for (message id, envelope digest) pairs committed together, in order; one signature.
    Proof steps are added to each receipt in place (a ProofStep made apart is copied into it: a third of
    the cost of a receipt)."""
    if not items:
        return []
    root, proofs = _tree([leaf_hash(m, d) for m, d in items])
    body = pb.ReceiptBody(receiver=signer.code, received_ms=clock.now_ms(), root=root).SerializeToString()
    mark = signed.sign(signer, body)
    out = []
    for (m, d), steps in zip(items, proofs):
        receipt = pb.Receipt(body=body, signature=mark.signature, receiver_cert=mark.cert_der, message_id=m,
                             envelope_sha256=d)
        add = receipt.proof.add
        for sibling, left in steps:
            add(sibling=sibling, sibling_left=left)
        out.append(receipt)
    return out


class Verifier:
    """Checks receipts, verifying each distinct signed body once (a batch shares one)."""

    def __init__(self, trust: TrustStore) -> None:
        self.trust = trust
        self._good: dict[tuple[bytes, bytes, bytes], pb.ReceiptBody] = {}

    def verify(self, receipt: pb.Receipt, *, expect_receiver: str, message_id: str,
               envelope_digest: bytes) -> pb.ReceiptBody:
        """A receipt counts only if the expected next hop signed it for exactly the bytes sent."""
        if receipt.message_id != message_id:
            raise Rejected(Reason.BAD_RECEIPT, "receipt is for another message")
        if receipt.envelope_sha256 != envelope_digest:
            raise Rejected(Reason.BAD_RECEIPT, "receipt digest is not that of the envelope sent")
        body = self._signed_body(receipt, expect_receiver)
        h = leaf_hash(message_id, envelope_digest)
        for step in receipt.proof:
            h = _node(step.sibling, h) if step.sibling_left else _node(h, step.sibling)
        if h != body.root:
            raise Rejected(Reason.BAD_RECEIPT, "receipt proof does not lead to the signed root")
        return body

    def _signed_body(self, receipt: pb.Receipt, expect_receiver: str) -> pb.ReceiptBody:
        key = (receipt.body, receipt.signature, receipt.receiver_cert)
        body = self._good.get(key)
        if body is not None and body.receiver == expect_receiver:
            return body
        signed.check(self.trust, receipt.receiver_cert, receipt.signature, receipt.body, signer=expect_receiver,
                     wrong_signer=lambda i: Rejected(Reason.BAD_RECEIPT,
                                                     f"receipt signed by {i.code}, expected {expect_receiver}"),
                     bad_signature=lambda: Rejected(Reason.BAD_RECEIPT, "receipt signature does not verify"))
        try:
            body = pb.ReceiptBody.FromString(receipt.body)
        except DecodeError:
            raise Rejected(Reason.BAD_RECEIPT, "receipt body does not parse") from None
        if body.receiver != expect_receiver:
            raise Rejected(Reason.BAD_RECEIPT, "receipt is for another receiver")
        self._good[key] = body
        return body


def verify(receipt: pb.Receipt, trust: TrustStore, *, expect_receiver: str, message_id: str,
           envelope_digest: bytes) -> pb.ReceiptBody:
    """Check one receipt on its own."""
    return Verifier(trust).verify(receipt, expect_receiver=expect_receiver, message_id=message_id,
                                  envelope_digest=envelope_digest)
