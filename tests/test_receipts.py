"""Receipts: one signature per batch, a self-contained proof per envelope, and every way to fake one."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from node import envelope, receipts
from node.errors import Reason, Rejected
from node.identity import keys
from node.pb import envelope_pb2 as pb

sys.path.insert(0, str(Path(__file__).parent))  # tests/ is not a package (pytest runs in importlib mode)
from identity_fixtures import (  # noqa: E402,F401
    DAY,
    RECEIVER,
    RELAY,
    T0,
    T0_MS,
    ca,
    clock,
    receiver,
    rogue_ca,
    trust,
)


def items(n: int) -> list[tuple[str, bytes]]:
    return [(f"msg-{i}", envelope.sha256(f"envelope {i}".encode())) for i in range(n)]


def rejection(receipt, trust, *, expect=RECEIVER, message_id, digest) -> Reason:
    with pytest.raises(Rejected) as exc:
        receipts.verify(receipt, trust, expect_receiver=expect, message_id=message_id, envelope_digest=digest)
    return exc.value.reason


@pytest.fixture
def one(receiver, clock):
    clock.advance(5)
    [(mid, digest)] = items(1)
    return receipts.issue(receiver, [(mid, digest)], clock)[0], mid, digest


def test_single_receipt_verifies(one, trust):
    receipt, mid, digest = one
    body = receipts.verify(receipt, trust, expect_receiver=RECEIVER, message_id=mid, envelope_digest=digest)
    assert (body.receiver, body.received_ms, receipt.message_id, receipt.envelope_sha256) == (
        RECEIVER, T0_MS + 5000, mid, digest)
    assert body.root == receipts.leaf_hash(mid, digest) and not receipt.proof


@pytest.mark.parametrize("n", [2, 3, 5, 8, 127, 128])
def test_every_receipt_of_a_batch_verifies_alone(receiver, trust, clock, n):
    batch = items(n)
    issued = receipts.issue(receiver, batch, clock)
    assert len({r.body for r in issued}) == 1 and len({r.signature for r in issued}) == 1
    for (mid, digest), r in zip(batch, issued):
        # a stored receipt travels as bytes: check it after a round trip, without the rest of the batch
        alone = pb.Receipt.FromString(r.SerializeToString())
        receipts.verify(alone, trust, expect_receiver=RECEIVER, message_id=mid, envelope_digest=digest)
    assert max(len(r.proof) for r in issued) <= (n - 1).bit_length()


def test_a_batch_costs_one_signature_check(receiver, trust, clock, monkeypatch):
    batch = items(64)
    issued = receipts.issue(receiver, batch, clock)
    calls = []
    real = keys.verify
    monkeypatch.setattr(keys, "verify", lambda *a: calls.append(1) or real(*a))
    v = receipts.Verifier(trust)
    for (mid, digest), r in zip(batch, issued):
        v.verify(r, expect_receiver=RECEIVER, message_id=mid, envelope_digest=digest)
    assert len(calls) == 1


def copy_of(receipt: pb.Receipt) -> pb.Receipt:
    c = pb.Receipt()
    c.CopyFrom(receipt)
    return c


def test_a_receipt_does_not_vouch_for_its_neighbour(receiver, trust, clock):
    batch = items(4)
    issued = receipts.issue(receiver, batch, clock)
    m1, d1 = batch[1]
    # the neighbour's ids with this receipt's proof: the leaf changes, so the path misses the root
    forged = copy_of(issued[0])
    forged.message_id, forged.envelope_sha256 = m1, d1
    assert rejection(forged, trust, message_id=m1, digest=d1) is Reason.BAD_RECEIPT
    assert rejection(issued[0], trust, message_id=m1, digest=d1) is Reason.BAD_RECEIPT


def test_tampered_or_grafted_proofs_are_refused(receiver, trust, clock):
    batch = items(5)
    issued = receipts.issue(receiver, batch, clock)
    mid, digest = batch[2]
    sibling_changed = copy_of(issued[2])
    sibling_changed.proof[0].sibling = envelope.sha256(b"other")
    side_flipped = copy_of(issued[2])
    side_flipped.proof[0].sibling_left = not side_flipped.proof[0].sibling_left
    # the same envelope receipted in another batch: a valid path, but to that batch's root
    elsewhere = receipts.issue(receiver, [batch[2], *items(9)[6:]], clock)[0]
    grafted = copy_of(issued[2])
    del grafted.proof[:]
    grafted.proof.extend(elsewhere.proof)
    for bad in (sibling_changed, side_flipped, grafted):
        assert rejection(bad, trust, message_id=mid, digest=digest) is Reason.BAD_RECEIPT


def test_inner_node_cannot_pass_for_a_leaf(receiver, trust, clock):
    # RFC 6962 prefixes: the hash of two leaves, presented as a one-leaf receipt, is not the root
    batch = items(2)
    issued = receipts.issue(receiver, batch, clock)
    r = copy_of(issued[0])
    del r.proof[:]
    assert rejection(r, trust, message_id=batch[0][0], digest=batch[0][1]) is Reason.BAD_RECEIPT


def test_receipt_from_unexpected_receiver(one, trust):
    receipt, mid, digest = one
    assert rejection(receipt, trust, expect=RELAY, message_id=mid, digest=digest) is Reason.BAD_RECEIPT


def test_receipt_for_another_message(one, trust):
    receipt, _, digest = one
    assert rejection(receipt, trust, message_id="other", digest=digest) is Reason.BAD_RECEIPT


def test_receipt_for_other_bytes(one, trust):
    receipt, mid, digest = one
    assert rejection(receipt, trust, message_id=mid, digest=envelope.sha256(digest)) is Reason.BAD_RECEIPT


def test_receipt_signature_tampered(one, trust):
    receipt, mid, digest = one
    sig = bytearray(receipt.signature)
    sig[-1] ^= 0x01
    receipt.signature = bytes(sig)
    assert rejection(receipt, trust, message_id=mid, digest=digest) is Reason.BAD_RECEIPT


def test_receipt_body_swapped_under_signature(one, trust):
    receipt, mid, digest = one
    receipt.body = pb.ReceiptBody(receiver=RECEIVER, root=receipts.leaf_hash(mid, digest),
                                  received_ms=1).SerializeToString()
    assert rejection(receipt, trust, message_id=mid, digest=digest) is Reason.BAD_RECEIPT


def test_receipt_body_naming_another_receiver_than_its_cert(receiver, trust, clock):
    # Signed with the receiver's own key and certificate, but the body claims the relay took custody.
    liar = envelope.Signer(RELAY, receiver.key, receiver.cert_der)
    receipt = receipts.issue(liar, [("m", b"d" * 32)], clock)[0]
    assert rejection(receipt, trust, message_id="m", digest=b"d" * 32) is Reason.BAD_RECEIPT


def test_receipt_from_untrusted_certificate(rogue_ca, trust, clock):
    # verify lets the trust store's own reason through rather than BAD_RECEIPT.
    receipt = receipts.issue(rogue_ca.signer(RECEIVER), [("m", b"d" * 32)], clock)[0]
    assert rejection(receipt, trust, message_id="m", digest=b"d" * 32) is Reason.UNTRUSTED_CERT
    receipt.receiver_cert = b""
    assert rejection(receipt, trust, message_id="m", digest=b"d" * 32) is Reason.UNTRUSTED_CERT


def test_receipt_from_expired_certificate(ca, trust, clock):
    receipt = receipts.issue(ca.signer(RECEIVER, not_before=T0 - 400 * DAY, days=365), [("m", b"d" * 32)], clock)[0]
    assert rejection(receipt, trust, message_id="m", digest=b"d" * 32) is Reason.CERT_EXPIRED


def test_signed_but_unparseable_receipt_body(receiver, trust):
    body = b"\xff\xff"
    receipt = pb.Receipt(body=body, signature=receiver.sign(body), receiver_cert=receiver.cert_der,
                         message_id="m", envelope_sha256=b"d" * 32)
    assert rejection(receipt, trust, message_id="m", digest=b"d" * 32) is Reason.BAD_RECEIPT


def test_no_receipts_for_an_empty_batch(receiver, clock):
    assert receipts.issue(receiver, [], clock) == []
