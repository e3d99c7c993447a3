"""Retiring a node (Admin.Retire, docs/restructuring.md) into an agency no succession names as its successor: an
operator's slip or a stolen admin token must not stop a node's mail, nor point it at another agency. Refused,
and the node still takes new documents."""
from __future__ import annotations

from node.pb import admin_pb2 as apb

from .core import call, case
from .world import C1, D, M


def retire(s, to: str, at: str = D):
    admin = s.w.api(at).admin
    return call(admin.stub.Retire, apb.RetireRequest(to=to), metadata=admin._client.metadata)


@case("retire", "retiring a node into its own child, which no succession names as its successor",
      "FAILED_PRECONDITION", "RETIRE_NOT_SUCCESSOR", via="Admin.Retire at D")
def _(s):
    return retire(s, C1)


@case("retire", "retiring a node into the insider commune, no succession held at all", "FAILED_PRECONDITION",
      "RETIRE_NOT_SUCCESSOR", via="Admin.Retire at D")
def _(s):
    return retire(s, M)


@case("retire", "retiring a node into a 100 KB 'code' with a terminal escape", "INVALID_ARGUMENT",
      "INVALID_REQUEST", via="Admin.Retire at D")
def _(s):
    return retire(s, "\x1b[2J" + "9" * 100_000)
