"""The successor's hand-over files (node.takeover.HandOvers): none outlives its transfer, and the last chunk is
judged by the digest of what came, not by reading the file again."""
from __future__ import annotations

import hashlib

import pytest

from node.clock import FakeClock
from node.errors import Reason, Rejected
from node.pb import registry_pb2 as rpb
from node.takeover import HANDOVER_IDLE_S, HandOvers

Z, X, Y = "000.00.03.H53", "000.00.01.H53", "000.00.02.H53"  # X and Y retired into Z


class Takeovers:
    """Stands for node.takeover.Takeovers: its clock, and the files it was given to take over."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.taken: list[bytes] = []

    def take(self, path, seal_key, expect):
        self.taken.append(path.read_bytes())

        class Done:
            class imported:
                inbox = sent = resealed = already = 0
            kept_sealed = 0
        return Done()


def handovers(tmp_path, takeovers=None) -> HandOvers:
    return HandOvers(Z, takeovers or Takeovers(), lambda code: Z if code in (X, Y) else None, tmp_path)


def chunk(data: bytes, whole: bytes, offset: int = 0) -> rpb.HandOverChunk:
    return rpb.HandOverChunk(backup_sha256=hashlib.sha256(whole).hexdigest(), offset=offset, data=data,
                             total=len(whole))


def test_a_file_left_by_an_earlier_run_is_removed_at_start(tmp_path):
    left = tmp_path / ".handover-0123456789abcdef.tar"
    left.write_bytes(b"half a transfer")
    (tmp_path / "mailbox.sqlite3").write_bytes(b"kept")
    handovers(tmp_path)
    assert not left.exists() and (tmp_path / "mailbox.sqlite3").exists()


def test_an_abandoned_transfer_is_dropped_once_idle_and_its_file_removed(tmp_path):
    t = Takeovers()
    h = handovers(tmp_path, t)
    whole = b"x" * 100
    assert h.take(X, chunk(whole[:50], whole)).received == 50
    files = list(tmp_path.glob(HandOvers.PATTERN))
    assert len(files) == 1
    t.clock.advance(HANDOVER_IDLE_S - 1)
    assert h.take(Y, chunk(b"y" * 10, b"y" * 20)).received == 10  # X's is not idle long enough yet
    assert files[0].exists()
    t.clock.advance(2)
    assert h.take(Y, chunk(b"y" * 10, b"y" * 20, offset=10)).done  # Y's own transfer goes on and ends
    assert not files[0].exists()  # X's was dropped
    with pytest.raises(Rejected) as e:
        h.take(X, chunk(whole[50:], whole, offset=50))
    assert e.value.reason == Reason.INVALID_REQUEST and "start again at 0" in e.value.public_text
    assert h.take(X, chunk(whole, whole)).done and t.taken == [b"y" * 20, whole]
    assert list(tmp_path.glob(HandOvers.PATTERN)) == []


def test_the_last_chunk_is_judged_by_the_digest_of_what_came(tmp_path):
    t = Takeovers()
    h = handovers(tmp_path, t)
    whole = b"a" * 64 + b"b" * 64
    h.take(X, chunk(whole[:64], whole))
    with pytest.raises(Rejected) as e:
        h.take(X, chunk(b"c" * 64, whole, offset=64))  # other bytes than the SHA-256 names
    assert e.value.reason == Reason.INVALID_REQUEST and e.value.field == "backup_sha256"
    assert t.taken == [] and list(tmp_path.glob(HandOvers.PATTERN)) == []


def test_a_transfer_started_again_while_the_last_one_is_taken_over_cuts_neither(tmp_path):
    """The retiring node's last call may time out while its successor still imports (a large mailbox), and it
    starts again at 0: the file being taken over is not cut or removed by the new transfer, nor is the new one's."""
    import threading

    class Slow(Takeovers):
        def __init__(self):
            super().__init__()
            self.inside, self.go_on = threading.Event(), threading.Event()

        def take(self, path, seal_key, expect):
            if not self.inside.is_set():
                self.inside.set()
                assert self.go_on.wait(10)
            return super().take(path, seal_key, expect)

    t = Slow()
    h = handovers(tmp_path, t)
    whole = b"w" * 100
    answers = []
    first = threading.Thread(target=lambda: answers.append(h.take(X, chunk(whole, whole))))
    first.start()
    assert t.inside.wait(10)  # the first transfer is being taken over
    assert h.take(X, chunk(whole[:40], whole)).received == 40  # started again at 0
    t.go_on.set()
    first.join(10)
    assert answers and answers[0].done and t.taken == [whole]  # the first took the whole file
    assert h.take(X, chunk(whole[40:], whole, offset=40)).done and t.taken == [whole, whole]  # the second, whole too
    assert list(tmp_path.glob(".handover-*")) == []


def test_crash_leftovers_of_takeovers_and_hand_overs_are_removed_at_start(tmp_path):
    from node.takeover import Takeovers as RealTakeovers
    for name in (".takeover-0123456789abcdef.sqlite3", ".takeover-0123456789abcdef.sqlite3-wal",
                 ".takeover-0123456789abcdef.sqlite3-journal"):
        (tmp_path / name).write_bytes(b"x")
    work = tmp_path / ".handover-abc123"  # a retiring node's work directory (hand_over), its backup inside
    work.mkdir()
    (work / "lienthong-backup.tar").write_bytes(b"x")
    (tmp_path / "mailbox.sqlite3").write_bytes(b"kept")
    RealTakeovers(Z, None, None, FakeClock(), lambda code: None, lambda: None, 1 << 20, tmp_path)
    handovers(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mailbox.sqlite3"]
