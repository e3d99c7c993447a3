"""Answers "nothing here" kept until the next commit, so the periodic sweeps of an idle mailbox ask nothing.

Every few seconds each agency's sweep, probe and expiry ask the outbox what is due. On an idle
mailbox the answer is always "no pending mail", and a host with a thousand agencies asked it a
thousand times as often. Only a commit can add pending mail (this process is the mailbox's only
writer: the data directory's lock), so "no pending mail as of commit k" holds while
`Database.commits` is still k, whatever the time. A read inside the caller's own transaction is
never answered from here: it must see that transaction's uncommitted rows.
"""
from __future__ import annotations

import weakref

from .database import Database

_NONE_PENDING: "weakref.WeakKeyDictionary[Database, int]" = weakref.WeakKeyDictionary()


def no_pending_mail(db: Database) -> bool:
    """True when the outbox holds no pending envelope (queued, parked or backing off); one indexed read at
    most per commit."""
    if db.in_own_transaction():
        return False  # the caller queries, and sees its own rows
    seen = db.commits  # read first: a commit after this makes the memo stale, never wrong
    if _NONE_PENDING.get(db) == seen:
        return True
    if db.query_one("SELECT 1 AS any FROM outbox WHERE state = 'pending' LIMIT 1") is not None:
        return False
    _NONE_PENDING[db] = seen
    return True
