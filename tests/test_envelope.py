"""Envelopes: sealing, tracing, and a precise rejection reason for every bad input."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from google.protobuf.message import DecodeError

from node import envelope
from node.errors import Reason, Rejected
from node.identity.trust import TrustStore
from node.pb import envelope_pb2 as pb

sys.path.insert(0, str(Path(__file__).parent))  # tests/ is not a package (pytest runs in importlib mode)
from identity_fixtures import (  # noqa: E402
    DAY,
    RECEIVER,
    RELAY,
    SENDER,
    T0,
    T0_MS,
    ca,
    clock,
    receiver,
    relay,
    rogue_ca,
    sender,
    trust,
)

SUBJECT = "V/v triển khai Trục liên thông văn bản quốc gia"
MAX = 1 << 20
LIFETIME_S = 3600


def document(subject: str = SUBJECT) -> pb.Payload:
    return pb.Payload(document=pb.Document(subject=subject))


def seal(signer, clock, payload=None, **kw) -> tuple[pb.Header, bytes]:
    return envelope.seal(signer, RECEIVER, payload or document(), clock=clock, lifetime_s=LIFETIME_S, **kw)


def rejection(raw: bytes, trust: TrustStore, clock, max_size: int = MAX) -> Reason:
    with pytest.raises(Rejected) as exc:
        envelope.verify(raw, trust, max_size=max_size, clock=clock)
    return exc.value.reason


def rebuild(raw: bytes, signer, clock, *, payload: bytes | None = None, **fields) -> bytes:
    """Change header fields (None clears one) or the payload, then re-sign the header and redo the
    sender's signature with `signer`, so that only the intended change is wrong."""
    env = pb.Envelope.FromString(raw)
    header = pb.Header.FromString(env.header)
    if payload is not None:
        env.payload = payload
        header.payload_sha256 = envelope.sha256(payload)
        header.payload_size = len(payload)
    for name, value in fields.items():
        if value is None:
            header.ClearField(name)
        else:
            setattr(header, name, value)
    env.header = header.SerializeToString()
    env.signature = signer.sign(env.header)
    del env.trace[:]
    return env.SerializeToString()


def entry(env: pb.Envelope, *, code: str, key_of, cert_of, prev: bytes, header: bytes | None = None,
          time_ms: int = T0_MS) -> pb.TraceEntry:
    """A hand-made trace entry: claims `code`, signed with `key_of`'s key, carrying `cert_of`'s certificate."""
    body = pb.TraceBody(code=code, time_ms=time_ms, header_sha256=envelope.sha256(header or env.header),
                        prev_sha256=prev).SerializeToString()
    return pb.TraceEntry(body=body, signature=key_of.sign(body), cert_der=cert_of.cert_der)


@pytest.fixture
def sealed(sender, clock) -> tuple[pb.Header, bytes]:
    return seal(sender, clock, priority=2)


@pytest.fixture
def relayed(sealed, relay, clock) -> bytes:
    clock.advance(10)
    return envelope.add_trace(pb.Envelope.FromString(sealed[1]), relay, clock).SerializeToString()


# ---- the good path ---------------------------------------------------------------------


def test_sealed_envelope_verifies(sealed, sender, trust, clock):
    header, raw = sealed
    v = envelope.verify(raw, trust, max_size=MAX, clock=clock)
    h = v.header
    assert h == header
    assert len(h.message_id) == 32
    assert (h.sender, h.recipient, h.kind, h.priority) == (SENDER, RECEIVER, pb.DOCUMENT, 2)
    assert (h.created_ms, h.expires_ms) == (T0_MS, T0_MS + LIFETIME_S * 1000)
    assert h.payload_size == len(v.envelope.payload)
    assert v.sender.code == SENDER and v.sender.cert_der == sender.cert_der
    assert v.path == [(SENDER, T0_MS)]
    assert v.digest == envelope.sha256(raw)
    assert v.payload() == document()
    assert v.payload().document.subject == SUBJECT


def test_message_ids_are_unique(sender, clock):
    assert seal(sender, clock)[0].message_id != seal(sender, clock)[0].message_id


def test_given_message_id_and_reference_are_carried(sender, trust, clock):
    _, raw = seal(sender, clock, message_id="m-1", ref_message_id="m-0")
    h = envelope.verify(raw, trust, max_size=MAX, clock=clock).header
    assert (h.message_id, h.ref_message_id) == ("m-1", "m-0")


@pytest.mark.parametrize(
    "payload, kind",
    [(document(), pb.DOCUMENT),
     (pb.Payload(status=pb.Status(status_code="03")), pb.STATUS),
     (pb.Payload(notice=pb.Notice(reason="EXPIRED")), pb.NOTICE)],
    ids=["document", "status", "notice"],
)
def test_header_kind_follows_payload(sender, trust, clock, payload, kind):
    _, raw = seal(sender, clock, payload)
    v = envelope.verify(raw, trust, max_size=MAX, clock=clock)
    assert v.header.kind == kind
    assert v.payload() == payload


def test_rebuild_without_changes_still_verifies(sealed, sender, trust, clock):
    """Control for the forgeries below: `rebuild` itself produces a valid envelope."""
    envelope.verify(rebuild(sealed[1], sender, clock), trust, max_size=MAX, clock=clock)


def test_a_relay_appends_its_mark_to_the_bytes_it_verified(sealed, relayed, receiver, trust, clock):
    """append_trace: the relayed bytes are the received ones plus one trace record, and parse to exactly
    what add_trace makes (same entry; the ECDSA signature alone differs, being randomised)."""
    v = envelope.verify(relayed, trust, max_size=MAX, clock=clock)
    clock.advance(10)
    appended = envelope.append_trace(relayed, v.envelope, receiver, clock)
    assert appended.startswith(relayed) and len(appended) > len(relayed)
    expected = envelope.add_trace(pb.Envelope.FromString(relayed), receiver, clock)
    got = pb.Envelope.FromString(appended)
    assert len(got.trace) == 2 == len(expected.trace)
    assert got.trace[0] == expected.trace[0]
    assert (got.trace[1].body, got.trace[1].cert_der) == (expected.trace[1].body, expected.trace[1].cert_der)
    assert got.SerializeToString() == appended  # what re-encoding would have given
    got.trace[1].signature = expected.trace[1].signature
    assert got.SerializeToString() == expected.SerializeToString()
    assert len(v.envelope.trace) == 1  # the verified envelope is not changed
    assert envelope.verify(appended, trust, max_size=MAX, clock=clock).path == [
        (SENDER, T0_MS), (RELAY, T0_MS + 10_000), (RECEIVER, T0_MS + 20_000)]


def test_a_relay_re_encodes_bytes_longer_than_their_encoding(sealed, relay, trust, clock):
    """A field written twice parses as its last copy; the earlier one is bytes nobody signed, which a relay
    must not hand on (as before append_trace, it re-encodes)."""
    header, raw = sealed
    junk = pb.Envelope(header=b"x" * 5000).SerializeToString()  # an earlier copy of the header field
    padded = junk + raw
    v = envelope.verify(padded, trust, max_size=MAX, clock=clock)
    appended = envelope.append_trace(padded, v.envelope, relay, clock)
    assert b"x" * 5000 not in appended
    assert envelope.verify(appended, trust, max_size=MAX, clock=clock).path[-1][0] == RELAY


def test_relay_trace_extends_path_in_order(sealed, relayed, trust, clock):
    v = envelope.verify(relayed, trust, max_size=MAX, clock=clock)
    assert v.path == [(SENDER, T0_MS), (RELAY, T0_MS + 10_000)]
    assert v.header.sender == SENDER
    assert envelope.last_hop(relayed) == RELAY
    assert envelope.last_hop(sealed[1]) == SENDER


# ---- size and structure ------------------------------------------------------------------


def test_size_limit(sealed, trust, clock):
    raw = sealed[1]
    envelope.verify(raw, trust, max_size=len(raw), clock=clock)
    assert rejection(raw, trust, clock, max_size=len(raw) - 1) is Reason.TOO_LARGE


def _bad_header(raw: bytes) -> bytes:
    env = pb.Envelope.FromString(raw)
    env.header = b"\xff\xff\xff"
    return env.SerializeToString()


@pytest.mark.parametrize(
    "make",
    [lambda raw: b"\xff", lambda raw: b"not an envelope", lambda raw: raw[:-7], _bad_header],
    ids=["byte", "text", "truncated", "header"],
)
def test_malformed_bytes(sealed, trust, clock, make):
    assert rejection(make(sealed[1]), trust, clock) is Reason.MALFORMED


@pytest.mark.parametrize("field", envelope.REQUIRED_HEADER_FIELDS)
def test_missing_required_header_field(sealed, sender, trust, clock, field):
    assert rejection(rebuild(sealed[1], sender, clock, **{field: None}), trust, clock) is Reason.MISSING_FIELD


def test_priority_out_of_range(sealed, sender, trust, clock):
    assert rejection(rebuild(sealed[1], sender, clock, priority=5), trust, clock) is Reason.INVALID_REQUEST


# ---- sender signature and certificate --------------------------------------------------------


def _with(raw: bytes, **fields) -> bytes:
    env = pb.Envelope.FromString(raw)
    for name, value in fields.items():
        setattr(env, name, value)
    return env.SerializeToString()


def test_missing_signature(sealed, trust, clock):
    assert rejection(_with(sealed[1], signature=b""), trust, clock) is Reason.BAD_SIGNATURE


def test_flipped_signature_byte(sealed, trust, clock):
    sig = bytearray(pb.Envelope.FromString(sealed[1]).signature)
    sig[-1] ^= 0x01
    assert rejection(_with(sealed[1], signature=bytes(sig)), trust, clock) is Reason.BAD_SIGNATURE


def test_signature_by_another_trusted_key(sealed, relay, trust, clock):
    env = pb.Envelope.FromString(sealed[1])
    assert rejection(_with(sealed[1], signature=relay.sign(env.header)), trust, clock) is Reason.BAD_SIGNATURE


@pytest.mark.parametrize(
    "field, value",
    [("recipient", RELAY), ("expires_ms", T0_MS + 365 * 86_400_000), ("priority", 4)],
)
def test_header_changed_after_signing(sealed, trust, clock, field, value):
    env = pb.Envelope.FromString(sealed[1])
    header = pb.Header.FromString(env.header)
    setattr(header, field, value)
    assert rejection(_with(sealed[1], header=header.SerializeToString()), trust, clock) is Reason.BAD_SIGNATURE


@pytest.mark.parametrize(
    "payload",
    [document("V/v khác").SerializeToString(), document().SerializeToString() + b"\x00", b""],
    ids=["other-document", "appended", "emptied"],
)
def test_payload_changed(sealed, trust, clock, payload):
    assert rejection(_with(sealed[1], payload=payload), trust, clock) is Reason.DIGEST_MISMATCH


def test_payload_size_lie(sealed, sender, trust, clock):
    raw = rebuild(sealed[1], sender, clock, payload_size=pb.Header.FromString(
        pb.Envelope.FromString(sealed[1]).header).payload_size + 1)
    assert rejection(raw, trust, clock) is Reason.DIGEST_MISMATCH


def test_missing_sender_certificate(sealed, trust, clock):
    assert rejection(_with(sealed[1], sender_cert=b""), trust, clock) is Reason.UNKNOWN_SENDER


def test_header_sender_not_the_certificates_code(sealed, sender, trust, clock):
    assert rejection(rebuild(sealed[1], sender, clock, sender=RELAY), trust, clock) is Reason.SENDER_MISMATCH


def test_certificate_swapped_for_another_agency(sealed, relay, trust, clock):
    assert rejection(_with(sealed[1], sender_cert=relay.cert_der), trust, clock) is Reason.SENDER_MISMATCH


def test_sender_certificate_from_another_ca(rogue_ca, trust, clock):
    impostor = rogue_ca.signer(SENDER)
    assert rejection(seal(impostor, clock)[1], trust, clock) is Reason.UNTRUSTED_CERT


@pytest.mark.parametrize(
    "validity",
    [dict(not_before=T0 - 400 * DAY, days=365), dict(not_before=T0 + DAY)],
    ids=["expired", "not-yet-valid"],
)
def test_sender_certificate_outside_validity(ca, trust, clock, validity):
    assert rejection(seal(ca.signer(SENDER, **validity), clock)[1], trust, clock) is Reason.CERT_EXPIRED


def test_envelope_lifetime(sealed, trust, clock):
    raw = sealed[1]
    clock.advance(LIFETIME_S)
    envelope.verify(raw, trust, max_size=MAX, clock=clock)  # expires_ms itself is still in time
    clock.advance(0.001)
    assert rejection(raw, trust, clock) is Reason.EXPIRED
    envelope.verify(raw, trust, max_size=MAX, clock=clock, check_expiry=False)


# ---- trace ---------------------------------------------------------------------------------------


def bad_trace(raw: bytes, trust: TrustStore, clock) -> str:
    """Assert BAD_TRACE and return the detail, so each test can show which trace check caught it."""
    with pytest.raises(Rejected) as exc:
        envelope.verify(raw, trust, max_size=MAX, clock=clock)
    assert exc.value.reason is Reason.BAD_TRACE
    return exc.value.detail


def _trace(raw: bytes, *entries: pb.TraceEntry) -> bytes:
    env = pb.Envelope.FromString(raw)
    del env.trace[:]
    env.trace.extend(entries)
    return env.SerializeToString()


@pytest.fixture
def two_relays(relayed, receiver, clock) -> bytes:
    """Sender, then RELAY, then RECEIVER acting as a second relay."""
    clock.advance(10)
    return envelope.add_trace(pb.Envelope.FromString(relayed), receiver, clock).SerializeToString()


def test_sealed_envelope_carries_no_trace_entry_of_its_own(sealed, trust, clock):
    """The sender's hop mark is its header signature; trace entries are relays' marks."""
    assert len(pb.Envelope.FromString(sealed[1]).trace) == 0
    assert envelope.verify(sealed[1], trust, max_size=MAX, clock=clock).path == [(SENDER, T0_MS)]


def test_trace_entry_body_tampered(relayed, trust, clock):
    env = pb.Envelope.FromString(relayed)
    body = pb.TraceBody.FromString(env.trace[0].body)
    body.time_ms += 1
    env.trace[0].body = body.SerializeToString()
    assert "signature does not verify" in bad_trace(env.SerializeToString(), trust, clock)


def test_trace_entry_signature_tampered(two_relays, trust, clock):
    env = pb.Envelope.FromString(two_relays)
    sig = bytearray(env.trace[1].signature)
    sig[-1] ^= 0x01
    env.trace[1].signature = bytes(sig)
    assert "trace[1] signature does not verify" in bad_trace(env.SerializeToString(), trust, clock)


def test_first_of_two_trace_entries_removed(two_relays, trust, clock):
    env = pb.Envelope.FromString(two_relays)
    assert "trace[0] is not chained" in bad_trace(_trace(two_relays, env.trace[1]), trust, clock)


def test_trace_entries_reordered(two_relays, trust, clock):
    env = pb.Envelope.FromString(two_relays)
    assert "trace[0] is not chained" in bad_trace(_trace(two_relays, env.trace[1], env.trace[0]), trust, clock)


def test_trace_entry_signed_by_someone_else_with_the_claimed_cert(sealed, receiver, relay, trust, clock):
    env = pb.Envelope.FromString(sealed[1])
    forged = entry(env, code=RELAY, key_of=receiver, cert_of=relay, prev=envelope.sha256(env.signature))
    assert "signature does not verify" in bad_trace(_trace(sealed[1], forged), trust, clock)


def test_trace_entry_claiming_another_code_than_its_cert(sealed, relay, trust, clock):
    env = pb.Envelope.FromString(sealed[1])
    forged = entry(env, code=SENDER, key_of=relay, cert_of=relay, prev=envelope.sha256(env.signature))
    assert "is not its certificate's" in bad_trace(_trace(sealed[1], forged), trust, clock)


def test_relay_entry_not_chained_to_previous(relayed, receiver, trust, clock):
    env = pb.Envelope.FromString(relayed)
    unchained = entry(env, code=RECEIVER, key_of=receiver, cert_of=receiver, prev=envelope.sha256(env.signature))
    assert "trace[1] is not chained" in bad_trace(_trace(relayed, env.trace[0], unchained), trust, clock)


def test_first_relay_entry_not_chained_to_the_sender_signature(sealed, relay, trust, clock):
    env = pb.Envelope.FromString(sealed[1])
    unchained = entry(env, code=RELAY, key_of=relay, cert_of=relay, prev=b"")
    assert "trace[0] is not chained" in bad_trace(_trace(sealed[1], unchained), trust, clock)


def test_relay_entry_chained_correctly_by_hand_verifies(relayed, receiver, trust, clock):
    """Control for the chaining tests: the same hand-made entry with the right links passes."""
    env = pb.Envelope.FromString(relayed)
    good = entry(env, code=RECEIVER, key_of=receiver, cert_of=receiver, prev=envelope.sha256(env.trace[0].signature))
    v = envelope.verify(_trace(relayed, env.trace[0], good), trust, max_size=MAX, clock=clock)
    assert [c for c, _ in v.path] == [SENDER, RELAY, RECEIVER]


def test_trace_entry_bound_to_another_envelope(sealed, sender, relay, trust, clock):
    other_raw = seal(sender, clock)[1]
    other = envelope.add_trace(pb.Envelope.FromString(other_raw), relay, clock)
    assert "not chained" in bad_trace(_trace(sealed[1], other.trace[0]), trust, clock)
    env = pb.Envelope.FromString(sealed[1])
    forged = entry(env, code=RELAY, key_of=relay, cert_of=relay, prev=envelope.sha256(env.signature), header=other.header)
    assert "not chained" in bad_trace(_trace(sealed[1], forged), trust, clock)


def test_relay_marks_cannot_be_moved_to_a_resigned_header(relayed, sender, trust, clock):
    """Re-signing the header (even by the true sender) breaks every relay mark chained to the old signature."""
    env = pb.Envelope.FromString(relayed)
    header = pb.Header.FromString(env.header)
    header.priority = 4
    env.header = header.SerializeToString()
    env.signature = sender.sign(env.header)
    assert "not chained" in bad_trace(env.SerializeToString(), trust, clock)


def test_trace_entry_body_unparseable(relayed, trust, clock):
    env = pb.Envelope.FromString(relayed)
    env.trace[0].body = b"\xff\xff"
    assert rejection(env.SerializeToString(), trust, clock) is Reason.MALFORMED


def test_trace_entry_from_untrusted_relay(sealed, rogue_ca, trust, clock):
    env = envelope.add_trace(pb.Envelope.FromString(sealed[1]), rogue_ca.signer(RELAY), clock)
    assert rejection(env.SerializeToString(), trust, clock) is Reason.UNTRUSTED_CERT


# ---- payload body ---------------------------------------------------------------------------------


def test_payload_body_not_matching_header_kind(sealed, sender, trust, clock):
    v = envelope.verify(rebuild(sealed[1], sender, clock, kind=pb.STATUS), trust, max_size=MAX, clock=clock)
    with pytest.raises(Rejected) as exc:
        v.payload()
    assert exc.value.reason is Reason.MISSING_FIELD


def test_payload_without_body(sealed, sender, trust, clock):
    v = envelope.verify(rebuild(sealed[1], sender, clock, payload=pb.Payload().SerializeToString()),
                        trust, max_size=MAX, clock=clock)
    with pytest.raises(Rejected) as exc:
        v.payload()
    assert exc.value.reason is Reason.MISSING_FIELD


def test_payload_not_parsing(sealed, sender, trust, clock):
    v = envelope.verify(rebuild(sealed[1], sender, clock, payload=b"\xff\xff"), trust, max_size=MAX, clock=clock)
    with pytest.raises(Rejected) as exc:
        v.payload()
    assert exc.value.reason is Reason.MALFORMED


def test_every_hop_checks_every_mark(relayed, receiver, trust, clock):
    """A forged earlier mark, chained on by a later relay: refused wherever it is checked, at a relay too
    (a relay that took custody would vouch, with its receipt and its own mark, for a path nobody took)."""
    env = pb.Envelope.FromString(relayed)
    forged = pb.TraceEntry()
    forged.CopyFrom(env.trace[0])
    sig = bytearray(forged.signature)
    sig[-1] ^= 0x01
    forged.signature = bytes(sig)
    chained = entry(env, code=RECEIVER, key_of=receiver, cert_of=receiver, prev=envelope.sha256(forged.signature))
    raw = _trace(relayed, forged, chained)
    assert "trace[0] signature does not verify" in bad_trace(raw, trust, clock)


def test_a_trace_longer_than_the_limit_is_refused(relayed, receiver, trust, clock):
    env = pb.Envelope.FromString(relayed)
    for _ in range(3):
        envelope.add_trace(env, receiver, clock)
    raw = env.SerializeToString()
    envelope.verify(raw, trust, max_size=MAX, clock=clock, max_trace=4)
    with pytest.raises(Rejected) as exc:
        envelope.verify(raw, trust, max_size=MAX, clock=clock, max_trace=3)
    assert exc.value.reason is Reason.OVER_LIMIT and (exc.value.field, exc.value.metadata) == ("trace", {"limit": "3", "count": "4"})


def test_a_relay_still_verifies_the_mark_of_the_neighbour_handing_over(two_relays, trust, clock):
    env = pb.Envelope.FromString(two_relays)
    sig = bytearray(env.trace[1].signature)
    sig[-1] ^= 0x01
    env.trace[1].signature = bytes(sig)
    with pytest.raises(Rejected) as exc:
        envelope.verify(env.SerializeToString(), trust, max_size=MAX, clock=clock)
    assert exc.value.reason is Reason.BAD_TRACE and "trace[1] signature" in exc.value.detail


# ---- what no signature covers ------------------------------------------------------------------

def test_unknown_fields_outside_the_signed_bytes_are_refused(sealed, relayed, sender, trust, clock):
    """Field 15 of Envelope, or of a TraceEntry, is nobody's word: refused, never stored and relayed."""
    extra = b"\x7a\x03abc"  # field 15, length-delimited, "abc"
    assert rejection(sealed[1] + extra, trust, clock) is Reason.UNSIGNED_FIELDS
    env = pb.Envelope.FromString(relayed)
    env.trace[0].MergeFromString(extra)
    assert rejection(env.SerializeToString(), trust, clock) is Reason.UNSIGNED_FIELDS
    signed = pb.Envelope.FromString(sealed[1])  # inside the signed header, a newer sender's field is vouched for
    signed.header += extra
    signed.signature = sender.sign(signed.header)
    assert envelope.verify(signed.SerializeToString(), trust, max_size=MAX, clock=clock).header.message_id


def test_own_header_reads_the_leading_field_and_parses_any_other_layout_whole(sealed):
    header, raw = sealed
    assert envelope.own_header(raw) == header
    env = pb.Envelope.FromString(raw)
    reordered = pb.Envelope(payload=env.payload).SerializeToString() + pb.Envelope(
        header=env.header, signature=env.signature).SerializeToString()
    assert envelope.own_header(reordered) == header
    with pytest.raises(DecodeError):  # cut inside its header: not a header read short
        envelope.own_header(raw[:40])
