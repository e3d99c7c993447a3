"""`lienthong audit verify`: walk the chain, then hold it against the node's own last signed checkpoint
and the copy its parent keeps.

The chain alone shows a row edited, deleted or moved in place (node/audit/chain.py). A
checkpoint shows what the chain cannot: that it was cut short after the checkpointed seq,
or rewritten with fresh hashes before it (the row at the checkpoint's seq then has another
hash than the one the node signed). The node's own checkpoints live in the same file as the
chain, so the parent's copy is the anchor an attacker with the file cannot reach; when the
parent does not answer, the check runs offline and says so.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from ..config import Settings
from ..errors import Rejected
from ..grpc_errors import rejected_of
from ..identity.trust import TrustStore
from ..pb import registry_pb2 as rpb
from ..pb import registry_pb2_grpc as rgrpc
from ..progress import SILENT, Progress
from ..store import audit as store
from ..terminal import shown
from . import checkpoints
from .chain import Problem, walk

PARENT_TIMEOUT_S = 5.0


class NotChained(Exception):
    """The mailbox has no audit chain yet (written by a version before it: start the node once to migrate)."""


@dataclass(frozen=True)
class Anchor:
    source: str      # "own checkpoint" | "parent's copy"
    seq: int
    head: bytes
    time_ms: int


@dataclass
class Result:
    rows: int = 0
    head_seq: int = 0
    problems: list[Problem] = field(default_factory=list)
    anchors: list[Anchor] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    offline: bool = False

    @property
    def intact(self) -> bool:
        return not self.problems

    def render(self) -> str:
        lines = [f"note: {shown(str(n))}" for n in self.notes]  # rows' details quote what peers sent
        lines += [f"BROKEN {shown(str(p))}" for p in self.problems]
        anchored = "; ".join(f"{a.source} at seq {a.seq} (signed {_when(a.time_ms)})" for a in self.anchors)
        if self.intact:
            lines.append(f"intact: {self.rows} rows, head at seq {self.head_seq}"
                         + (f"; matches {anchored}" if anchored else "; no checkpoint to hold it against yet")
                         + (" (OFFLINE: the parent's copy was not checked)" if self.offline else ""))
        else:
            lines.append(f"audit log BROKEN: {len(self.problems)} problem(s) in {self.rows} rows")
        return "\n".join(lines)


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def verify(settings: Settings, mailbox: Path, trust: TrustStore, parent: tuple[str, str] | None,
           channel=None, progress: Progress = SILENT) -> Result:
    """`parent`: (code, address) to ask for its copy, or None (top of a tree); `channel(code, address)`."""
    res = Result()
    code = settings.node.code
    try:
        ro = store.ReadOnly(mailbox)
        has_chain = ro.has_chain()
    except store.StoreError as e:
        raise NotChained(f"cannot read {mailbox}: {e}") from None
    if not has_chain:
        ro.close()
        raise NotChained(f"{mailbox} has no audit chain yet: start the node once (migration 0010) and try again")
    try:
        own = _own_anchor(ro.checkpoints(), trust, code, res)
        theirs = _parent_anchors(parent, code, own, trust, channel, res)
        anchors = [a for a in (own, *theirs) if a is not None]
        w = walk(progress.counting("walking the chain", ro.rows(), ro.count(), unit="rows"),
                 keep={a.seq for a in anchors})
    finally:
        ro.close()
    res.rows, res.head_seq, res.anchors = w.count, w.head_seq, anchors
    res.problems.extend(w.problems)
    for a in anchors:
        if a.seq > w.head_seq:
            res.problems.append(Problem(a.seq, "truncated", f"the {a.source} (signed {_when(a.time_ms)}) covers seq "
                                                            f"{a.seq}, but the log ends at seq {w.head_seq}: rows "
                                                            "after it were deleted"))
        elif a.seq not in w.at:
            res.problems.append(Problem(a.seq, "deleted", f"the row the {a.source} covers is gone"))
        elif w.at[a.seq] != a.head:
            res.problems.append(Problem(a.seq, "rewritten", f"its hash is not the head in the {a.source} (signed "
                                                            f"{_when(a.time_ms)}): the chain up to it was rewritten"))
    res.problems.sort(key=lambda p: p.seq)
    return res


def _own_anchor(rows: list[dict], trust: TrustStore, code: str, res: Result) -> Anchor | None:
    """The latest of the node's own checkpoints whose signature holds (a bad one is itself a problem)."""
    good = None
    for row in rows:
        try:
            body = checkpoints.verify(rpb.SignedCheckpoint.FromString(row["signed"]), trust, code=code,
                                      check_validity=False)
        except Exception as e:  # noqa: BLE001 - Rejected, or a row that does not even parse: named the same way
            why = e.public_text if isinstance(e, Rejected) else "does not parse"
            res.problems.append(Problem(row["seq"], "edited",
                                        f"the node's checkpoint at this seq is not valid ({why})"))
            continue
        if body.seq != row["seq"] or body.head != row["head"]:
            res.problems.append(Problem(row["seq"], "edited", "the node's checkpoint row does not say what it signed"))
            continue
        good = Anchor("own checkpoint", body.seq, body.head, body.time_ms)
    if good is None:
        res.notes.append("no valid checkpoint of its own (none yet: one is signed audit.checkpoint_every after "
                         "the first event; or they were removed)")
    return good


def _parent_anchors(parent, code: str, own: Anchor | None, trust: TrustStore, channel, res: Result) -> list[Anchor]:
    if parent is None:
        res.notes.append("no parent: the chain is held against the node's own checkpoints only")
        return []
    pcode, address = parent
    try:
        resp = rgrpc.RegistryStub(channel(pcode, address)).LatestCheckpoint(
            rpb.CheckpointRequest(code=code, seq=own.seq if own else 0), timeout=PARENT_TIMEOUT_S)
    except grpc.RpcError as e:
        refused = rejected_of(e)
        why = refused.public_text if refused is not None else e.code().name
        res.offline = True
        res.notes.append(f"OFFLINE: parent {pcode} at {address} did not answer ({why}): checked against the "
                         "node's own checkpoint only")
        return []
    out = []
    for name, signed in (("parent's copy", resp.latest), ("parent's copy of the own checkpoint", resp.at_seq)):
        if not signed.ByteSize():
            continue
        try:
            body = checkpoints.verify(signed, trust, code=code, check_validity=False)
        except Rejected as r:
            res.problems.append(Problem(0, "broken", f"the {name} at {pcode} does not verify ({r.public_text})"))
            continue
        out.append(Anchor(f"{name} at {pcode}", body.seq, body.head, body.time_ms))
    if not out:
        res.notes.append(f"parent {pcode} holds no checkpoint of {code} yet")
    latest = out[0] if out and out[0].source.startswith("parent's copy at") else None
    if own is not None and latest is not None and latest.seq > own.seq:
        res.problems.append(Problem(latest.seq, "deleted", f"the parent holds a checkpoint at seq {latest.seq} but the "
                                                           f"node's own end at seq {own.seq}: its later checkpoints "
                                                           "were removed"))
    if own is not None and resp.at_seq.ByteSize() == 0 and resp.latest.ByteSize() and latest and latest.seq >= own.seq:
        res.notes.append(f"parent {pcode} never got the node's checkpoint at seq {own.seq}")
    return out
