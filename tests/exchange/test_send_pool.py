"""Hop senders as tasks on a bounded, shared send pool (node/exchange/send_pool.py).

Real dispatchers over real SQLite files and keys; only the wire is a function, which answers,
refuses or hangs until the test lets it go. Nothing sleeps: the tests wait on events.
"""
from __future__ import annotations

import random
import threading

import pytest

from node.exchange.dispatcher import Dispatcher, shared_send_pool
from node.exchange.hop import WINDOW, RetryPolicy, SendLimits
from node.exchange.outgoing import EnvelopeMaker, Outgoing
from node.exchange.routing import Router
from node.exchange.send_pool import SendPool, Step
from node.transport.interface import TransportError
from node.pb import envelope_pb2 as pb
from node.pb import exchange_pb2 as xpb
from node.store import outbox
from node.store.database import Database

POLICY = RetryPolicy(first_delay=2.0, multiplier=3.0, max_delay=60.0, jitter=(1.0, 1.0))
WAIT = 30  # seconds an event may take under load before the test fails


class NoWakes:
    """Posting does not wake the hops: each test wakes them itself."""

    def wake(self, hop: str) -> None:
        pass


def hops(n: int, province: int = 50) -> list[str]:
    return [f"000.{province:02d}.{i:02d}.H53" for i in range(1, n + 1)]


def refused(hop, address, envelopes):
    """A permanent refusal: each envelope is settled (given up, a notice to ourselves) in one attempt."""
    return [xpb.Outcome(rejection=xpb.Rejection(reason="BAD_SIGNATURE", message="no")) for _ in envelopes]


class Wire:
    """Counts calls and how many are on the wire at once (per hop and over all); `gate` holds the
    calls to the hops in `hang` until it is set."""

    def __init__(self, answer=refused) -> None:
        self.answer = answer
        self.lock = threading.Lock()
        self.calls: dict[str, int] = {}
        self.now: dict[str, int] = {}
        self.most_on_one_hop = 0
        self.threads: set[str] = set()
        self.hang: set[str] = set()
        self.gate = threading.Event()
        self.entered = threading.Semaphore(0)  # released once per call that hangs
        self.done = threading.Semaphore(0)     # released once per call answered

    def __call__(self, hop, address, envelopes):
        with self.lock:
            self.calls[hop] = self.calls.get(hop, 0) + 1
            self.now[hop] = self.now.get(hop, 0) + 1
            self.most_on_one_hop = max(self.most_on_one_hop, self.now[hop])
            self.threads.add(threading.current_thread().name)
        try:
            if hop in self.hang:
                self.entered.release()
                assert self.gate.wait(WAIT)
            return self.answer(hop, address, envelopes)
        finally:
            with self.lock:
                self.now[hop] -= 1
            self.done.release()

    def await_calls(self, sem: threading.Semaphore, n: int) -> None:
        for _ in range(n):
            assert sem.acquire(timeout=WAIT), "the pool did not get there"


class Agency:
    def __init__(self, tmp_path, pki, clock, code: str, next_hops: list[str], wire, pool: SendPool | None,
                 batch_size: int = 10) -> None:
        self.code = code
        self.db = Database(tmp_path / f"{code}.sqlite3")
        router = Router(code, {h: "127.0.0.1:1" for h in next_hops})
        self.maker = EnvelopeMaker(pki.signer(code), router, clock, lifetime_s=3600, max_size=1 << 20)
        self.disp = Dispatcher(self.db, self.maker, pki.trust(clock), router, clock, wire, POLICY,
                               limits=SendLimits(batch_size=batch_size), rng=random.Random(7), pool=pool, owner=code)
        self.out = Outgoing(self.db, self.maker, NoWakes(), self.disp)

    def post(self, to: list[str], n: int = 1) -> None:
        for i in range(n):
            self.out.post(pb.Payload(document=pb.Document(subject=f"doc {i}")), to)

    def settled(self) -> bool:
        """Its runs are over and their outcomes committed."""
        return self.disp._share.settle(WAIT)


@pytest.fixture
def agencies(tmp_path, pki, clock):
    made: list[Agency] = []

    def make(code, next_hops, wire, pool=None, **kw) -> Agency:
        made.append(Agency(tmp_path, pki, clock, code, next_hops, wire, pool, **kw))
        return made[-1]
    yield make
    for a in made:
        a.disp.stop(timeout=5)
        a.db.close()


@pytest.fixture
def pools():
    made: list[SendPool] = []

    def make(workers: int, window: int = WINDOW) -> SendPool:
        made.append(shared_send_pool(workers) if window == WINDOW else SendPool(workers, window=window))
        return made[-1]
    yield make
    for p in made:
        p.stop(timeout=5)


def test_threads_do_not_grow_with_hops_or_agencies(agencies, pools):
    """3 agencies × 100 next hops with mail, woken all at once, on one pool of 4: every hop is served,
    by at most 4 threads (the senders had 2 threads per hop: 600)."""
    pool = pools(4)
    wire = Wire()
    before = threading.active_count()
    three = [agencies(f"000.00.0{k + 1}.H53", hops(100, province=60 + k), wire, pool) for k in range(3)]
    for k, a in enumerate(three):
        a.post(hops(100, province=60 + k))
    for a in three:
        a.disp.wake_all_due()  # queues 300 hops: no stampede, the pool drains them
    for a in three:
        assert a.settled()
        assert outbox.hops_with_pending(a.db) == []
    assert len(wire.calls) == 300 and set(wire.calls.values()) == {1}
    assert pool.threads() <= 4 and threading.active_count() - before <= 4
    assert wire.threads <= {f"send-{i}" for i in range(4)}
    assert pool.stop(timeout=WAIT) == []


def test_a_standalone_node_runs_no_more_sender_threads_than_its_hops_need(agencies):
    """A dispatcher without a shared pool makes its own, whose threads start as needed: one next hop, at most
    WINDOW threads (what it had before the pool), though the pool may have 8."""
    wire = Wire()
    [parent] = hops(1)
    a = agencies("000.00.01.H53", [parent], wire, None, batch_size=1)
    a.post([parent], n=6)
    a.disp.wake(parent)
    assert a.settled() and outbox.hops_with_pending(a.db) == []
    assert a.disp.pool.workers == 8 and 1 <= a.disp.pool.threads() <= WINDOW
    assert a.disp.stop(timeout=WAIT) == []


def test_an_agency_whose_peers_hang_cannot_starve_another(agencies, pools):
    """Agency A's next hops all hang (until their deadline); agency B on the same pool still delivers: A holds
    at most half the pool, though three of its hops wait with deep queues."""
    pool = pools(4)
    hanging = hops(3, province=70)
    wire = Wire()
    wire.hang.update(hanging)
    a = agencies("000.00.01.H53", hanging, wire, pool)
    [b_hop] = hops(1, province=71)
    b = agencies("000.00.02.H53", [b_hop], wire, pool)
    a.post(hanging, n=30)
    a.disp.wake_all_due()
    wire.await_calls(wire.entered, 2)
    assert a.disp._share.running() == 2  # its share: half the pool
    b.post([b_hop])
    b.disp.wake(b_hop)
    assert b.settled()  # B's mail went while A's calls hang
    assert wire.calls[b_hop] == 1 and not outbox.hops_with_pending(b.db)
    assert a.disp._share.running() == 2
    wire.gate.set()
    assert a.settled() and not outbox.hops_with_pending(a.db)


def test_a_hop_holds_at_most_its_window(agencies, pools):
    """One hop with a deep queue on a pool of 8 whose peer hangs: WINDOW workers on it, however often it is
    woken; when those calls fail, it is marked failing (one worker from then on)."""
    pool = pools(8)
    [slow] = hops(1)
    wire = Wire()
    a = agencies("000.00.01.H53", [slow], wire, pool, batch_size=2)
    task = a.disp.hop(slow)._task
    a.post([slow], n=40)
    wire.hang.add(slow)
    for _ in range(10):
        a.disp.wake(slow)
    wire.await_calls(wire.entered, WINDOW)
    for _ in range(10):
        a.disp.wake(slow)
    assert (task.running, task.queued) == (WINDOW, 0)
    assert wire.most_on_one_hop == WINDOW

    def deadline(*_):
        raise TransportError("DEADLINE_EXCEEDED")
    wire.answer = deadline
    wire.gate.set()
    assert a.settled()
    assert task.failing and task.window() == 1 and wire.most_on_one_hop == WINDOW


def test_a_failed_hop_that_hangs_again_holds_one_worker(agencies, pools, clock):
    """A hop whose last attempt failed gets one worker until it delivers again: a peer that hangs until the
    deadline at every retry holds one worker, not two; once it answers, its queue is drained two at a time."""
    pool = pools(8)
    [slow] = hops(1)
    wire = Wire()
    a = agencies("000.00.01.H53", [slow], wire, pool, batch_size=2)
    task = a.disp.hop(slow)._task
    a.post([slow])

    def unavailable(*_):
        raise TransportError("UNAVAILABLE")
    wire.answer = unavailable
    a.disp.wake(slow)
    assert a.settled() and task.failing and sum(wire.calls.values()) == 1
    a.post([slow], n=40)
    clock.advance(POLICY.max_delay)  # its backoff is over; now the peer hangs
    wire.answer = refused
    wire.hang.add(slow)
    for _ in range(10):
        a.disp.wake(slow)
    wire.await_calls(wire.entered, 1)
    for _ in range(10):
        a.disp.wake(slow)
    assert (task.running, task.queued) == (1, 0)  # one worker, though the queue is deep and 7 are free
    wire.gate.set()  # it answers: progress; the hop has its window again and is drained
    assert a.settled()
    assert not task.failing and task.window() == WINDOW and not outbox.hops_with_pending(a.db)


def test_stop_waits_for_the_agencys_attempts_in_flight_and_others_go_on(agencies, pools):
    """Dispatcher.stop on a shared pool: this agency's queued hops are dropped, its batch on the wire is
    finished and committed before stop returns; another agency keeps sending."""
    pool = pools(4)
    [hop_a] = hops(1, province=80)
    [hop_b] = hops(1, province=81)
    wire = Wire()
    wire.hang.add(hop_a)
    a = agencies("000.00.01.H53", [hop_a], wire, pool)
    b = agencies("000.00.02.H53", [hop_b], wire, pool)
    a.post([hop_a])
    a.disp.wake(hop_a)
    wire.await_calls(wire.entered, 1)
    assert a.disp.stop(timeout=0) == [hop_a]  # still on the wire: named
    stopped: list[list[str]] = []
    stopping = threading.Thread(target=lambda: stopped.append(a.disp.stop(timeout=WAIT)))
    stopping.start()
    wire.gate.set()
    stopping.join(WAIT)
    assert stopped == [[]]
    assert outbox.hops_with_pending(a.db) == []  # its outcome was committed before stop returned
    a.post([hop_a])
    a.disp.wake(hop_a)  # a stopped agency queues nothing
    assert a.disp.hop(hop_a)._task.queued == 0
    b.post([hop_b])
    b.disp.wake(hop_b)
    assert b.settled() and not outbox.hops_with_pending(b.db)
    assert wire.calls == {hop_a: 1, hop_b: 1}
    assert pool.stop(timeout=WAIT) == []


# ---- the pool alone: the order of turns ----------------------------------------------------


def test_turns_go_round_robin_across_owners_then_their_hops(pools):
    """One worker: an owner with two busy hops and an owner with one take turns, one run each, and each owner's
    hops take turns within its share (Synapse's destination wake-up queue)."""
    pool = pools(1, window=1)
    order: list[str] = []
    hold, held = threading.Event(), threading.Event()
    left = {"a1": 3, "a2": 3, "b1": 3}

    def gate() -> Step:
        held.set()
        assert hold.wait(WAIT)
        return Step.DONE

    def runner(name):
        def run() -> Step:
            order.append(name)
            left[name] -= 1
            return Step.AGAIN if left[name] else Step.DONE
        return run
    a, b, g = pool.owner("A"), pool.owner("B"), pool.owner("G")
    g.task("gate", gate).wake()
    assert held.wait(WAIT)  # the one worker is busy: what follows only queues
    for owner, name in [(a, "a1"), (a, "a2"), (b, "b1")]:
        owner.task(name, runner(name)).wake()
    hold.set()
    assert a.settle(WAIT) and b.settle(WAIT)
    assert order == ["a1", "b1", "a2", "b1", "a1", "b1", "a2", "a1", "a2"]


def test_a_task_that_raises_does_not_cost_a_worker(pools):
    pool = pools(1)
    ran = threading.Event()

    def broken() -> Step:
        raise RuntimeError("a bug")
    owner = pool.owner("A")
    owner.task("broken", broken).wake()
    owner.task("fine", lambda: ran.set() or Step.DONE).wake()
    assert ran.wait(WAIT) and owner.settle(WAIT)
    assert pool.threads() == 1


def test_mail_posted_while_a_batch_hangs_goes_when_it_answers(agencies, pools):
    """Posting wakes the hop (as in a node): mail queued behind a batch on the wire is sent once that one is
    answered, with no other wake."""
    pool = pools(8)
    [hop] = hops(1)
    wire = Wire()
    wire.hang.add(hop)
    a = agencies("000.00.01.H53", [hop], wire, pool)
    a.out = Outgoing(a.db, a.maker, a.disp, a.disp)
    a.post([hop])
    wire.await_calls(wire.entered, 1)
    a.post([hop], n=2)
    wire.hang.clear()
    wire.gate.set()
    assert a.settled()
    assert outbox.hops_with_pending(a.db) == [] and wire.calls[hop] == 2


def test_posts_from_many_threads_while_the_hop_sends_are_all_delivered(agencies, pools):
    """Wakes race with runs ending (a run that finds nothing must not swallow a wake that came meanwhile):
    8 threads post 25 each, every post waking the hop; everything is delivered without any other wake."""
    pool = pools(8)
    [hop] = hops(1)
    wire = Wire()
    a = agencies("000.00.01.H53", [hop], wire, pool, batch_size=4)
    a.out = Outgoing(a.db, a.maker, a.disp, a.disp)
    start = threading.Barrier(8)

    def poster():
        start.wait(WAIT)
        a.post([hop], n=25)
    posters = [threading.Thread(target=poster) for _ in range(8)]
    for t in posters:
        t.start()
    for t in posters:
        t.join(WAIT)
    assert a.settled()
    assert outbox.hops_with_pending(a.db) == []
