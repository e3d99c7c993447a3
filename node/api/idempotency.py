"""Exactly once at the API boundary: idempotency keys (`client_key`) on the calls that send.

A call made with a key runs once. Its answer is stored under the key in the same transaction
as what it committed (through the `within` hook of Outgoing, Lifecycle and the edXML bridge,
so no transaction is held across their network lookups); the same key with the same request
(SHA-256 of the request without its key) gets that answer back and nothing is done again;
with another request, or another method, it is refused (KEY_REUSED). Two calls racing with
one key: the second to commit finds the first's row inside its own transaction, rolls back
everything it did, and answers as a retry would. A call refused (Rejected) stores nothing:
a retry is decided afresh. Each client program (api.tokens) has a key space of its own: the same key
from another program is another request, never this one's answer (node/api/clients.py).
"""
from __future__ import annotations

import hashlib
import re
from typing import Callable, TypeVar

from google.protobuf.message import Message

from ..clock import Clock
from ..errors import Reason, Rejected
from ..store import client_keys
from ..store.database import Database, Transaction
from . import clients

MAX_KEY = 128
KEY_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,%d}" % MAX_KEY)

R = TypeVar("R", bound=Message)
Within = Callable[[Transaction, Message], None]


class _Replay(Exception):
    """Raised inside the commit when another call stored the key first: rolls this call back."""


def request_digest(method: str, request: Message) -> bytes:
    bare = type(request)()
    bare.CopyFrom(request)
    bare.ClearField("client_key")
    return hashlib.sha256(method.encode() + b"\0" + bare.SerializeToString(deterministic=True)).digest()


def check_key(key: str) -> None:
    if not KEY_PATTERN.fullmatch(key):
        raise Rejected(Reason.INVALID_REQUEST,
                       f"client_key must be 1..{MAX_KEY} characters of letters, digits, '-', '_', '.', ':'"
                       f" (got {len(key)} characters)", field="client_key", metadata={"limit": str(MAX_KEY)})


class Keys:
    """The store of answers by key; `keep_ms`: how long a key is kept at least (the message lifetime)."""

    def __init__(self, db: Database, clock: Clock, keep_ms: int) -> None:
        self.db, self.clock, self.keep_ms = db, clock, keep_ms

    def once(self, method: str, request: Message, response_type: type[R], run: Callable[[Within | None], R],
             keep_ms: int = 0) -> R:
        """`run(within)` does the call; it must pass `within(tx, response)` into the transaction that commits
        its work. Without a key: just `run(None)`. `keep_ms`: longer than the default when the request asks
        for a longer message lifetime."""
        key = request.client_key
        if not key:
            return run(None)
        check_key(key)
        client = clients.current() or clients.DEFAULT
        digest = request_digest(method, request)
        stored = self._stored(client, key, method, digest, response_type)
        if stored is not None:
            return stored
        recorded: list[bool] = []

        def within(tx: Transaction, response: Message) -> None:
            now = self.clock.now_ms()
            if client_keys.get_in(tx, client, key, now) is not None:
                raise _Replay()
            client_keys.put_in(tx, client, key, method, digest, response.SerializeToString(), now,
                               now + max(self.keep_ms, keep_ms))
            recorded.append(True)

        try:
            response = run(within)
            if not recorded:  # the call committed nothing (an answer already on record): keep its answer too
                with self.db.transaction() as tx:
                    within(tx, response)
            return response
        except _Replay:
            stored = self._stored(client, key, method, digest, response_type)
            if stored is None:  # expired in between: cannot happen with keys kept for the message lifetime
                raise Rejected(Reason.INTERNAL, "the client key's answer vanished") from None
            return stored

    def _stored(self, client: str, key: str, method: str, digest: bytes, response_type: type[R]) -> R | None:
        found = client_keys.get(self.db, client, key, self.clock.now_ms())
        if found is None:
            return None
        if found.method != method or found.request_sha256 != digest:
            raise Rejected(Reason.KEY_REUSED,
                           f"client_key {key!r} was used for another {found.method} request"
                           if found.method == method else
                           f"client_key {key!r} was used for a {found.method} request, not {method}",
                           field="client_key", metadata={"method": found.method})
        return response_type.FromString(found.response)
