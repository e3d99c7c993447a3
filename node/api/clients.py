"""Who calls the local API: one token per client program, each with a name and scopes.

A node serves several programs on one machine (the document system, a monitor, the operator's
CLI). With one token for all, any of them could replay another's idempotency keys and do
whatever the others may. Each program now has its own token (`api.tokens`): its idempotency keys
live in a key space of its own (node.api.idempotency), the audit log names it on what it sends
or holds, and its scopes bound what it may call. The token of `api.token` / `api.token_file` is
the client named "default", with every scope (what the one token always could do; the CLI uses it).

The interceptor (node.api.auth) and the HTTP face identify the caller by its token and run the
call with `acting(client)`, so code below reads `current()` instead of passing the caller along.
"""
from __future__ import annotations

import contextlib
import contextvars
import hmac
from dataclasses import dataclass
from typing import Iterable, Iterator

from ..errors import Reason, Rejected

DEFAULT = "default"
READ, SEND, ADMIN = "read", "send", "admin"
SCOPES = (READ, SEND, ADMIN)

# the calls of each scope by method name; a method listed nowhere (a new one) needs `admin`: fail closed
READ_CALLS = frozenset({
    "Mailbox/ListInbox", "Mailbox/Fetch", "Mailbox/Ack", "Mailbox/ListSent", "Mailbox/Watch", "Mailbox/Directory",
    "Mailbox/Lookup", "Mailbox/Track", "Mailbox/ExportEdxml", "Mailbox/CountPending", "Mailbox/WhoAmI",
    "Stats/Get"})
SEND_CALLS = frozenset({"Mailbox/Send", "Mailbox/SendBatch", "Mailbox/SetStatus", "Mailbox/Change",
                        "Mailbox/ImportEdxml"})


@dataclass(frozen=True)
class Client:
    name: str
    scopes: frozenset[str]


def scope_of(method: str) -> str:
    """The scope a call needs; `method` as gRPC names it (`/lienthong.v1.Mailbox/Send`)."""
    service, _, name = method.rpartition("/")
    short = f"{service.rpartition('.')[2]}/{name}"
    if short in READ_CALLS:
        return READ
    if short in SEND_CALLS:
        return SEND
    return ADMIN


class Clients:
    """The configured clients by token; `identify` compares the given header with every token, in constant
    time each and without stopping at a match, so the time taken tells nothing about which one it was."""

    def __init__(self, entries: Iterable[tuple[str, str, Iterable[str]]]) -> None:
        self._by_header = [(f"Bearer {token}".encode(), Client(name, frozenset(scopes)))
                           for name, token, scopes in entries]
        if not self._by_header:
            raise ValueError("a local API needs at least one client token")

    @classmethod
    def single(cls, token: str) -> "Clients":
        return cls([(DEFAULT, token, SCOPES)])

    @classmethod
    def of(cls, api) -> "Clients":
        """From node.config.ApiSettings: the default token, then `api.tokens`."""
        return cls([(DEFAULT, api.token, SCOPES)] + [(c.name, c.token, c.scopes) for c in api.tokens])

    def identify(self, header: str | bytes) -> Client | None:
        given = header.encode("utf-8", "replace") if isinstance(header, str) else header
        found = None
        for expected, client in self._by_header:
            if hmac.compare_digest(given, expected):
                found = client
        return found

    def entries(self) -> list[tuple[bytes, Client]]:
        """(the whole `authorization` header, its client) of every token (a host indexes them by digest)."""
        return list(self._by_header)

    @property
    def names(self) -> list[str]:
        return [c.name for _, c in self._by_header]


def authorize(client: Client, method: str) -> None:
    """Raise NOT_PERMITTED unless the client's scopes cover the call."""
    need = scope_of(method)
    if need not in client.scopes:
        raise Rejected(Reason.NOT_PERMITTED, f"client {client.name!r} has no {need!r} scope for {method.rpartition('/')[2]}",
                       metadata={"client": client.name, "scope": need})


_CURRENT: contextvars.ContextVar[Client | None] = contextvars.ContextVar("lienthong_api_client", default=None)


def current() -> str | None:
    """The name of the client whose call this thread runs; None outside a call (the node's own work, such as
    an automatic 01, and servicers driven in-process by tests)."""
    client = _CURRENT.get()
    return client.name if client is not None else None


def current_scopes() -> list[str]:
    """The scopes of the client whose call this thread runs, in SCOPES order (every scope outside a call)."""
    client = _CURRENT.get()
    return [s for s in SCOPES if client is None or s in client.scopes]


@contextlib.contextmanager
def acting(client: Client) -> Iterator[None]:
    """Run the block as `client`'s call. Set and put back rather than reset: a streamed call's generator may be
    closed from another context than the one it started in, where a reset token is refused."""
    before = _CURRENT.get()
    _CURRENT.set(client)
    try:
        yield
    finally:
        _CURRENT.set(before)
