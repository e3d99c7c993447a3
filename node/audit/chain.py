"""The audit hash chain: each row's hash covers its content and the previous row's hash.

hash = SHA-256 over a canonical encoding of (seq, time, event, message id, peer, detail,
prev_hash): a domain tag, then each field as a 4-byte big-endian length and its bytes
(integers as decimal ASCII, text as UTF-8), then the previous hash. Length prefixes
make the encoding unambiguous (no field can borrow bytes from its neighbour), and the
seq inside the hash makes a row moved to another place in the chain show. The first
row's prev_hash is GENESIS (32 zero bytes).

`walk` checks a chain read in seq order and NAMES what is wrong: an edited row (its
content no longer gives its hash), a deleted one (the next row is chained to a hash no
row has, or seqs are missing), a reordered pair (a row that hashes right only at
another seq). Only a signed checkpoint (node/audit/checkpoints.py) proves that the
chain was not rewritten wholesale or cut short after it.
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Iterable, Iterator

DOMAIN = b"lienthong-audit-v1"
GENESIS = bytes(32)


def entry_hash(seq: int, time_ms: int, event: str, message_id: str, peer: str, detail: str, prev_hash: bytes) -> bytes:
    h = hashlib.sha256()
    for part in (DOMAIN, str(seq).encode(), str(time_ms).encode(), event.encode(), (message_id or "").encode(),
                 (peer or "").encode(), (detail or "").encode()):
        h.update(struct.pack(">I", len(part)))
        h.update(part)
    h.update(prev_hash)
    return h.digest()


@dataclass(frozen=True)
class Row:
    seq: int
    time_ms: int
    event: str
    message_id: str
    peer: str
    detail: str
    prev_hash: bytes
    hash: bytes

    def hash_at(self, seq: int, prev_hash: bytes) -> bytes:
        return entry_hash(seq, self.time_ms, self.event, self.message_id, self.peer, self.detail, prev_hash)


def chain(rows: Iterable[tuple[int, str, str, str, str]], head_seq: int, head_hash: bytes) -> Iterator[tuple]:
    """(time_ms, event, message_id, peer, detail) rows as chained rows after (head_seq, head_hash)."""
    seq, prev = head_seq, head_hash
    for time_ms, event, message_id, peer, detail in rows:
        seq += 1
        h = entry_hash(seq, time_ms, event, message_id, peer, detail, prev)
        yield seq, time_ms, event, message_id, peer, detail, prev, h
        prev = h


@dataclass(frozen=True)
class Problem:
    seq: int
    kind: str      # edited | deleted | reordered | broken | stopped; against a checkpoint: truncated | rewritten
    detail: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.kind}: {self.detail}"


@dataclass
class Walk:
    """What a walk over the chain found: its head, every problem, and each row's hash by seq for
    comparison with checkpoints (kept only at the seqs asked for)."""
    count: int = 0
    head_seq: int = 0
    head_hash: bytes = GENESIS
    problems: list[Problem] | None = None
    at: dict[int, bytes] | None = None

    @property
    def intact(self) -> bool:
        return not self.problems


MAX_PROBLEMS = 1000  # a wholesale rewrite names the first ones, not a million lines


def walk(rows: Iterable[Row], keep: Iterable[int] = ()) -> Walk:
    """Check rows read in ascending seq order. `keep`: seqs whose stored hash to return (checkpoints)."""
    keep = set(keep)
    out = Walk(problems=[], at={})
    problems = out.problems
    by_hash: dict[bytes, Row] = {}
    prev: Row | None = None
    pending: list[Row] = []  # rows whose own hash fails: edited, or moved (decided below)
    prev_failed = False
    for row in rows:
        out.count += 1
        if row.seq in keep:
            out.at[row.seq] = row.hash
        expected_prev = prev.hash if prev is not None else GENESIS
        expected_seq = prev.seq + 1 if prev is not None else 1
        by_hash.setdefault(row.hash, row)
        failed = row.hash_at(row.seq, row.prev_hash) != row.hash
        if failed:
            pending.append(row)
        elif row.seq > expected_seq:
            first, last = expected_seq, row.seq - 1
            gone = f"seq {first}" if first == last else f"seqs {first}..{last}"
            problems.append(Problem(row.seq, "deleted", f"{gone} missing before it"))
        elif prev_failed:
            pass  # its link is to a row already named
        elif row.prev_hash != expected_prev:
            if row.prev_hash not in by_hash and row.prev_hash != GENESIS and prev is not None:
                problems.append(Problem(prev.seq, "edited", f"changed and its hash recomputed: seq {row.seq} is "
                                                            "chained to the hash it had"))
            elif row.prev_hash not in by_hash and row.prev_hash != GENESIS:
                problems.append(Problem(row.seq, "deleted", "chained to a row that is no longer in the log"))
            else:
                linked = by_hash[row.prev_hash].seq if row.prev_hash in by_hash else 0
                problems.append(Problem(row.seq, "broken", f"chained to seq {linked}, not to the row before it"))
        prev, prev_failed = row, failed
        if len(problems) + len(pending) >= MAX_PROBLEMS:
            problems.append(Problem(row.seq, "stopped", f"more than {MAX_PROBLEMS} problems: the rest not checked"))
            break
    if prev is not None:
        out.head_seq, out.head_hash = prev.seq, prev.hash
    _classify(pending, by_hash, problems)
    problems.sort(key=lambda p: p.seq)
    return out


def _classify(pending: list[Row], by_hash: dict[bytes, Row], problems: list[Problem]) -> None:
    """A row whose hash fails at its own seq: moved (it hashes right at the seq its links back to an
    unmoved row give it), or edited."""
    failing = {row.seq for row in pending}
    true_seq: dict[bytes, int | None] = {GENESIS: 0}

    def seq_of(h: bytes) -> int | None:
        trail = []
        while h not in true_seq:  # walk the links back to a row in place (or genesis), then count forward
            row = by_hash.get(h)
            if row is None or h in trail or len(trail) > 64:
                true_seq[h] = None
                break
            if row.seq not in failing:
                true_seq[h] = row.seq
                break
            trail.append(h)
            h = row.prev_hash
        base = true_seq[h]
        for t in reversed(trail):
            base = base + 1 if base is not None else None
            true_seq[t] = base
        return true_seq[trail[0]] if trail else base

    moved: dict[int, int] = {}
    for row in pending:
        before = seq_of(row.prev_hash)
        original = before + 1 if before is not None else None
        if original is not None and original != row.seq and row.hash_at(original, row.prev_hash) == row.hash:
            moved[row.seq] = original
    for row in pending:
        if row.seq in moved:
            swapped = moved.get(moved[row.seq]) == row.seq
            problems.append(Problem(row.seq, "reordered",
                                    f"holds the entry written as seq {moved[row.seq]}"
                                    + (f" (seq {row.seq} and {moved[row.seq]} swapped)" if swapped else "")))
        else:
            problems.append(Problem(row.seq, "edited", f"its content ({row.event} {row.message_id or '-'} at "
                                                       f"{row.time_ms}) does not give its hash: changed after it "
                                                       "was written"))
