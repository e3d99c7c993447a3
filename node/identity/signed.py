"""Signed objects: one way to sign exact bytes as this node, one way to check who signed bytes.

Envelopes (the sender's header, each relay's mark), custody receipts, audit checkpoints, agency
records and statistics are all the same thing: the exact bytes that were signed, the signature,
and the signer's certificate. Each kind keeps its own body, bounds and refusal reasons; signing
and checking are done here, for all of them, with the two caches that make a repeat cheap:

- `TrustStore.identify`: a certificate's chain, validity and revocation, checked once per
  certificate (by its DER digest) while the trust anchors and the CRL stay the same;
- `keys.VERIFIED`: a signature by one key over identical bytes, verified once (bounded; only
  successes are kept, so a bad signature is never remembered as good).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from ..errors import Rejected
from . import keys
from .trust import Identity, TrustStore


class Signs(Protocol):
    """This node's identity (node.envelope.Signer): its key signs, its certificate names it."""

    cert_der: bytes

    def sign(self, data: bytes) -> bytes: ...


@dataclass(frozen=True)
class Signature:
    signature: bytes
    cert_der: bytes


def sign(signer: Signs, body: bytes) -> Signature:
    """`body` signed by this node, with the certificate a checker identifies it by."""
    return Signature(signer.sign(body), signer.cert_der)


def check(trust: TrustStore, cert_der: bytes, signature: bytes, body: bytes, *,
          signer: str | None, wrong_signer: Callable[[Identity], Rejected], bad_signature: Callable[[], Rejected],
          check_validity: bool = True, before_signature: Callable[[Identity], None] | None = None) -> Identity:
    """Who signed `body`: the certificate is trusted (chain, validity unless `check_validity` is False, not
    revoked: TrustStore's refusals), it names `signer` (when given; else `wrong_signer(identity)` is raised),
    and its key made `signature` over exactly these bytes (else `bad_signature()`).

    `before_signature(identity)`: the kind's own checks that cost less than a signature (a relay mark's
    chain), run before it is verified."""
    ident = trust.identify(cert_der, check_validity=check_validity)
    if signer is not None and ident.code != signer:
        raise wrong_signer(ident)
    if before_signature is not None:
        before_signature(ident)
    if not keys.verify(ident.public_key, signature, body):
        raise bad_signature()
    return ident
