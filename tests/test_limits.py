"""Limits on what a peer or a client controls: each refusal names the limit, and nothing is done."""
from __future__ import annotations

import pytest

from node.errors import Reason, Rejected
from node.exchange.intake import Intake
from node.exchange.outgoing import EnvelopeMaker, Outgoing
from node.exchange.routing import Router
from node.limits import Limits, RateLimiter
from node.pb import envelope_pb2 as pb
from node.store import outbox
from node.store.database import Database

A, B = "000.00.01.H53", "000.00.02.H53"
SMALL = Limits(recipients_per_send=3, attachments_per_document=2, attachment_name_length=10, envelopes_per_batch=4)


class Nobody:
    def wake(self, hop: str) -> None:
        pass

    def refuse(self, *a) -> None:
        raise AssertionError("nothing may be refused here")


@pytest.fixture
def db(tmp_path):
    d = Database(tmp_path / "a.sqlite3")
    yield d
    d.close()


@pytest.fixture
def outgoing(db, pki, clock):
    router = Router(A, {f"000.00.{n:02d}.H53": "127.0.0.1:1" for n in range(2, 12)})
    maker = EnvelopeMaker(pki.signer(A), router, clock, lifetime_s=60, max_size=1 << 20, limits=SMALL)
    return Outgoing(db, maker, Nobody(), Nobody())


def refusal(call, *args, **kw) -> Rejected:
    with pytest.raises(Rejected) as e:
        call(*args, **kw)
    return e.value


def test_too_many_recipients_are_refused_before_any_lookup_and_nothing_is_queued(outgoing, db):
    asked = []
    outgoing.lookup = asked.append
    recipients = [f"000.00.{n:02d}.H53" for n in range(2, 6)]
    r = refusal(outgoing.post, pb.Payload(document=pb.Document(subject="x")), recipients)
    assert (r.reason, r.field, r.metadata) == (Reason.OVER_LIMIT, "recipients", {"limit": "3", "count": "4"})
    assert asked == [] and outbox.counts(db) == {}


@pytest.mark.parametrize("doc, field", [
    (pb.Document(subject="x", attachments=[pb.Attachment(name=f"{i}.pdf") for i in range(3)]), "document.attachments"),
    (pb.Document(subject="x", attachments=[pb.Attachment(name="a" * 11)]), "document.attachments[0].name"),
])
def test_attachments_over_the_limit_are_refused(outgoing, db, doc, field):
    r = refusal(outgoing.post, pb.Payload(document=doc), [B])
    assert (r.reason, r.field, r.metadata["limit"]) == (Reason.OVER_LIMIT, field, ("2", "10")[field.endswith("name")])
    assert r.metadata["count"] == ("3", "11")[field.endswith("name")]
    assert outbox.counts(db) == {}


def test_a_batch_over_the_limit_is_refused_whole_before_anything_is_read(tmp_path, pki, clock):
    d = Database(tmp_path / "b.sqlite3")
    try:
        intake = Intake(d, pki.signer(B), pki.trust(clock), Router(B, {A: "127.0.0.1:1"}), clock, 1 << 20,
                        queues=Nobody(), limits=SMALL)
        r = refusal(intake.receive, [b"not even an envelope"] * 5, A)
        assert (r.reason, r.metadata) == (Reason.OVER_LIMIT, {"limit": "4", "count": "5"})
        assert len(intake.receive([b"junk"] * 4, A)) == 4  # at the limit: each one gets its own outcome
    finally:
        d.close()


def test_lookups_are_rate_limited_per_peer():
    now = [0.0]
    limiter = RateLimiter(rate=2, burst=3, now=lambda: now[0])
    assert [limiter.take("x") for _ in range(4)] == [True, True, True, False]
    assert limiter.take("y")           # another peer has its own bucket
    now[0] += 0.5                      # one token back after half a second at 2/s
    assert [limiter.take("x") for _ in range(2)] == [True, False]
    r = refusal(limiter.check, "x", "registry lookups")
    assert r.reason is Reason.RATE_LIMITED and not r.reason.permanent


def test_new_keys_past_the_cap_evict_the_least_recent_bucket_and_reset_no_one_elses():
    """Keys past `max_keys` once emptied the whole map: a caller that ran its bucket dry could fill the map
    with fresh keys and come back with a full bucket. Now only the least recently used bucket goes."""
    now = [0.0]
    limiter = RateLimiter(rate=0.001, burst=2, now=lambda: now[0], max_keys=3)
    assert [limiter.take("x") for _ in range(3)] == [True, True, False]
    assert limiter.take("k1") and limiter.take("k2")  # the map is full: x, k1, k2
    assert not limiter.take("x")                       # still dry, and now the most recent
    assert limiter.take("k3")                          # evicts k1, the least recent
    assert not limiter.take("x")
    assert limiter.take("k4") and limiter.take("k5") and limiter.take("k6")  # x, the least recent by now, goes
    assert limiter.take("x")                           # a bucket not seen for three newer keys starts full


def test_a_peers_signature_budget_is_charged_whole_before_any_check():
    from node.limits import SignatureBudget
    now = [0.0]
    budget = SignatureBudget(Limits(signatures_per_second=100, signature_burst=1000), now=lambda: now[0])
    budget.charge("x", 900, "heartbeat counters")
    r = refusal(budget.charge, "x", 200, "heartbeat counters")  # all or nothing: 100 left, 200 asked
    assert r.reason is Reason.SIGNATURE_BUDGET and not r.reason.permanent and "signatures_per_second" in r.detail
    budget.charge("y", 1000, "envelopes")  # another peer has its own budget
    now[0] += 1.0                          # 100 back after a second
    budget.charge("x", 200, "heartbeat counters")
    budget.charge(None, 10**9, "plain text")  # no certificate, no peer to charge (tests' plain-text mode)


def test_calls_in_flight_are_bounded_per_key_and_given_back():
    from node.limits import InFlight
    slots = InFlight(2)
    busy = lambda: Rejected(Reason.PEER_BUSY, "busy")  # noqa: E731
    with slots.holding("x", busy), slots.holding("x", busy):
        assert refusal(lambda: slots.holding("x", busy).__enter__()).reason is Reason.PEER_BUSY
        with slots.holding("y", busy):  # another key is counted apart
            pass
    with slots.holding("x", busy), slots.holding("x", busy):  # both given back, also after a refusal
        pass
    assert not slots._count  # idle keys take no room


def test_places_are_a_keys_few_within_every_keys_total():
    """node.limits.Places: Watch streams (an agency's on a host, a peer's health Watch) counted in one InFlight;
    both bounds taken together or neither, and given back together."""
    from node.limits import InFlight, Places
    counter = InFlight(0)  # its own bound is not used: each key brings its own
    a, b = Places(counter, "a", 2, 3), Places(counter, "b", 2, 3)
    assert [a.take(), a.take(), a.take()] == [None, None, "own"]
    assert [b.take(), b.take()] == [None, "total"]
    assert counter.count("b") == 1 and counter.count("*") == 3  # the refused take held nothing
    a.release()
    assert b.take() is None
    for p in (a, b, b):
        p.release()
    assert not counter._count  # all given back


def test_identical_signed_bytes_are_verified_once_and_a_bad_signature_never_counts(pki):
    from node.identity import keys
    signer = pki.signer(A)
    data = b"counters"
    sig = signer.sign(data)
    checked = []

    class Counting:  # the signer's public key, counting the real checks
        def __init__(self, inner):
            self.inner = inner

        def verify(self, *a):
            checked.append(1)
            return self.inner.verify(*a)

        def public_bytes(self, *a):
            return self.inner.public_bytes(*a)
    public = Counting(signer.key.public_key())
    assert keys.verify(public, sig, data) and keys.verify(public, sig, data)
    assert len(checked) == 1  # the second time from what was verified
    assert not keys.verify(public, sig, data + b"!") and not keys.verify(public, sig, data + b"!")
    assert len(checked) == 3  # a failure is never remembered as good


def test_relay_marks_are_bounded_per_batch_before_any_signature_is_checked(tmp_path, pki, clock):
    d = Database(tmp_path / "b.sqlite3")
    try:
        intake = Intake(d, pki.signer(B), pki.trust(clock), Router(B, {A: "127.0.0.1:1"}), clock, 1 << 20,
                        queues=Nobody(), limits=Limits(marks_per_batch=10))
        env = pb.Envelope(trace=[pb.TraceEntry(body=b"x", signature=b"x", cert_der=b"x")] * 4)
        r = refusal(intake.receive, [env.SerializeToString()] * 3, A)  # 12 marks, none checked
        assert (r.reason, r.metadata) == (Reason.OVER_LIMIT, {"limit": "10", "count": "12"}) and "relay marks" in r.detail
        assert len(intake.receive([env.SerializeToString()] * 2, A)) == 2  # 8: each its own outcome
    finally:
        d.close()
