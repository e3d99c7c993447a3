"""Audit checkpoints handed to a parent (Registry.Checkpoint, LatestCheckpoint): an insider child M may
only hand over and read back its own, signed with the certificate it registered, never rewrite one it
gave before, and never make its parent parse an unbounded one. Every refusal leaves D's kept
checkpoints (child_checkpoint) as they were."""
from __future__ import annotations

import os
import time

from node.audit.checkpoints import MAX_SIGNED, make
from node.envelope import MAX_CLOCK_SKEW_MS
from node.pb import registry_pb2 as rpb

from .core import call, case
from .world import C1, D, M

CHECKPOINT, LATEST = "Registry.Checkpoint", "Registry.LatestCheckpoint"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@case("audit", "a child handing its parent a checkpoint for a sibling's log", "PERMISSION_DENIED",
      "SENDER_MISMATCH", via=f"{CHECKPOINT}, M → D")
def _(s):
    signed = make(s.w.signer(M), 7, os.urandom(32), now_ms())
    body = rpb.CheckpointBody.FromString(signed.body)
    body.code = C1  # M's own signature over a body that names C1
    forged = body.SerializeToString()
    return call(s.w.registry(M).Checkpoint,
                rpb.SignedCheckpoint(body=forged, signature=s.w.signer(M).sign(forged), cert_der=signed.cert_der))


@case("audit", "a child asking its parent for a sibling's checkpoints", "PERMISSION_DENIED", "SENDER_MISMATCH",
      via=f"{LATEST}, M → D")
def _(s):
    return call(s.w.registry(M).LatestCheckpoint, rpb.CheckpointRequest(code=C1))


@case("audit", "a child rewriting a checkpoint it handed over before", "ALREADY_EXISTS", "CHECKPOINT_CONFLICT",
      via=f"{CHECKPOINT}, M → D", prepares=True)
def _(s):
    seq = 1_000  # one seq for both: the first is kept, the second contradicts it
    s.w.registry(M).Checkpoint(make(s.w.signer(M), seq, os.urandom(32), now_ms()), timeout=10)
    s.begin()
    return call(s.w.registry(M).Checkpoint, make(s.w.signer(M), seq, os.urandom(32), now_ms()))


@case("audit", "a checkpoint dated beyond the clock skew allowed", "INVALID_ARGUMENT", "BAD_TIME",
      via=f"{CHECKPOINT}, M → D")
def _(s):
    ahead = now_ms() + MAX_CLOCK_SKEW_MS + 3_600_000
    return call(s.w.registry(M).Checkpoint, make(s.w.signer(M), 2_000, os.urandom(32), ahead))


@case("limits", "a checkpoint over its size limit", "RESOURCE_EXHAUSTED", "TOO_LARGE", via=f"{CHECKPOINT}, M → D")
def _(s):
    signed = make(s.w.signer(M), 3_000, os.urandom(32), now_ms())
    signed.cert_der += b"\x00" * MAX_SIGNED
    return call(s.w.registry(M).Checkpoint, signed)


@case("audit", "a child declaring a restore from a backup its parent's checkpoint contradicts", "ALREADY_EXISTS",
      "CHECKPOINT_CONFLICT", via=f"{CHECKPOINT}, M → D", prepares=True)
def _(s):
    seq = 4_000  # the parent keeps this head at 4000; the "backup" claims another there, to rewrite from it
    s.w.registry(M).Checkpoint(make(s.w.signer(M), seq, os.urandom(32), now_ms()), timeout=10)
    s.begin()
    return call(s.w.registry(M).Checkpoint, make(s.w.signer(M), seq + 1, os.urandom(32), now_ms(),
                                                 restored_from=(seq, os.urandom(32)), backup="b.tar"))


@case("audit", "a restore checkpoint that does not start right after the backup's head", "INVALID_ARGUMENT",
      "INVALID_REQUEST", via=f"{CHECKPOINT}, M → D")
def _(s):
    return call(s.w.registry(M).Checkpoint, make(s.w.signer(M), 5_010, os.urandom(32), now_ms(),
                                                 restored_from=(5_000, os.urandom(32)), backup="b.tar"))


@case("audit", "a restore checkpoint naming its backup with a terminal escape", "INVALID_ARGUMENT",
      "INVALID_REQUEST", via=f"{CHECKPOINT}, M → D")
def _(s):
    return call(s.w.registry(M).Checkpoint, make(s.w.signer(M), 6_001, os.urandom(32), now_ms(),
                                                 restored_from=(6_000, os.urandom(32)), backup="b.tar\x1b[2J\n"))
