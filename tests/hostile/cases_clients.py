"""Client programs on one node: another program on D's machine, holding a token of its own.

D's local API serves the client "default" (api.token) and three programs of api.tokens: qlvb and
portal (read, send), monitor (read). A program may not replay or block another's idempotency keys
(each has a key space of its own), nor call outside its scopes (NOT_PERMITTED, nothing done).
"""
from __future__ import annotations

from node.pb import admin_pb2 as apb
from node.pb import envelope_pb2 as pb
from node.pb import mailbox_pb2 as mpb

from .core import Observed, call, case
from .world import M

SEND = "Mailbox.Send at D, as another program"


def sent(client, subject: str, key: str) -> str:
    return client.send(pb.Document(subject=subject), [M], client_key=key).envelopes[0].message_id


@case("clients", "portal replays qlvb's client key with qlvb's request", "OK", "a request of its own", via=SEND,
      prepares=True)
def _(s):
    """The first program's answer is not handed to the second, and nothing of the first is done again."""
    victim, attacker = s.w.program("qlvb"), s.w.program("portal")
    mine = sent(victim, "Công văn của qlvb", "hostile-replay-1")
    s.begin()
    theirs = sent(attacker, "Công văn của qlvb", "hostile-replay-1")
    assert theirs != mine
    assert sent(victim, "Công văn của qlvb", "hostile-replay-1") == mine  # qlvb's retry: still its own answer
    return Observed("OK", "a request of its own").allowing(theirs)


@case("clients", "portal takes qlvb's next client key first", "OK", "not blocked", via=SEND)
def _(s):
    """A key used first by another program does not make qlvb's own request KEY_REUSED."""
    taken = sent(s.w.program("portal"), "chiếm khoá", "hostile-next-1")
    mine = sent(s.w.program("qlvb"), "Công văn thật", "hostile-next-1")
    assert mine != taken
    return Observed("OK", "not blocked").allowing(taken, mine)


@case("clients", "a read-only program sends", "PERMISSION_DENIED", "NOT_PERMITTED", via=SEND)
def _(s):
    monitor = s.w.program("monitor")
    return call(monitor.stub.Send, mpb.SendRequest(document=pb.Document(subject="x"), recipients=[M]),
                metadata=monitor.metadata)


@case("clients", "a read-only program purges D's queued mail", "PERMISSION_DENIED", "NOT_PERMITTED",
      via="Admin.Purge at D, as a read-only program")
def _(s):
    monitor = s.w.program("monitor")
    return call(monitor.admin.stub.Purge, apb.PurgeRequest(message_id="0" * 32, reason="x"), metadata=monitor.metadata)


@case("clients", "a program's token with one byte changed", "UNAUTHENTICATED", "UNAUTHENTICATED", via=SEND)
def _(s):
    qlvb = s.w.program("qlvb")
    token = dict(qlvb.metadata)["authorization"]
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    return call(qlvb.stub.Send, mpb.SendRequest(document=pb.Document(subject="x"), recipients=[M]),
                metadata=(("authorization", forged),))
