"""The periodic sweeps of an idle mailbox ask nothing (node/store/quiet.py, client_keys.prune): "no pending
mail" and "no key expires before T" are kept until the next commit, and every commit is seen at once."""
from __future__ import annotations

import threading

from node.store import client_keys, outbox, peers


def _count_reads(db, monkeypatch) -> list[str]:
    reads: list[str] = []
    query = db.query

    def counted(sql, params=()):
        reads.append(sql)
        return query(sql, params)
    monkeypatch.setattr(db, "query", counted)
    return reads


def _sweep(db, now_ms: int) -> tuple:
    """What the sweep, the expiry and the probe ask every few seconds."""
    return (outbox.expired_pending(db, now_ms), outbox.park_ended(db, now_ms), outbox.hops_with_pending(db),
            peers.backing_off(db), client_keys.prune(db, now_ms))


def _queue(tx, message_id: str, hop: str = "000.00.02.H53", expires_ms: int = 10_000) -> None:
    tx.execute("INSERT INTO outbox (message_id, sender, recipient, next_hop, kind, priority, origin, created_ms,"
               " expires_ms) VALUES (?, 'me', ?, ?, 1, 0, 'local', 0, ?)", (message_id, hop, hop, expires_ms))


def test_an_idle_mailbox_is_swept_without_a_query_until_something_is_committed(db, monkeypatch):
    reads = _count_reads(db, monkeypatch)
    assert _sweep(db, 1000) == ([], [], [], [], 0)
    first = len(reads)
    assert first == 2  # once: is anything pending, and when does the first key expire
    for now in (2000, 3000, 10**12):  # time alone changes nothing: neither can be due without a commit
        assert _sweep(db, now) == ([], [], [], [], 0)
    assert len(reads) == first
    with db.transaction() as tx:
        _queue(tx, "m1", expires_ms=5000)
    assert outbox.hops_with_pending(db) == ["000.00.02.H53"]  # the commit is seen at once
    assert [r["message_id"] for r in outbox.expired_pending(db, 6000)] == ["m1"]


def test_a_key_expiring_later_is_pruned_once_its_time_has_come(db, monkeypatch):
    with db.transaction() as tx:
        client_keys.put_in(tx, "default", "k", "Send", b"h", b"r", 0, 5000)
    reads = _count_reads(db, monkeypatch)
    assert client_keys.prune(db, 1000) == 0 and client_keys.prune(db, 4999) == 0
    assert len(reads) == 1  # the first expiry, read once for both
    assert client_keys.prune(db, 5000) == 1
    assert client_keys.prune(db, 10**12) == 0


def test_a_transactions_own_uncommitted_mail_is_seen_inside_it(db):
    assert outbox.hops_with_pending(db) == []  # "none pending" kept
    with db.transaction() as tx:
        _queue(tx, "m2")
        assert outbox.hops_with_pending(db) == ["000.00.02.H53"]  # read on the writer: its own row
        seen_elsewhere: list = []
        t = threading.Thread(target=lambda: seen_elsewhere.append(outbox.hops_with_pending(db)))
        t.start()
        t.join(20)
        assert seen_elsewhere == [[]]  # another thread sees only what is committed
    assert outbox.hops_with_pending(db) == ["000.00.02.H53"]


def test_mail_that_follows_successions_asks_an_idle_mailbox_nothing_until_a_commit(db, monkeypatch):
    """The sweep's MailFollows.due (node/exchange/follow.py) ran a query every 5 s per agency even when idle."""
    from node.clock import FakeClock
    from node.exchange.follow import ASK_EVERY_MS, MailFollows

    class Held:
        def effective_codes(self):
            return []
    clock = FakeClock()  # far past ASK_EVERY_MS: the first run asks both
    follows = MailFollows(db, None, Held(), None, clock, successor_of=lambda code, fresh=False: None)
    reads = _count_reads(db, monkeypatch)
    assert follows.due() == 0
    first = len(reads)
    assert first >= 1
    for _ in range(3):  # time alone changes nothing
        clock.advance(ASK_EVERY_MS / 1000)
        assert follows.due() == 0
    assert len(reads) == first
    with db.transaction() as tx:
        _queue(tx, "m1")
    clock.advance(ASK_EVERY_MS / 1000)
    assert follows.due() == 0
    assert len(reads) > first  # a commit is seen at once
