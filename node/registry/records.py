"""Agency records signed by the agency itself, so no relay or cache can forge a directory entry."""
from __future__ import annotations

from google.protobuf.message import DecodeError

from .. import fields
from ..envelope import Signer
from ..errors import Reason, Rejected
from ..identity import sealing, signed as signed_
from ..identity.trust import TrustStore
from ..pb import registry_pb2 as rpb


def make(signer: Signer, *, name: str, level: int, parent: str, endpoint: str, now_ms: int,
         previous: Signer | None = None, seal_key: bytes = b"") -> rpb.SignedRecord:
    """`previous`: the identity being renewed, whose key also signs the record (see `renewal_signature`).

    `seal_key`: the public key payloads are sealed to (node.identity.sealing). Published here, signed by
    the agency's CA-certified key, rather than in a certificate of its own: Lookup already returns this
    record and senders already cache it, and a new seal key needs a re-registration, not the CA."""
    record = rpb.AgencyRecord(code=signer.code, name=name, level=level, parent=parent, endpoint=endpoint,
                              cert_der=signer.cert_der, issued_ms=now_ms, seal_key=seal_key).SerializeToString()
    return rpb.SignedRecord(record=record, signature=signed_.sign(signer, record).signature,
                            renewal_signature=signed_.sign(previous, record).signature if previous is not None else b"")


def check_renewal(signed: rpb.SignedRecord, record: rpb.AgencyRecord, registered_cert_der: bytes,
                  trust: TrustStore) -> None:
    """One certificate per code at a time: a record with another certificate than the registered one
    is a renewal only if the registered certificate's key signed it too, or that certificate is revoked.
    (`record` itself is verified already: its certificate is trusted and not revoked.)"""
    if record.cert_der == registered_cert_der:
        return
    try:
        old = trust.identify(registered_cert_der, check_validity=False)
    except Rejected as r:
        if r.reason is Reason.CERT_REVOKED:
            # the registered certificate speaks for nobody any more: the CA's new one for the code takes its
            # place without its key (after a key compromise, whoever holds that key must not be needed)
            return
        old = None
    if not signed.renewal_signature or old is None:
        raise _in_use(record.code)
    # the registered certificate's key signed this record too (that certificate may have expired since)
    signed_.check(trust, registered_cert_der, signed.renewal_signature, signed.record, signer=record.code,
                  check_validity=False, wrong_signer=lambda _: _in_use(record.code),
                  bad_signature=lambda: _in_use(record.code))


def _in_use(code: str) -> Rejected:
    return Rejected(Reason.CERT_IN_USE, f"{code} is registered with another certificate")


def verify(signed: rpb.SignedRecord, trust: TrustStore) -> rpb.AgencyRecord:
    """The record, if its fields are within their bounds (node/fields.py), its certificate is trusted,
    binds the record's code, and signed it."""
    fields.check_signed_record(signed)
    try:
        record = rpb.AgencyRecord.FromString(signed.record)
    except DecodeError:
        raise Rejected(Reason.MALFORMED, "agency record does not parse") from None
    if not record.code or not record.endpoint:
        raise Rejected(Reason.MISSING_FIELD, "agency record needs a code and an endpoint",
                       field="record.code" if not record.code else "record.endpoint")
    fields.check_record(record)  # bounds, characters, endpoint, code: before anything is kept, logged or passed on
    signed_.check(trust, record.cert_der, signed.signature, signed.record, signer=record.code,
                  wrong_signer=lambda i: Rejected(Reason.SENDER_MISMATCH,
                                                  f"record is for {record.code}, certificate for {i.code}"),
                  bad_signature=lambda: Rejected(Reason.BAD_SIGNATURE, "agency record signature does not verify"))
    if record.seal_key:
        try:
            sealing.load_public(record.seal_key)
        except ValueError:
            raise Rejected(Reason.MALFORMED, "agency record's seal key is not a P-256 public key") from None
    return record
