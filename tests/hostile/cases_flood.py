"""Stalls, floods and amplification (issue 18, items 1, 2, 3, 11): what one peer can make the victim do.

A child that answers lookups slowly holds at most `lookups_down_per_child` of D's workers and each asker
`registry_calls_per_peer`, while honest mail is delivered; a call that would make D check thousands of
signatures is refused before the first (rows, records and marks per call, a signature budget per peer);
listings are for neighbours; registrations, heartbeats and checkpoints have a rate; a parking quota is
the origin's, and a relay's PARK_FULL holds back only the envelopes it is about.
"""
from __future__ import annotations

import threading
import time

import grpc

from node.pb import envelope_pb2 as pb
from node.pb import exchange_pb2 as xpb
from node.pb import registry_pb2 as rpb

from .core import Observed, call, case, hold_streams, refused
from .world import (C1, D, G, HELD, M, M2, P, R, TABLES, TIMEOUT, X, issue, message_id_of, poll, relayed,
                    seal)

LOOKUP = "Registry.Lookup → D, for codes below M (M answers slowly)"
BUSY = {"PEER_BUSY", "REGISTRY_BUSY", "CHILD_BUSY"}
YEAR_S = 365 * 86400


def below_m(i: int) -> str:
    return f"{100 + i:03d}.23.35.H53"  # below M by the code rule: D asks M


class Stalled:
    """M holds every lookup it is asked until released (or TIMEOUT), as a slow or hostile child would."""

    def __init__(self, s) -> None:
        self.fake, self.released = s.w.fake, threading.Event()

        def hold(request, context):  # counted in fake.lookups by the fake itself
            self.released.wait(TIMEOUT)
            context.abort(grpc.StatusCode.UNAVAILABLE, "slow M")
        self._hold = hold

    def __enter__(self) -> "Stalled":
        self.asked = len(self.fake.lookups)
        self.fake.on_lookup = self._hold
        return self

    def reached(self) -> int:
        with self.fake._cond:
            return len(self.fake.lookups) - self.asked

    def __exit__(self, *exc) -> None:
        self.released.set()
        self.fake.reset()


def outcomes(calls) -> list[Observed]:
    seen = []
    for f in calls:
        try:
            f.result()
            seen.append(Observed("OK"))
        except grpc.RpcError as e:
            seen.append(refused(e))
    return seen


@case("flood", "40 lookups from four askers through a child that never answers, while honest mail flows",
      "RESOURCE_EXHAUSTED", "CHILD_BUSY", via=LOOKUP)
def _(s):
    w = s.w
    with Stalled(s) as m:
        asked = [w.registry(who).Lookup.future(rpb.LookupRequest(code=below_m(10 * k + i)), timeout=TIMEOUT)
                 for i in range(10) for k, who in enumerate((X, R, G, M2))]
        poll("M holds two of D's lookups", lambda: m.reached() >= 2)
        poll("the rest refused at once", lambda: sum(f.done() for f in asked) >= len(asked) - 2)
        probe = call(w.registry(C1).Lookup, rpb.LookupRequest(code=below_m(99)))  # a neighbour asks, too late
        # honest mail through D while M holds what it may: handed over, taken, answered with its 01
        sent = w.api(C1).send(pb.Document(subject="Trong lúc bị nghẽn"), [D]).envelopes[0].message_id
        poll("D took C1's mail during the stall", lambda: w.rows(D, f"SELECT 1 FROM inbox WHERE message_id = '{sent}'"))
        assert m.reached() == 2, f"D passed {m.reached()} questions down to M (limits.lookups_down_per_child 2)"
    seen = outcomes(asked)
    refusals = {o.reason for o in seen if o.status != "OK"}
    assert refusals <= BUSY | {"UNREACHABLE"} and refusals & BUSY, refusals  # the held two end UNREACHABLE
    return probe.allowing(sent)


@case("flood", "one asker's third registry call at once", "RESOURCE_EXHAUSTED", "PEER_BUSY", via=LOOKUP)
def _(s):
    w = s.w
    with Stalled(s) as m:
        held = [w.registry(R).Lookup.future(rpb.LookupRequest(code=below_m(i)), timeout=TIMEOUT) for i in (60, 61)]
        poll("M holds R's two lookups", lambda: m.reached() >= 2)
        third = call(w.registry(R).Lookup, rpb.LookupRequest(code=D))  # answered at once by D itself, were it let in
    outcomes(held)
    return third


@case("flood", "a heartbeat of 1001 signed counter rows (D's limit: 1000)", "INVALID_ARGUMENT", "OVER_LIMIT",
      via="Registry.Heartbeat, M → D")
def _(s):
    try:
        s.w.heartbeat(M, rows=[s.w.own_stats(M)] * 1001)
    except grpc.RpcError as e:
        return refused(e)
    return Observed("OK")


@case("flood", "a heartbeat claiming 1001 odd codes (the limit: 1000)", "INVALID_ARGUMENT", "OVER_LIMIT",
      via="Registry.Heartbeat, M → D")
def _(s):
    try:  # each claim would be checked, stored and re-routed: refused before any is read
        s.w.heartbeat(M, odd={f"odd.{i}.{M}": M for i in range(1001)})
    except grpc.RpcError as e:
        return refused(e)
    return Observed("OK")


@case("flood", "heartbeats of 1000 rows each, past the peer's signature budget", "RESOURCE_EXHAUSTED",
      "SIGNATURE_BUDGET", via="Registry.Heartbeat, M2 → D")
def _(s):
    rows = [s.w.own_stats(M2)] * 1000
    for _ in range(8):  # D's budget: a burst of 4000, then 100/s (tests/hostile/world.py)
        try:
            s.w.heartbeat(M2, odd={HELD: M2}, rows=rows)
        except grpc.RpcError as e:
            # the heartbeats within the budget report M2's own counters, which D carries up to P on its next
            poll("P holds M2's counters", lambda: (D, M2) in s.w.rows(P, TABLES["subtree_stats"]))
            return refused(e).allowing(M2)
    return Observed("OK")


@case("flood", "a batch with 4200 relay marks, refused whole before any is checked", "INVALID_ARGUMENT",
      "OVER_LIMIT", via="Exchange.DeliverBatch, M → D")
def _(s):
    env = pb.Envelope.FromString(relayed(seal(s.w.signer(G), D)[1], s.w.signer(M)))
    env.trace.extend([pb.TraceEntry(body=b"junk", signature=b"junk", cert_der=b"junk")] * 13)
    raw = env.SerializeToString()
    [(seq,)] = s.w.rows(D, "SELECT coalesce(max(seq), 0) FROM audit")
    o = call(s.w.exchange(M).DeliverBatch, xpb.DeliverBatchRequest(envelopes=[raw] * 300))
    [(rows,)] = s.w.rows(D, f"SELECT count(*) FROM audit WHERE seq > {seq} AND message_id = '{message_id_of(raw)}'")
    assert rows == 0, f"{rows} audit rows for a batch refused whole"
    return o


@case("flood", "a listing asked by a certificate holder who is no neighbour", "PERMISSION_DENIED", "NOT_A_NEIGHBOUR",
      via="Registry.Children, X → D")
def _(s):
    return call(s.w.registry(X).Children, rpb.ChildrenRequest(code=D, recursive=True))


@case("flood", "a child's listing of 5001 records", "INVALID_ARGUMENT", "OVER_LIMIT",
      via="Registry.Children, M2 → D, for M's subtree (M answers)")
def _(s):
    w = s.w
    entry = rpb.DirectoryEntry(record=rpb.SignedRecord(record=b"r", signature=b"s"))  # unchecked: never read
    w.fake.on_children = lambda request, context: rpb.ChildrenResponse(entries=[entry] * 5001)
    try:
        return call(w.registry(M2).Children, rpb.ChildrenRequest(code=M))
    finally:
        w.fake.reset()


def flooded(calls: int, attempt) -> Observed:
    """`calls` in a row (never two at once); the first refusal other than the call's own, or OK."""
    seen = []
    for _ in range(calls):
        try:
            attempt()
        except grpc.RpcError as e:
            seen.append(refused(e))
            if seen[-1].reason == "RATE_LIMITED":
                return seen[-1]
    return Observed("OK", ", ".join(sorted({o.reason for o in seen})))


@case("flood", "registrations faster than the rate", "RESOURCE_EXHAUSTED", "RATE_LIMITED",
      via="Registry.Register, R → D")
def _(s):
    record = s.w.record(R)
    return flooded(200, lambda: s.w.registry(R).Register(record, timeout=TIMEOUT))


@case("flood", "checkpoints faster than the rate", "RESOURCE_EXHAUSTED", "RATE_LIMITED",
      via="Registry.Checkpoint, X → D")
def _(s):
    return flooded(200, lambda: s.w.registry(X).Checkpoint(rpb.SignedCheckpoint(body=b"x", signature=b"x"),
                                                           timeout=TIMEOUT))


@case("flood", "heartbeats faster than the rate", "RESOURCE_EXHAUSTED", "RATE_LIMITED",
      via="Registry.Heartbeat, M2 → D")
def _(s):
    return flooded(200, lambda: s.w.heartbeat(M2, odd={HELD: M2}, rows=[]))


# ---- parking: quotas by origin, held back one by one ---------------------------------------------------

@case("flood", "an origin's junk for unregistered codes fills its own quota, not the relay's", "RESOURCE_EXHAUSTED",
      "PARK_FULL", via="Exchange.Deliver, M → D (G's and another origin's mail)")
def _(s):
    w = s.w
    g, m = w.signer(G), w.signer(M)
    junk = [seal(g, f"000.{50 + i}.35.H53", lifetime_s=10 * YEAR_S) for i in range(3)]
    seen = [call(w.exchange(M).Deliver, xpb.DeliverRequest(envelope=relayed(raw, m))) for _, raw in junk]
    assert [o.reason for o in seen[:2]] == ["", ""], seen  # parked: G's quota (2 in this world) ...
    other = issue(w.ca_dir, w.root / "origins" / "002.23.35.H53", "002.23.35.H53")  # another agency below M
    header, raw = seal(other.signer, "000.53.35.H53", lifetime_s=3600)
    ok = call(w.exchange(M).Deliver, xpb.DeliverRequest(envelope=relayed(raw, m)))
    assert ok.status == "OK", ok  # ... but the same relay still carries another origin's
    parked = w.rows(D, f"SELECT message_id, parked_by FROM outbox WHERE parked_by IN ('{G}', '{other.code}')")
    assert {(h.message_id, G) for h, _ in junk[:2]} | {(header.message_id, other.code)} <= parked, parked
    return seen[2].allowing(header.message_id, *(h.message_id for h, _ in junk[:2]))


@case("flood", "a relay's PARK_FULL holds back those envelopes, not the hop, and heartbeats do not release them",
      "RESOURCE_EXHAUSTED", "PARK_FULL", via="Exchange.DeliverBatch, D → M (M's answer)", prepares=True)
def _(s):
    w = s.w
    junk: set[str] = set()

    def answer(raws):
        receipts = w.fake.receipts(raws)
        return xpb.DeliverBatchResponse(outcomes=[
            xpb.Outcome(rejection=xpb.Rejection(reason="PARK_FULL", message="full"))
            if message_id_of(r) in junk else o for r, o in zip(raws, receipts.outcomes)])
    w.fake.on_deliver = lambda raws: answer(raws)
    admin = w.api(D).admin
    admin.hold(M)  # so that M sees the envelope only once it is named as the one to refuse
    try:
        junk.update(m.message_id for m in w.api(D).send(pb.Document(subject="bị từ chối"), [M]).envelopes)
    finally:
        admin.release(M)
    [held] = junk
    s.begin()
    try:
        w.fake.wait_deliveries(held, 3)  # refused three times, each after its own backoff
        [(failures,)] = w.rows(D, f"SELECT coalesce(max(failures), 0) FROM peer_state WHERE code = '{M}'")
        assert failures == 0, f"D backed off the whole hop to M ({failures} failures) for one envelope"
        poll("D holds the envelope back", lambda: w.rows(
            D, f"SELECT 1 FROM outbox WHERE message_id = '{held}' AND retry_after_ms > {int(time.time() * 1000) + 300}"))
        [(until,)] = w.rows(D, f"SELECT retry_after_ms FROM outbox WHERE message_id = '{held}'")
        w.heartbeat(M)  # M is alive: that resets a link's backoff, not this envelope's
        [(after,)] = w.rows(D, f"SELECT retry_after_ms FROM outbox WHERE message_id = '{held}'")
        assert after == until, (until, after)
        other = w.api(D).send(pb.Document(subject="thư khác"), [M]).envelopes[0].message_id
        w.fake.wait_deliveries(other, 1)  # the hop's other mail goes meanwhile
        poll("D's other mail delivered", lambda: w.rows(D, f"SELECT 1 FROM outbox WHERE message_id = '{other}'"
                                                            " AND state = 'delivered'"))
    finally:
        junk.clear()  # M takes it now: nothing left in flight for the next case
        w.fake.reset()
    poll("the held-back envelope delivered", lambda: w.rows(D, f"SELECT 1 FROM outbox WHERE message_id = '{held}'"
                                                               " AND state = 'delivered'"), timeout=15)
    return Observed("RESOURCE_EXHAUSTED", "PARK_FULL").allowing(held, other)


@case("flood", "M holds every hand-over from D (until its deadline) while D's agency sends to C1", "OK",
      "C1's mail delivered during the stall", via="Exchange.DeliverBatch, D → M (M holds it)", prepares=True)
def _(s):
    """D's next hops share a few send workers (node/exchange/send_pool.py): a hop whose peer holds the call holds
    at most WINDOW of them, never the pool, so D's other hops go on."""
    w = s.w
    released, held = threading.Event(), threading.Semaphore(0)

    def hold(raws):
        held.release()
        released.wait(TIMEOUT)
        return w.fake.receipts(raws)
    w.fake.on_deliver = hold
    d = w.api(D)
    to_m = [d.send(pb.Document(subject=f"cho M {i}"), [M]).envelopes[0].message_id for i in range(3)]
    s.begin()  # D's own sends are the setting, not the attack
    try:
        assert held.acquire(timeout=TIMEOUT), "D never handed its mail to M"
        sent = d.send(pb.Document(subject="cho xã 21"), [C1]).envelopes[0].message_id
        poll("C1 took D's mail while M holds D's", lambda: w.rows(C1, f"SELECT 1 FROM inbox WHERE message_id = '{sent}'"))
    finally:
        released.set()  # M answers now: nothing left in flight for the next case
        w.fake.reset()
    poll("D's mail to M delivered once M answered", lambda: len(w.rows(
        D, "SELECT message_id FROM outbox WHERE state = 'delivered' AND message_id IN (%s)" % ",".join(f"'{m}'" for m in to_m)))
        == len(to_m), timeout=45)
    return Observed("OK", "C1's mail delivered during the stall").allowing(sent, *to_m)


def _watching(stub, most: int) -> tuple[list, Observed]:
    """Health Watch streams on D's peer port until one is refused (each holds one of D's peer workers)."""
    from grpc_health.v1 import health_pb2
    return hold_streams(lambda: stub.Watch(health_pb2.HealthCheckRequest(), timeout=4 * TIMEOUT), most)


@case("flood", "peers hold health Watch streams on D's peer port until refused, while honest mail flows",
      "RESOURCE_EXHAUSTED", "TOO_MANY_STREAMS", via="grpc.health.v1.Health.Watch → D, as M, X, R, G")
def _(s):
    """grpcio's health Watch holds one of D's 16 peer workers for as long as the caller listens. D gives them a
    few places (node/peer_gate.py: HEALTH_WATCHES_PER_PEER per peer, HEALTH_WATCHES in all), refusing the next
    at once; delivery keeps its workers: C1's mail reaches D while every place is held."""
    from grpc_health.v1 import health_pb2_grpc as hgrpc

    from node.peer_gate import HEALTH_WATCHES, HEALTH_WATCHES_PER_PEER
    w = s.w
    streams, seen = [], []
    try:
        held, first = _watching(hgrpc.HealthStub(w.channel(M, D)), HEALTH_WATCHES_PER_PEER + 1)
        streams += held
        seen.append(first)
        for who in (X, R, G):  # more peers, each within its own few: the places of all run out
            held, o = _watching(hgrpc.HealthStub(w.channel(who, D)), HEALTH_WATCHES_PER_PEER)
            streams += held
            seen.append(o)
        assert len(streams) <= HEALTH_WATCHES, f"peers hold {len(streams)} health Watch streams at D"
        assert any(o.reason == "TOO_MANY_STREAMS" for o in seen[1:]), seen  # all places taken: the next peer too
        sent = w.api(C1).send(pb.Document(subject="Trong lúc bị giữ luồng"), [D]).envelopes[0].message_id
        poll("D took C1's mail while peers hold its health Watch places",
             lambda: w.rows(D, f"SELECT 1 FROM inbox WHERE message_id = '{sent}'"))
    finally:
        for stream in streams:
            stream.cancel()
    return first.allowing(sent)
