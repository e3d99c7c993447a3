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

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Settings
from ..errors import Rejected
from ..identity.trust import TrustStore
from ..pb import registry_pb2 as rpb
from ..progress import SILENT, Progress
from ..store import audit as store
from ..terminal import shown
from . import checkpoints
from ..transport.interface import Peer, PeerTransport, TransportError
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


@dataclass(frozen=True)
class Restore:
    """A restore the node declared under its key (its own restore checkpoint, or the parent's record of it)."""
    seq: int          # the `restored` row
    head: bytes       # its hash, as signed
    backup_seq: int   # the last row the backup held
    time_ms: int
    backup: str
    source: str       # "own checkpoint" | "parent's record at P"
    superseded: Anchor | None = None  # the parent's latest checkpoint of the history given up


@dataclass
class Result:
    rows: int = 0
    head_seq: int = 0
    problems: list[Problem] = field(default_factory=list)
    anchors: list[Anchor] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    offline: bool = False

    @property
    def intact(self) -> bool:
        return not self.problems

    def render(self) -> str:
        lines = [f"note: {shown(str(n))}" for n in self.notes]  # rows' details quote what peers sent
        lines += [f"RESTORED {shown(r)}" for r in self.restored]
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
           transport: PeerTransport | None = None, progress: Progress = SILENT) -> Result:
    """`parent`: (code, address) to ask for its copy through `transport`, or None (top of a tree)."""
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
    restores: list[Restore] = []
    try:
        own = _own_anchor(ro.checkpoints(), trust, code, res, restores)
        theirs = _parent_anchors(parent, code, own, trust, transport, res, restores)
        anchors = [a for a in (own, *theirs) if a is not None]
        w = walk(progress.counting("walking the chain", ro.rows(), ro.count(), unit="rows"),
                 keep={a.seq for a in anchors} | {r.seq for r in restores})
    finally:
        ro.close()
    res.rows, res.head_seq = w.count, w.head_seq
    res.problems.extend(w.problems)
    declared = _held_against_restores(restores, w, res, anchors, has_parent=parent is not None)
    anchors = [a for a in anchors if not _given_up(a, declared, res)]
    res.anchors = anchors
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


def _held_against_restores(restores: list[Restore], w, res: Result, anchors: list[Anchor],
                           has_parent: bool = True) -> list[Restore]:
    """The declared restores whose signed row is in the chain (each one named, with the latest checkpoint of
    the history it gave up, from the parent's record or from the anchors); one that is not is a problem."""
    out: dict[tuple[int, bytes], Restore] = {}
    for r in sorted(restores, key=lambda r: -r.time_ms):  # the latest first: it may have given up an earlier one
        later = [k for k in out.values() if k.time_ms > r.time_ms and k.backup_seq < r.seq]
        if later:
            res.notes.append(f"the restore at seq {r.seq} (signed {_when(r.time_ms)}, {r.source}) is of the history "
                             f"the restore at seq {later[0].seq} gave up")
            continue
        if r.superseded is None:
            older = [a for a in anchors if a.seq > r.backup_seq and a.time_ms < r.time_ms]
            r = dataclasses.replace(r, superseded=max(older, key=lambda a: a.seq)) if older else r
        if r.seq not in w.at:
            res.problems.append(Problem(r.seq, "deleted", f"the restore the {r.source} declares (signed "
                                                          f"{_when(r.time_ms)}) is at this seq, which is gone"))
        elif w.at[r.seq] != r.head:
            res.problems.append(Problem(r.seq, "rewritten", f"its hash is not the restore row the {r.source} "
                                                            f"declares (signed {_when(r.time_ms)})"))
        else:
            known = out.get((r.seq, r.head))
            if known is None or (known.superseded is None and r.superseded is not None):
                out[(r.seq, r.head)] = r
    for r in sorted(out.values(), key=lambda r: r.seq):
        lost = (f"rows {r.backup_seq + 1}..{r.superseded.seq} of the history before it were lost with the restore "
                f"(the {r.superseded.source} at seq {r.superseded.seq}, signed {_when(r.superseded.time_ms)}, "
                "covers them and is kept)" if r.superseded is not None and r.superseded.seq > r.backup_seq
                else "rows written after the backup, if any, were lost with it")
        res.restored.append(f"seq {r.seq}: restored {_when(r.time_ms)} from backup {r.backup}, which holds the chain "
                            f"up to seq {r.backup_seq}; {lost}")
    if out and has_parent and not res.offline and not any(r.source.startswith("parent") for r in restores):
        res.notes.append("the parent has not taken the restore record yet (it is handed over when the node runs)")
    return list(out.values())


def _given_up(a: Anchor, restores: list[Restore], res: Result) -> bool:
    """A checkpoint signed before a declared restore, past the backup's last row: of the history the restore
    gave up, not of this chain (said, not held against it)."""
    for r in restores:
        if a.seq > r.backup_seq and a.time_ms < r.time_ms:
            res.notes.append(f"the {a.source} at seq {a.seq} (signed {_when(a.time_ms)}) is of the history before the "
                             f"restore at seq {r.seq}: not held against this chain")
            return True
    return False


def _restore_of(body: rpb.CheckpointBody, source: str, superseded: Anchor | None = None) -> Restore:
    return Restore(body.seq, body.head, body.restored_from_seq, body.time_ms, body.backup, source, superseded)


def _own_anchor(rows: list[dict], trust: TrustStore, code: str, res: Result,
                restores: list[Restore]) -> Anchor | None:
    """The latest of the node's own checkpoints whose signature holds (a bad one is itself a problem); the
    restores among them go to `restores`."""
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
        if checkpoints.is_restore(body):
            restores.append(_restore_of(body, "own restore checkpoint"))
    if good is None:
        res.notes.append("no valid checkpoint of its own (none yet: one is signed audit.checkpoint_every after "
                         "the first event; or they were removed)")
    return good


def _parent_anchors(parent, code: str, own: Anchor | None, trust: TrustStore, transport: PeerTransport,
                    res: Result, restores: list[Restore]) -> list[Anchor]:
    if parent is None:
        res.notes.append("no parent: the chain is held against the node's own checkpoints only")
        return []
    pcode, address = parent
    try:
        resp = transport.latest_checkpoint(Peer(pcode, address), rpb.CheckpointRequest(
            code=code, seq=own.seq if own else 0), timeout=PARENT_TIMEOUT_S)
    except TransportError as e:
        refused = e.refused
        why = refused.public_text if refused is not None else e.what
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
    for record in resp.restores:
        try:
            body = checkpoints.verify(record.restore, trust, code=code, check_validity=False)
            superseded = None
            if record.superseded.ByteSize():
                old = checkpoints.verify(record.superseded, trust, code=code, check_validity=False)
                superseded = Anchor(f"parent's copy at {pcode}", old.seq, old.head, old.time_ms)
        except Rejected as r:
            res.problems.append(Problem(0, "broken", f"a restore record at {pcode} does not verify ({r.public_text})"))
            continue
        if checkpoints.is_restore(body):
            restores.append(_restore_of(body, f"parent's record at {pcode}", superseded))
    if not out:
        res.notes.append(f"parent {pcode} holds no checkpoint of {code} yet")
    latest = out[0] if out and out[0].source.startswith("parent's copy at") else None
    if latest is not None and any(latest.seq > r.backup_seq and latest.time_ms < r.time_ms for r in restores):
        latest = None  # of the history a restore gave up: its seqs say nothing of this chain's checkpoints
    if own is not None and latest is not None and latest.seq > own.seq:
        res.problems.append(Problem(latest.seq, "deleted", f"the parent holds a checkpoint at seq {latest.seq} but the "
                                                           f"node's own end at seq {own.seq}: its later checkpoints "
                                                           "were removed"))
    if own is not None and resp.at_seq.ByteSize() == 0 and resp.latest.ByteSize() and latest and latest.seq >= own.seq:
        res.notes.append(f"parent {pcode} never got the node's checkpoint at seq {own.seq}")
    return out
