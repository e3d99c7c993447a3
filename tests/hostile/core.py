"""What a case is: an attack on the real nodes, the refusal it must meet, and proof nothing was stored.

A case function gets a `Scene`: the world, and `begin()`, which takes the "before" snapshot
(the runner takes it right before the attack unless the case prepares something first, such as
a document the victim sends, and calls `begin()` itself). It returns what it `Observed`: the
gRPC status code name and reason of the refusal (or of the per-envelope outcome), and what the
victims were allowed to keep (message ids, paths) when part of the attack is accepted by design.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import grpc

from node.errors import Reason
from node.grpc_errors import detail_of, reason_of
from node.pb import exchange_pb2 as xpb

from .world import TIMEOUT, Snapshot, World


@dataclass(frozen=True)
class Observed:
    status: str                          # a gRPC status code name; "OK" when the call succeeded
    reason: str = ""                     # the stable reason, "" when none
    allow_ids: frozenset[str] = frozenset()
    allow_paths: tuple[Path, ...] = ()
    detail: str = ""                     # the refusal's public text, for the case's own checks

    def allowing(self, *ids: str, paths: Iterable[Path] = ()) -> "Observed":
        return Observed(self.status, self.reason, self.allow_ids | set(ids), self.allow_paths + tuple(paths),
                        self.detail)


class Scene:
    def __init__(self, world: World) -> None:
        self.w = world
        self.before: Snapshot | None = None

    def begin(self) -> None:
        self.before = self.w.snapshot()


@dataclass(frozen=True)
class Case:
    group: str
    name: str                            # the attack, in words
    attack: Callable[[Scene], Observed]
    status: str                          # expected gRPC status code name ("OK": accepted or answered)
    reason: str                          # expected reason, or what happens instead of a refusal
    via: str                             # the call the attack makes (or that the victim makes to the attacker)
    prepares: bool = False               # the case calls scene.begin() itself

    @property
    def id(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")


CATALOGUE: list[Case] = []


def case(group: str, name: str, status: str, reason: str, *, via: str, prepares: bool = False):
    """Register the decorated attack in the catalogue (in order of definition)."""
    def register(fn: Callable[[Scene], Observed]) -> Callable[[Scene], Observed]:
        CATALOGUE.append(Case(group, name, fn, status, reason, via, prepares))
        return fn
    return register


# ---- observing ----------------------------------------------------------------------------

def call(rpc, request, **kw) -> Observed:
    """Make a call; its refusal (status code and reason) or OK."""
    kw.setdefault("timeout", TIMEOUT)
    try:
        rpc(request, **kw)
    except grpc.RpcError as e:
        return refused(e)
    return Observed("OK")


def refused(e: grpc.RpcError) -> Observed:
    reason = reason_of(e) or ""
    detail = detail_of(e)
    if reason == "INTERNAL" or "Traceback" in detail:
        raise AssertionError(f"an internal failure reached the caller: {e.code().name} {detail}")
    return Observed(e.code().name, reason, detail=detail)


def hold_streams(open_stream, most: int) -> tuple[list, Observed]:
    """Open streams until one is refused (each counted once its first message came: it then holds a worker);
    (the streams held, the refusal, or OK if none was). `most` bounds the attempts."""
    held = []
    for _ in range(most):
        stream = open_stream()
        try:
            next(stream)
        except grpc.RpcError as e:
            return held, refused(e)
        held.append(stream)
    return held, Observed("OK", f"{len(held)} streams held, none refused")


def outcome(o: xpb.Outcome) -> Observed:
    """A per-envelope outcome of DeliverBatch, as the status its reason has in the catalogue."""
    if o.WhichOneof("result") == "receipt":
        return Observed("OK")
    reason = Reason.from_wire(o.rejection.reason)
    assert reason is not None, f"a reason outside the catalogue: {o.rejection.reason}"
    assert reason is not Reason.INTERNAL, f"an internal failure reached the peer: {o.rejection.message}"
    return Observed(reason.grpc_code.name, reason.wire, detail=o.rejection.message)


def joined(*seen: Observed) -> Observed:
    """Several refusals of one attack (e.g. a decoy and the forgery it covers), read together."""
    ids = frozenset().union(*(o.allow_ids for o in seen))
    return Observed(" + ".join(o.status for o in seen), " + ".join(o.reason for o in seen), ids)


@dataclass
class LogTail:
    """What a node process logged since a point (its node.log), to read why it dropped something."""

    path: Path
    start: int = field(init=False)

    def __post_init__(self) -> None:
        self.start = self.path.stat().st_size

    def text(self) -> str:
        with open(self.path, "rb") as f:
            f.seek(self.start)
            return f.read().decode(errors="replace")
