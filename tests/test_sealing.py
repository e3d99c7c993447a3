"""Payloads sealed for their recipient: relays verify without reading, the recipient opens exactly what was
sent, and every tampering (content, key wrap, header binding, a payload moved under another header) is
refused with its own reason. Real keys, a real Intake over a real SQLite file; the wire is a call."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from node import envelope
from node.errors import Reason, Rejected
from node.exchange.intake import Intake
from node.exchange.late_seal import LateSealer
from node.exchange.outgoing import EnvelopeMaker
from node.exchange.routing import Router
from node.identity import keys, sealing
from node.pb import envelope_pb2 as pb
from node.pb import registry_pb2 as rpb
from node.registry import records
from node.store import inbox, outbox
from node.store.database import Database

sys.path.insert(0, str(Path(__file__).parent))  # tests/ is not a package (pytest runs in importlib mode)
from identity_fixtures import RECEIVER, RELAY, SENDER, ca, clock, receiver, relay, sender, trust  # noqa: E402,F401

OTHER = "000.00.13.G22"
MAX = 1 << 20
MARKER = "Bí mật nhà nước 7f3a"


def new_key() -> sealing.SealKey:
    return sealing.SealKey.of(keys.generate_key())


@pytest.fixture(scope="module")
def keys_of() -> dict[str, sealing.SealKey]:
    return {code: new_key() for code in (SENDER, RECEIVER, RELAY, OTHER)}


def document() -> pb.Payload:
    return pb.Payload(document=pb.Document(subject=MARKER, content=MARKER * 3, attachments=[
        pb.Attachment(name="a.bin", content_type="application/octet-stream", data=MARKER.encode() * 40)]))


def maker(signer, clock, key, mode="preferred") -> EnvelopeMaker:
    return EnvelopeMaker(signer, Router(signer.code, {}), clock, lifetime_s=3600, max_size=MAX, seal_key=key,
                         seal_mode=mode)


def sealed_to(sender, clock, keys_of, recipient=RECEIVER, payload=None, **kw):
    m = maker(sender, clock, keys_of[sender.code])
    return m.seal(payload or document(), recipient, "", seal_to=keys_of[recipient].public_der, **kw)


def opener(key):
    return lambda data, header: sealing.open_payload(data, header, key)


def resign(signer, header: pb.Header, payload: bytes) -> bytes:
    """An insider with a valid certificate signs whatever header and payload bytes it likes."""
    header = pb.Header.FromString(header.SerializeToString())
    header.payload_sha256, header.payload_size = envelope.sha256(payload), len(payload)
    hb = header.SerializeToString()
    return pb.Envelope(header=hb, signature=signer.sign(hb), sender_cert=signer.cert_der,
                       payload=payload).SerializeToString()


def test_relays_verify_without_a_key_and_see_no_content(sender, clock, keys_of, trust):
    s = sealed_to(sender, clock, keys_of)
    assert s.header.seal == pb.SEALED_P256_AES256GCM
    assert MARKER.encode() not in s.raw
    v = envelope.verify(s.raw, trust, max_size=MAX, clock=clock)  # a relay: no opener
    assert v.sealed and v.header.payload_size == len(v.envelope.payload)
    with pytest.raises(Rejected) as e:
        v.payload()
    assert e.value.reason is Reason.NOT_SEALED_FOR_ME


def test_the_recipient_and_the_sender_open_exactly_what_was_sent_and_nobody_else(sender, clock, keys_of, trust):
    s = sealed_to(sender, clock, keys_of)
    for code in (RECEIVER, SENDER):
        v = envelope.verify(s.raw, trust, max_size=MAX, clock=clock, opener=opener(keys_of[code]))
        assert v.payload() == document()
    for code in (RELAY, OTHER):
        v = envelope.verify(s.raw, trust, max_size=MAX, clock=clock, opener=opener(keys_of[code]))
        with pytest.raises(Rejected) as e:
            v.payload()
        assert e.value.reason is Reason.NOT_SEALED_FOR_ME


def test_the_sealed_payload_carries_the_senders_key_for_replies(sender, clock, keys_of):
    s = sealed_to(sender, clock, keys_of)
    assert sealing.sender_key_of(s.raw) == keys_of[SENDER].public_der
    plain = maker(sender, clock, None).seal(document(), RECEIVER, "")
    assert sealing.sender_key_of(plain.raw) == b""


def test_one_document_to_many_recipients_is_encrypted_once(sender, clock, keys_of, trust):
    m = maker(sender, clock, keys_of[SENDER])
    payload = document()
    content = m.content(payload)
    envs = [m.seal(payload, r, "", seal_to=keys_of[r].public_der, content=content) for r in (RECEIVER, OTHER)]
    bodies = [sealing.parse(pb.Envelope.FromString(s.raw).payload) for s in envs]
    assert bodies[0].ciphertext == bodies[1].ciphertext == content.ciphertext  # the content, once
    assert bodies[0].wraps[0].key_id == keys_of[RECEIVER].key_id             # each its own recipient's wrap
    assert bodies[1].wraps[0].key_id == keys_of[OTHER].key_id
    assert [len(b.wraps) for b in bodies] == [2, 2]                           # ... and the sender's own
    for s, r in zip(envs, (RECEIVER, OTHER)):
        v = envelope.verify(s.raw, trust, max_size=MAX, clock=clock, opener=opener(keys_of[r]))
        assert v.payload() == payload
    # a recipient's wrap opens nothing under the other recipient's header
    v = envelope.verify(envs[1].raw, trust, max_size=MAX, clock=clock, opener=opener(keys_of[RECEIVER]))
    with pytest.raises(Rejected) as e:
        v.payload()
    assert e.value.reason is Reason.NOT_SEALED_FOR_ME


def _tampered(sender, clock, keys_of, change):
    s = sealed_to(sender, clock, keys_of)
    env = pb.Envelope.FromString(s.raw)
    body = sealing.parse(env.payload)
    header = pb.Header.FromString(env.header)
    change(body, header)
    return resign(sender, header, body.SerializeToString())


def _flip(data: bytes, i: int = 5) -> bytes:
    return data[:i] + bytes([data[i] ^ 1]) + data[i + 1:]


@pytest.mark.parametrize("what, change", [
    ("ciphertext", lambda b, h: setattr(b, "ciphertext", _flip(b.ciphertext))),
    ("content nonce", lambda b, h: setattr(b, "nonce", _flip(b.nonce, 0))),
    ("wrapped key", lambda b, h: setattr(b.wraps[0], "wrapped_key", _flip(b.wraps[0].wrapped_key))),
    ("ephemeral key", lambda b, h: setattr(b.wraps[0], "ephemeral", _flip(b.wraps[0].ephemeral, 40))),
    ("header: message id", lambda b, h: setattr(h, "message_id", "another")),
    ("header: reference", lambda b, h: setattr(h, "ref_message_id", "someother")),
    ("header: kind", lambda b, h: setattr(h, "kind", pb.STATUS)),
    ("header: created", lambda b, h: setattr(h, "created_ms", h.created_ms - 1)),
    ("header: priority", lambda b, h: setattr(h, "priority", 3)),
    ("no wraps", lambda b, h: b.ClearField("wraps")),
])
def test_tampering_is_refused_as_bad_seal(sender, clock, keys_of, trust, what, change):
    raw = _tampered(sender, clock, keys_of, change)
    v = envelope.verify(raw, trust, max_size=MAX, clock=clock, opener=opener(keys_of[RECEIVER]))
    with pytest.raises(Rejected) as e:
        v.payload()
    assert e.value.reason is Reason.BAD_SEAL, what
    assert MARKER not in e.value.public_text


def test_the_senders_own_wrap_needs_no_key_agreement_and_is_checked_too(sender, clock, keys_of, trust):
    s = sealed_to(sender, clock, keys_of)
    own = sealing.parse(pb.Envelope.FromString(s.raw).payload).wraps[1]
    assert own.key_id == keys_of[SENDER].key_id and not own.ephemeral and len(own.salt) == 16
    raw = _tampered(sender, clock, keys_of, lambda b, h: setattr(b.wraps[1], "salt", _flip(b.wraps[1].salt)))
    v = envelope.verify(raw, trust, max_size=MAX, clock=clock, opener=opener(keys_of[SENDER]))
    with pytest.raises(Rejected) as e:
        v.payload()
    assert e.value.reason is Reason.BAD_SEAL
    # a self-wrap carried to someone else's key opens nothing: it is keyed by the sender's private key
    def relabel(b, h):
        b.wraps[1].key_id = keys_of[RECEIVER].key_id
        del b.wraps[0]
    raw = _tampered(sender, clock, keys_of, relabel)
    v = envelope.verify(raw, trust, max_size=MAX, clock=clock, opener=opener(keys_of[RECEIVER]))
    with pytest.raises(Rejected) as e:
        v.payload()
    assert e.value.reason is Reason.BAD_SEAL


def test_a_sealed_payload_moved_under_another_senders_header_does_not_open(sender, relay, clock, keys_of, trust):
    """An insider (a relay with a valid certificate) re-signs someone else's sealed payload as its own."""
    s = sealed_to(sender, clock, keys_of)
    payload = pb.Envelope.FromString(s.raw).payload
    header = pb.Header.FromString(pb.Envelope.FromString(s.raw).header)
    header.sender = RELAY
    raw = resign(relay, header, payload)
    v = envelope.verify(raw, trust, max_size=MAX, clock=clock, opener=opener(keys_of[RECEIVER]))
    assert v.header.sender == RELAY  # its signature is fine ...
    with pytest.raises(Rejected) as e:
        v.payload()                   # ... the seal is not
    assert e.value.reason is Reason.BAD_SEAL


def test_a_sealed_payload_moved_to_another_envelope_of_the_same_sender_does_not_open(sender, clock, keys_of, trust):
    first, second = sealed_to(sender, clock, keys_of), sealed_to(sender, clock, keys_of, payload=pb.Payload(
        document=pb.Document(subject="harmless")))
    payload = pb.Envelope.FromString(first.raw).payload
    raw = resign(sender, second.header, payload)
    v = envelope.verify(raw, trust, max_size=MAX, clock=clock, opener=opener(keys_of[RECEIVER]))
    with pytest.raises(Rejected) as e:
        v.payload()
    assert e.value.reason is Reason.BAD_SEAL


def test_required_mode_refuses_to_send_in_clear_and_preferred_falls_back(sender, clock, keys_of):
    with pytest.raises(Rejected) as e:
        maker(sender, clock, keys_of[SENDER], mode="required").seal(document(), RECEIVER, "")
    assert e.value.reason is Reason.SEAL_KEY_MISSING and e.value.metadata == {"recipient": RECEIVER}
    assert maker(sender, clock, keys_of[SENDER]).seal(document(), RECEIVER, "").header.seal == pb.PLAIN
    off = maker(sender, clock, keys_of[SENDER], mode="off").seal(document(), RECEIVER, "",
                                                                 seal_to=keys_of[RECEIVER].public_der)
    assert off.header.seal == pb.PLAIN


def test_the_seal_key_is_published_in_the_signed_record_and_checked(sender, trust, keys_of):
    signed = records.make(sender, name="x", level=3, parent="p", endpoint="127.0.0.1:1", now_ms=1,
                          seal_key=keys_of[SENDER].public_der)
    assert records.verify(signed, trust).seal_key == keys_of[SENDER].public_der
    record = rpb.AgencyRecord.FromString(signed.record)
    record.seal_key = b"\x30\x03not a key"
    body = record.SerializeToString()
    with pytest.raises(Rejected) as e:
        records.verify(rpb.SignedRecord(record=body, signature=sender.sign(body)), trust)
    assert e.value.reason is Reason.MALFORMED


class _Wakes:
    def wake(self, hop: str) -> None:
        pass


def test_intake_opens_before_storing_and_refuses_a_bad_seal_with_its_reason(tmp_path, sender, receiver, clock,
                                                                            keys_of, trust):
    db = Database(tmp_path / "b.sqlite3")
    try:
        intake = Intake(db, receiver, trust, Router(RECEIVER, {SENDER: "127.0.0.1:1"}), clock, MAX,
                        queues=_Wakes(), opener=opener(keys_of[RECEIVER]))
        good = sealed_to(sender, clock, keys_of)
        bad = _tampered(sender, clock, keys_of, lambda b, h: setattr(b, "ciphertext", _flip(b.ciphertext)))
        other = sealed_to(sender, clock, keys_of, recipient=OTHER)
        other_raw = resign(sender, pb.Header(**{**{f.name: v for f, v in other.header.ListFields()},
                                                "recipient": RECEIVER}), pb.Envelope.FromString(other.raw).payload)
        results = intake.receive([good.raw, bad, other_raw], SENDER)
        assert isinstance(results[0], pb.Receipt)
        assert [r.reason for r in results[1:]] == [Reason.BAD_SEAL, Reason.NOT_SEALED_FOR_ME]
        assert inbox.get(db, good.header.message_id)["envelope"] == good.raw  # kept sealed, as signed
        assert MARKER.encode() not in Path(tmp_path / "b.sqlite3").read_bytes()
    finally:
        db.close()


def test_a_refusal_of_opened_content_does_not_quote_it_to_the_relay(tmp_path, sender, receiver, clock, keys_of,
                                                                    trust):
    db = Database(tmp_path / "b.sqlite3")

    class Picky:
        def check(self, header, payload):
            raise Rejected(Reason.INVALID_REQUEST, f"subject {payload.document.subject!r} is not allowed")

        def authorize(self, item, earlier):
            pass

        def prepare(self, item):
            return ()

    try:
        intake = Intake(db, receiver, trust, Router(RECEIVER, {SENDER: "127.0.0.1:1"}), clock, MAX,
                        queues=_Wakes(), opener=opener(keys_of[RECEIVER]), local_mail=Picky())
        [r] = intake.receive([sealed_to(sender, clock, keys_of).raw], SENDER)
        assert r.reason is Reason.INVALID_REQUEST and MARKER not in r.public_text
        [r] = intake.receive([maker(sender, clock, None).seal(document(), RECEIVER, "").raw], SENDER)
        assert MARKER in r.public_text  # in clear, the relay saw it anyway: the detail stays useful
    finally:
        db.close()


def test_load_or_create_makes_a_private_key_once(tmp_path):
    path = tmp_path / "k" / "seal.key"
    with pytest.raises(FileNotFoundError):
        sealing.load_or_create(path, create=False)
    made, fresh = sealing.load_or_create(path, create=True)
    assert fresh and oct(path.stat().st_mode & 0o777) == "0o600"
    again, fresh = sealing.load_or_create(path, create=True)
    assert not fresh and again.public_der == made.public_der


# ---- sealing at hand-over (node.exchange.late_seal) ----------------------------------------------

def _pending(s) -> outbox.Pending:
    h = s.header
    return outbox.Pending(1, h.message_id, h.sender, h.recipient, h.kind, h.priority, h.expires_ms, s.raw,
                          h.ref_message_id, h.created_ms)


@pytest.mark.parametrize("mode", ["preferred", "required"])
def test_an_envelope_kept_in_clear_is_sealed_at_hand_over_with_its_first_id_and_times(tmp_path, sender, clock,
                                                                                       keys_of, trust, mode):
    m = maker(sender, clock, keys_of[SENDER], mode)
    s = m.seal(document(), RECEIVER, RELAY, clear_ok=True)
    db = Database(tmp_path / "a.sqlite3")
    with db.transaction() as tx:
        outbox.enqueue_in(tx, s.header, s.raw, RELAY, "x", clock.now_ms())
    out = LateSealer(db, m, lambda code: keys_of[code].public_der)([_pending(s)])
    [p] = out.ready
    assert not out.waiting and not out.refused
    v = envelope.verify(p.envelope, trust, max_size=MAX, clock=clock, opener=opener(keys_of[RECEIVER]))
    assert v.header.seal == pb.SEALED_P256_AES256GCM
    assert (v.header.message_id, v.header.created_ms, v.header.expires_ms) == (
        s.header.message_id, s.header.created_ms, s.header.expires_ms)
    assert v.payload().document.subject == MARKER
    assert outbox.envelope(db, s.header.message_id) == p.envelope  # what is handed over is what is kept


def test_an_envelope_whose_key_still_cannot_be_looked_up_stays_home(tmp_path, sender, clock, keys_of):
    m = maker(sender, clock, keys_of[SENDER])
    s = m.seal(document(), RECEIVER, RELAY, clear_ok=True)

    def down(code):
        raise Rejected(Reason.UNREACHABLE, "parent did not answer")
    out = LateSealer(Database(tmp_path / "a.sqlite3"), m, down)([_pending(s)])
    assert not out.ready and not out.refused
    assert out.waiting[0][0] == s.header.message_id and "seal key" in out.waiting[0][1]


@pytest.mark.parametrize("mode, goes", [("preferred", True), ("required", False)])
def test_a_recipient_publishing_no_key_gets_clear_only_when_preferred(tmp_path, sender, clock, keys_of, mode, goes):
    m = maker(sender, clock, keys_of[SENDER], mode)
    s = m.seal(document(), RECEIVER, RELAY, clear_ok=True)
    out = LateSealer(Database(tmp_path / "a.sqlite3"), m, lambda code: b"")([_pending(s)])
    assert [p.envelope for p in out.ready] == ([s.raw] if goes else [])
    assert [r.reason for _, r in out.refused] == ([] if goes else [Reason.SEAL_KEY_MISSING])


def test_relayed_and_already_sealed_envelopes_are_not_touched(tmp_path, sender, relay, clock, keys_of):
    ours = maker(relay, clock, keys_of[RELAY])
    theirs = maker(sender, clock, keys_of[SENDER]).seal(document(), RECEIVER, RELAY, clear_ok=True)
    sealed = ours.seal(document(), RECEIVER, RELAY, seal_to=keys_of[RECEIVER].public_der)

    def never(code):
        raise AssertionError("no lookup for envelopes that are not ours to seal")
    out = LateSealer(Database(tmp_path / "r.sqlite3"), ours, never)([_pending(theirs), _pending(sealed)])
    assert [p.envelope for p in out.ready] == [theirs.raw, sealed.raw]


def test_a_batch_asks_for_each_recipients_seal_key_once(tmp_path, sender, clock, keys_of, trust):
    """A batch is mostly for one agency: its key is looked up once per batch (a directory read, or a wait
    for the tree when it is down), not once per envelope; its refusal is kept for the batch too."""
    m = maker(sender, clock, keys_of[SENDER])
    clear = [m.seal(document(), RECEIVER, RELAY, clear_ok=True) for _ in range(5)]
    db = Database(tmp_path / "a.sqlite3")
    with db.transaction() as tx:
        for s in clear:
            outbox.enqueue_in(tx, s.header, s.raw, RELAY, "x", clock.now_ms())
    asked = []
    out = LateSealer(db, m, lambda code: asked.append(code) or keys_of[code].public_der)([_pending(s) for s in clear])
    assert asked == [RECEIVER]
    for p in out.ready:
        v = envelope.verify(p.envelope, trust, max_size=MAX, clock=clock, opener=opener(keys_of[RECEIVER]))
        assert v.header.seal == pb.SEALED_P256_AES256GCM and v.payload().document.subject == MARKER
    asked.clear()

    def down(code):
        asked.append(code)
        raise Rejected(Reason.UNREACHABLE, "parent did not answer")
    out = LateSealer(db, m, down)([_pending(s) for s in clear])
    assert asked == [RECEIVER] and len(out.waiting) == 5 and not out.ready


def test_our_sealed_envelopes_pass_on_their_header_alone(tmp_path, sender, clock, keys_of, monkeypatch):
    """At each hand-over, an envelope of ours already sealed goes as it is, decided from its header (the
    leading field): the envelope is parsed whole only to be made again. One made in clear still is."""
    m = maker(sender, clock, keys_of[SENDER])
    sealed = m.seal(document(), RECEIVER, RELAY, seal_to=keys_of[RECEIVER].public_der)
    clear = m.seal(document(), RECEIVER, RELAY, clear_ok=True)
    assert envelope.own_header(sealed.raw) == sealed.header
    parsed = []
    real = pb.Envelope.FromString
    monkeypatch.setattr(pb.Envelope, "FromString", lambda raw: parsed.append(raw) or real(raw))
    db = Database(tmp_path / "a.sqlite3")
    with db.transaction() as tx:
        outbox.enqueue_in(tx, clear.header, clear.raw, RELAY, "x", clock.now_ms())
    out = LateSealer(db, m, lambda code: keys_of[code].public_der)([_pending(sealed), _pending(clear)])
    assert out.ready[0].envelope == sealed.raw
    assert pb.Header.FromString(real(out.ready[1].envelope).header).seal == pb.SEALED_P256_AES256GCM
    assert parsed == [clear.raw]  # the sealed one was not parsed; the clear one once, to be made again


@pytest.mark.parametrize("mode", ["preferred", "required"])
@pytest.mark.parametrize("reason", [Reason.NOT_REGISTERED_YET, Reason.UNKNOWN_RECIPIENT])
def test_a_recipient_the_tree_has_no_record_of_is_kept_home_in_every_mode(tmp_path, sender, clock, keys_of, mode,
                                                                          reason):
    """A relay's word that there is no record is no record without a seal key: under `preferred` too the
    envelope waits here (issue 18: any relay on the way could otherwise read mail for agencies below it that
    have not registered, by answering NOT_REGISTERED_YET)."""
    m = maker(sender, clock, keys_of[SENDER], mode)
    s = m.seal(document(), RECEIVER, RELAY, clear_ok=True)

    def no_record(code):
        raise Rejected(reason, f"{code} has not registered (yet)")
    out = LateSealer(Database(tmp_path / "a.sqlite3"), m, no_record)([_pending(s)])
    assert not out.ready and not out.waiting and not out.refused
    assert [d[0] for d in out.deferred] == [s.header.message_id]


def test_mail_kept_home_for_a_recipient_that_never_registers_ends_in_a_notice_after_park_for(tmp_path, sender, clock,
                                                                                              keys_of):
    """Parking at the sender is bounded like parking at a relay (limits.park_for): then UNKNOWN_RECIPIENT."""
    m = maker(sender, clock, keys_of[SENDER], "required")
    s = m.seal(document(), RECEIVER, RELAY, clear_ok=True)

    def not_yet(code):
        raise Rejected(Reason.NOT_REGISTERED_YET, f"{code} has not registered (yet)")
    sealer = LateSealer(Database(tmp_path / "a.sqlite3"), m, not_yet)
    clock.advance(m.limits.park_for)
    assert [d[0] for d in sealer([_pending(s)]).deferred] == [s.header.message_id]  # not past it yet
    clock.advance(1)
    out = sealer([_pending(s)])
    assert not out.ready and not out.deferred
    assert [(p.message_id, r.reason) for p, r in out.refused] == [(s.header.message_id, Reason.UNKNOWN_RECIPIENT)]
