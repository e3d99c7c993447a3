"""Sealed payloads (docs/sealing.md) tampered with or moved by a malicious insider.

M holds a valid certificate and signs whatever it hands D: the signature and the digest then
verify, and only D's seal check can refuse. Each case meets its stable reason before anything
is stored, and the refusal names no content.
"""
from __future__ import annotations

from pathlib import Path

import grpc

from node.identity import keys, sealing
from node.pb import envelope_pb2 as pb

from .cases_envelopes import DELIVER, deliver
from .core import Observed, Scene, case
from .world import C1, D, G, M, document, forged, poll, seal

SECRET = "Tài liệu mật: không được lộ"


def seal_key_of(s: Scene, code: str) -> bytes:
    """The seal key `code` publishes (its node's seal.key, as its registry record carries it)."""
    key = keys.load_private_key(Path(s.w.cluster.nodes[code].dir) / "keys" / "seal.key")
    return sealing.public_der(key.public_key())


def sealed_for(s: Scene, signer_code: str, to_key: bytes) -> bytes:
    """A document from `signer_code` to D, sealed to `to_key`, as an honest node would make it."""
    own = sealing.SealKey.of(keys.generate_key())
    content = sealing.Content.encrypt(document(SECRET).SerializeToString(), signer_code)
    return seal(s.w.signer(signer_code), D, document(SECRET),
                sealer=lambda h: sealing.seal(content, h, to_key, own))[1]


def resealed(raw: bytes, edit) -> bytes:
    """The sealed structure edited, the envelope re-signed by M (so signature and digest hold)."""
    env = pb.Envelope.FromString(raw)
    body = sealing.parse(env.payload)
    edit(body)
    return body.SerializeToString()


@case("sealing", "sealed content changed, re-signed by the insider", "INVALID_ARGUMENT", "BAD_SEAL", via=DELIVER)
def _(s):
    raw = sealed_for(s, M, seal_key_of(s, D))
    flip = lambda b: setattr(b, "ciphertext", bytes([b.ciphertext[0] ^ 1]) + b.ciphertext[1:])  # noqa: E731
    return deliver(s, forged(raw, s.w.signer(M), payload=resealed(raw, flip)))


@case("sealing", "a key wrap changed, re-signed by the insider", "INVALID_ARGUMENT", "BAD_SEAL", via=DELIVER)
def _(s):
    raw = sealed_for(s, M, seal_key_of(s, D))
    flip = lambda b: setattr(b.wraps[0], "wrapped_key", bytes(48))  # noqa: E731
    return deliver(s, forged(raw, s.w.signer(M), payload=resealed(raw, flip)))


@case("sealing", "a sibling's sealed payload moved under M's own header", "INVALID_ARGUMENT", "BAD_SEAL",
      via=DELIVER)
def _(s):
    captured = sealed_for(s, C1, seal_key_of(s, D))
    payload = pb.Envelope.FromString(captured).payload
    return deliver(s, forged(seal(s.w.signer(M), D)[1], s.w.signer(M),
                             lambda h: setattr(h, "seal", pb.SEALED_P256_AES256GCM), payload=payload))


@case("sealing", "sealed header with a payload that is no sealed payload", "INVALID_ARGUMENT", "BAD_SEAL",
      via=DELIVER)
def _(s):
    return deliver(s, forged(seal(s.w.signer(M), D)[1], s.w.signer(M),
                             lambda h: setattr(h, "seal", pb.SEALED_P256_AES256GCM),
                             payload=b"\xff\xff\xff not sealed"))


@case("sealing", "payload sealed to another key than D's", "FAILED_PRECONDITION", "NOT_SEALED_FOR_ME", via=DELIVER)
def _(s):
    return deliver(s, sealed_for(s, M, sealing.public_der(keys.generate_key().public_key())))


@case("sealing", "a seal scheme that does not exist", "INVALID_ARGUMENT", "BAD_SEAL", via=DELIVER)
def _(s):
    return deliver(s, forged(seal(s.w.signer(M), D)[1], s.w.signer(M), lambda h: setattr(h, "seal", 7)))



# ---- a relay's word is no record -------------------------------------------------------------------

@case("sealing", "M answers that G below it has not registered yet, to read D's document for G in clear", "OK",
      "kept home", via="Mailbox.Send at D to G, M answering the lookups")
def _(s):
    """A relay's bare NOT_REGISTERED_YET is no signed record without a seal key: D keeps its document home
    (set aside, asked for again later) and never hands it to M, in clear or at all (issue 18). Then D's
    operator purges it, so it does not wait in the world for the rest of the catalogue."""
    w = s.w

    def not_yet(request, context):
        context.set_trailing_metadata([("lienthong-reason", "NOT_REGISTERED_YET")])
        context.abort(grpc.StatusCode.UNAVAILABLE, f"{request.code} has not registered here yet")
    w.fake.on_lookup = not_yet
    api = w.api(D)
    try:
        mid = api.send(pb.Document(subject=SECRET), [G]).envelopes[0].message_id
        poll("D keeps its document for G home", lambda: w.rows(D, f"SELECT 1 FROM outbox WHERE message_id = '{mid}'"
                                                                  " AND state = 'pending' AND not_before_ms IS NOT NULL"))
        [(reason,)] = w.rows(D, f"SELECT reason FROM outbox WHERE message_id = '{mid}'")
        assert "NOT_REGISTERED_YET" in reason, reason
    finally:
        w.fake.reset()
    assert mid not in w.fake.delivered_ids()
    api.admin.purge(mid, "hostile case: done")
    return Observed("OK", "kept home").allowing(mid)
