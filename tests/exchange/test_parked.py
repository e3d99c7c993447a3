"""Parked mail: a relay takes envelopes for codes the code rule places below it whose child has not
registered (yet), within a per-peer quota, and tells the sender after `limits.park_for` if nobody came.

A real Intake and Dispatcher over their own SQLite file at the relay D; envelopes sealed with real
keys; time is a FakeClock (node.clock), so the end of a park is reached by advancing it."""
from __future__ import annotations

import random

import pytest

from node import envelope
from node.exchange.dispatcher import Dispatcher
from node.exchange.hop import RetryPolicy
from node.exchange.intake import Intake
from node.exchange.outgoing import EnvelopeMaker
from node.exchange.routing import Router
from node.errors import Reason
from node.limits import Limits
from node.pb import envelope_pb2 as pb
from node.store import outbox
from node.store.database import Database

D, C1, C2 = "000.00.35.H53", "000.21.35.H53", "000.22.35.H53"
NOBODY, LATER = "000.29.35.H53", "000.30.35.H53"  # below D by the code rule; only LATER ever registers
LIMITS = Limits(parked_per_origin=2, park_for=86400.0)


class Wakes:
    def __init__(self) -> None:
        self.hops: list[str] = []

    def wake(self, hop: str) -> None:
        self.hops.append(hop)


@pytest.fixture
def relay(tmp_path, pki, clock):
    db = Database(tmp_path / "d.sqlite3")
    endpoints = {C1: "127.0.0.1:1", C2: "127.0.0.1:2"}  # C1, C2 registered; NOBODY and LATER not
    router = Router(D, {}, child_endpoint=endpoints.get)
    trust = pki.trust(clock)
    wakes = Wakes()
    intake = Intake(db, pki.signer(D), trust, router, clock, 1 << 20, queues=wakes, limits=LIMITS)
    maker = EnvelopeMaker(pki.signer(D), router, clock, lifetime_s=3600, max_size=1 << 20, limits=LIMITS)
    sent = []
    disp = Dispatcher(db, maker, trust, router, clock, lambda hop, address, raws: sent.append(hop) or [],
                      RetryPolicy(), rng=random.Random(1))

    class Relay:
        pass

    r = Relay()
    r.db, r.intake, r.disp, r.endpoints, r.wakes, r.sent = db, intake, disp, endpoints, wakes, sent
    yield r
    db.close()


def mail(pki, clock, sender: str, to: str, lifetime_s: float = 10 * 365 * 86400) -> tuple[pb.Header, bytes]:
    return envelope.seal(pki.signer(sender), to, pb.Payload(document=pb.Document(subject="thư")), clock=clock,
                         lifetime_s=lifetime_s)


def test_mail_for_a_child_not_registered_is_parked_within_the_peers_quota(relay, pki, clock):
    """An insider's mail for made-up codes is taken up to its quota, then refused for now (transient: it
    keeps it); a retry of one taken gets its receipt; another peer's quota is its own."""
    batch = [mail(pki, clock, C1, NOBODY) for _ in range(3)]
    out = relay.intake.receive([raw for _, raw in batch], C1)
    assert [isinstance(o, pb.Receipt) for o in out] == [True, True, False]
    assert out[2].reason is Reason.PARK_FULL and not out[2].reason.permanent
    assert "limits.parked_per_origin" in out[2].detail
    assert outbox.parked_usage(relay.db, C1)[0] == 2
    assert outbox.get(relay.db, batch[2][0].message_id) is None  # nothing kept of the refused one
    assert isinstance(relay.intake.receive([batch[0][1]], C1)[0], pb.Receipt)  # the same envelope again
    assert isinstance(relay.intake.receive([mail(pki, clock, C2, NOBODY)[1]], C2)[0], pb.Receipt)  # C2's quota
    # mail for a registered child is not parked, so never refused by the quota
    assert isinstance(relay.intake.receive([mail(pki, clock, C1, C2)[1]], C1)[0], pb.Receipt)
    assert outbox.parked_usage(relay.db, C1)[0] == 2
    # a hop with no address is never woken: a sender (two threads) per invented code would be the attack
    relay.disp.wake(NOBODY)
    assert NOBODY not in relay.disp._hops


def test_a_park_that_ends_without_a_registration_becomes_a_non_delivery_notice(relay, pki, clock):
    """After limits.park_for the sender is told (UNKNOWN_RECIPIENT, a notice back towards it); an envelope
    whose child registered meanwhile is queued as any other; the envelope's own expiry comes first if sooner."""
    nobody, later, short = (mail(pki, clock, C1, NOBODY), mail(pki, clock, C1, LATER),
                            mail(pki, clock, C2, NOBODY, lifetime_s=600))
    out = relay.intake.receive([nobody[1], later[1]], C1) + relay.intake.receive([short[1]], C2)
    assert all(isinstance(o, pb.Receipt) for o in out)
    assert outbox.get(relay.db, short[0].message_id)["park_until_ms"] == short[0].expires_ms  # bounded by expiry
    assert outbox.get(relay.db, nobody[0].message_id)["park_until_ms"] == clock.now_ms() + 86400 * 1000
    clock.advance(86400 - 1)
    assert relay.disp.expire_due() == 1  # only the short-lived one: its lifetime ended (EXPIRED)
    assert outbox.get(relay.db, short[0].message_id)["state"] == "expired"
    assert outbox.get(relay.db, nobody[0].message_id)["state"] == "pending"
    relay.endpoints[LATER] = "127.0.0.1:3"  # LATER registered meanwhile
    clock.advance(2)
    assert relay.disp.expire_due() == 1
    row = outbox.get(relay.db, nobody[0].message_id)
    assert row["state"] == "rejected" and row["reason"].startswith("UNKNOWN_RECIPIENT")
    assert "limits.park_for" in row["reason"]
    notices = [r for r in relay.db.query("SELECT message_id, recipient, next_hop, kind FROM outbox WHERE kind = ?",
                                          (pb.NOTICE,))]
    # one notice for each given up, back towards its sender: the expired one (C2's) and the one nobody took (C1's)
    assert sorted((n["recipient"], n["next_hop"]) for n in notices) == [(C1, C1), (C2, C2)]
    kept = outbox.get(relay.db, later[0].message_id)
    assert (kept["state"], kept["parked_by"], kept["park_until_ms"]) == ("pending", None, None)  # queued as usual
    assert outbox.parked_usage(relay.db, C1) == (0, 0)
    assert relay.disp.expire_due() == 0  # nothing twice


def test_the_bytes_quota_refuses_too(tmp_path, pki, clock):
    """limits.parked_bytes_per_origin bounds the parked bytes as parked_per_origin bounds their number."""
    db = Database(tmp_path / "d.sqlite3")
    try:
        router = Router(D, {}, child_endpoint={C1: "127.0.0.1:1"}.get)
        one = mail(pki, clock, C1, NOBODY)[1]
        intake = Intake(db, pki.signer(D), pki.trust(clock), router, clock, 1 << 20, queues=Wakes(),
                        limits=Limits(parked_per_origin=100, parked_bytes_per_origin=len(one) * 3))
        out = intake.receive([mail(pki, clock, C1, NOBODY)[1] for _ in range(4)], C1)
        taken = [o for o in out if isinstance(o, pb.Receipt)]
        assert 1 <= len(taken) < 4 and out[-1].reason is Reason.PARK_FULL  # the relay's copy is a little larger
        assert outbox.parked_usage(db, C1)[1] <= len(one) * 3
    finally:
        db.close()


def test_a_relay_hands_on_the_bytes_it_took_plus_its_mark(relay, pki, clock):
    """A relay does not re-encode what it hands on: the queued bytes are the received ones with one trace
    record appended (envelope.append_trace), which verifies with the relay as the last hop. The sender wrote
    its fields in another order than protobuf's (allowed: the signature covers the header's bytes), so
    re-encoding would show."""
    header, canonical = mail(pki, clock, C1, C2)
    env = pb.Envelope.FromString(canonical)
    raw = b"".join(pb.Envelope(**{name: getattr(env, name)}).SerializeToString()
                   for name in ("payload", "sender_cert", "signature", "header"))
    assert raw != canonical and len(raw) == len(canonical)
    assert isinstance(relay.intake.receive([raw], C1)[0], pb.Receipt)
    [queued] = outbox.next_batch(relay.db, C2, 10, 1 << 20)
    assert queued.envelope.startswith(raw) and len(queued.envelope) > len(raw)
    tail = pb.Envelope.FromString(queued.envelope[len(raw):])  # the appended bytes alone: one trace entry
    assert (tail.header, tail.payload, len(tail.trace)) == (b"", b"", 1)
    assert pb.TraceBody.FromString(tail.trace[0].body).code == D
    v = envelope.verify(queued.envelope, pki.trust(clock), max_size=1 << 20, clock=clock)
    assert v.path == [(C1, header.created_ms), (D, clock.now_ms())]
