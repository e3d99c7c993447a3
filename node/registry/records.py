"""Agency records signed by the agency itself, so no relay or cache can forge a directory entry."""
from __future__ import annotations

from google.protobuf.message import DecodeError

from ..envelope import Signer
from ..errors import Reason, Rejected
from ..identity import keys
from ..identity.trust import TrustStore
from ..pb import registry_pb2 as rpb


def make(signer: Signer, *, name: str, level: int, parent: str, endpoint: str, now_ms: int) -> rpb.SignedRecord:
    record = rpb.AgencyRecord(code=signer.code, name=name, level=level, parent=parent, endpoint=endpoint,
                              cert_der=signer.cert_der, issued_ms=now_ms).SerializeToString()
    return rpb.SignedRecord(record=record, signature=signer.sign(record))


def verify(signed: rpb.SignedRecord, trust: TrustStore) -> rpb.AgencyRecord:
    """The record, if its certificate is trusted, binds the record's code, and signed it."""
    try:
        record = rpb.AgencyRecord.FromString(signed.record)
    except DecodeError:
        raise Rejected(Reason.MALFORMED, "agency record does not parse") from None
    if not record.code or not record.endpoint:
        raise Rejected(Reason.MISSING_FIELD, "agency record needs a code and an endpoint")
    ident = trust.identify(record.cert_der)
    if ident.code != record.code:
        raise Rejected(Reason.SENDER_MISMATCH, f"record is for {record.code}, certificate for {ident.code}")
    if not keys.verify(ident.public_key, signed.signature, signed.record):
        raise Rejected(Reason.BAD_SIGNATURE, "agency record signature does not verify")
    return record
