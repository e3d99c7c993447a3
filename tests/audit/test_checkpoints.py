"""The parent's side of checkpoints: checked against the child's registered certificate, kept per seq,
never replaced by a lower one, and a second head at a seq refused (CHECKPOINT_CONFLICT)."""
from __future__ import annotations

import pytest

from node.audit import checkpoints
from node.errors import Reason, Rejected
from node.registry import records
from node.store import audit
from node.store import registry as registry_store
from node.store.database import Database
from tests.identity_fixtures import ca, clock, trust  # noqa: F401 - fixtures

CHILD, OTHER = "000.21.35.H53", "000.22.35.H53"


@pytest.fixture
def keeper(tmp_path, ca, trust, clock):  # noqa: F811
    db = Database(tmp_path / "parent.sqlite3")
    child = ca.signer(CHILD)
    signed = records.make(child, name="Xã", level=4, parent="000.00.35.H53", endpoint="127.0.0.1:1", now_ms=clock.now_ms())
    registry_store.upsert(db, registry_store.Child(CHILD, "Xã", 4, "127.0.0.1:1", signed.record, signed.signature,
                                                   clock.now_ms(), clock.now_ms()))
    return checkpoints.Keeper(db, trust, clock), child, db


def _seq(signed) -> int:
    from node.pb import registry_pb2 as rpb
    return rpb.CheckpointBody.FromString(signed.body).seq


def test_the_latest_is_kept_and_a_lower_seq_does_not_replace_it(keeper, clock):  # noqa: F811
    k, child, db = keeper
    k.take(checkpoints.make(child, 7, b"\x07" * 32, clock.now_ms()), CHILD)
    resp = k.take(checkpoints.make(child, 3, b"\x03" * 32, clock.now_ms()), CHILD)
    assert _seq(resp.latest) == 7
    again = k.take(checkpoints.make(child, 7, b"\x07" * 32, clock.now_ms() + 5), CHILD)  # same head: fine
    assert _seq(again.latest) == 7
    asked = k.latest_for(CHILD, CHILD, 7)
    assert _seq(asked.latest) == 7 and _seq(asked.at_seq) == 7
    assert not k.latest_for(CHILD, CHILD, 3).HasField("at_seq")  # below the latest: compared if kept, never stored


def test_another_head_at_a_kept_seq_is_refused_and_the_first_stays(keeper, clock, caplog):  # noqa: F811
    k, child, db = keeper
    k.take(checkpoints.make(child, 5, b"\x05" * 32, clock.now_ms()), CHILD)
    with pytest.raises(Rejected) as e:
        k.take(checkpoints.make(child, 5, b"\x55" * 32, clock.now_ms()), CHILD)
    assert e.value.reason is Reason.CHECKPOINT_CONFLICT
    assert "seq 5" in caplog.text
    assert audit.child_checkpoint(db, CHILD, 5)["head"] == b"\x05" * 32


def test_a_checkpoint_not_signed_with_the_registered_certificate_is_refused(keeper, ca, clock):  # noqa: F811
    k, child, db = keeper
    impostor = ca.signer(CHILD)  # same code, another key: not what the child registered
    with pytest.raises(Rejected) as e:
        k.take(checkpoints.make(impostor, 9, b"\x09" * 32, clock.now_ms()), CHILD)
    assert e.value.reason is Reason.BAD_SIGNATURE
    forged = checkpoints.make(child, 9, b"\x09" * 32, clock.now_ms())
    forged.body = forged.body[:-1] + b"\x00"
    with pytest.raises(Rejected) as e:
        k.take(forged, CHILD)
    assert e.value.reason is Reason.BAD_SIGNATURE
    assert audit.child_checkpoint(db, CHILD) is None


def test_only_the_child_itself_sends_or_reads_its_checkpoints(keeper, ca, clock):  # noqa: F811
    k, child, db = keeper
    with pytest.raises(Rejected) as e:
        k.take(checkpoints.make(child, 2, b"\x02" * 32, clock.now_ms()), OTHER)
    assert e.value.reason is Reason.SENDER_MISMATCH
    with pytest.raises(Rejected) as e:
        k.latest_for(CHILD, OTHER, 0)
    assert e.value.reason is Reason.SENDER_MISMATCH
    with pytest.raises(Rejected) as e:  # not registered here
        k.take(checkpoints.make(ca.signer(OTHER), 2, b"\x02" * 32, clock.now_ms()), OTHER)
    assert e.value.reason is Reason.UNKNOWN_RECIPIENT


def test_the_node_checkpoints_only_a_moved_head_and_resends_until_taken(tmp_path, ca, clock):  # noqa: F811
    db = Database(tmp_path / "child.sqlite3")
    child = ca.signer(CHILD)
    sent, fail = [], [True]

    def send(signed):
        if fail[0]:
            raise Rejected(Reason.UNREACHABLE, "parent down")
        sent.append(_seq(signed))

    cp = checkpoints.Checkpointer(db, child, clock, send=send)
    assert cp.tick() == 0  # empty log: nothing to sign
    with db.transaction() as tx:
        audit.append_many(tx, [(1, audit.SENT, "m1", "p", ""), (2, audit.DELIVERED, "m1", "p", "")])
    assert cp.tick() == 2 and sent == []  # signed and kept, not taken yet
    fail[0] = False
    assert cp.tick() == 2 and sent == [2]
    assert cp.tick() == 2 and sent == [2]  # taken: not sent again
    assert audit.latest_checkpoint(db)["parent_ms"] is not None


def test_a_child_sending_checkpoints_in_a_loop_fills_no_disk(keeper, clock, monkeypatch):  # noqa: F811
    k, child, db = keeper
    monkeypatch.setattr(audit, "MAX_KEPT_PER_CHILD", 3)
    for seq in range(1, 8):
        k.take(checkpoints.make(child, seq, bytes([seq]) * 32, clock.now_ms()), CHILD)
    kept = [s for s in range(1, 8) if audit.child_checkpoint(db, CHILD, s) is not None]
    assert kept == [5, 6, 7]


def test_a_backlog_past_the_cap_is_pruned_a_batch_per_checkpoint_never_all_at_once(keeper, clock, monkeypatch):  # noqa: F811
    """Pruning deleted every row past the cap in one statement, under the database lock: a lowered cap (or rows an
    older version kept) made one checkpoint delete thousands. Now each checkpoint taken deletes PRUNE_BATCH at most,
    the oldest first, until the cap holds."""
    k, child, db = keeper
    monkeypatch.setattr(audit, "MAX_KEPT_PER_CHILD", 30)
    for seq in range(1, 31):
        k.take(checkpoints.make(child, seq, bytes([seq]) * 32, clock.now_ms()), CHILD)
    monkeypatch.setattr(audit, "MAX_KEPT_PER_CHILD", 3)
    monkeypatch.setattr(audit, "PRUNE_BATCH", 5)
    kept = lambda last: [s for s in range(1, last + 1) if audit.child_checkpoint(db, CHILD, s) is not None]  # noqa: E731
    k.take(checkpoints.make(child, 31, bytes([31]) * 32, clock.now_ms()), CHILD)
    assert kept(31) == list(range(6, 32))  # 31 rows, the 5 oldest gone
    for seq in range(32, 38):
        k.take(checkpoints.make(child, seq, bytes([seq]) * 32, clock.now_ms()), CHILD)
    assert kept(37) == [35, 36, 37]  # 5 a checkpoint until the cap holds, then one for one


def _restore(child, seq, head, from_head, now):
    return checkpoints.make(child, seq, head, now, restored_from=(seq - 1, from_head), backup="b.tar sha256 ab")


def test_a_restore_starts_a_new_branch_and_the_history_it_gave_up_is_kept(keeper, clock, caplog):  # noqa: F811
    """The child checkpointed 5 and 9; restored from a backup holding 1..6, its chain goes 7 (restored), 8, 9 ...
    with other heads: the parent takes them (no CHECKPOINT_CONFLICT at 9), keeps the old 9, and says so."""
    k, child, db = keeper
    k.take(checkpoints.make(child, 5, b"\x05" * 32, clock.now_ms()), CHILD)
    k.take(checkpoints.make(child, 9, b"\x09" * 32, clock.now_ms()), CHILD)
    resp = k.take(_restore(child, 7, b"\x77" * 32, b"\x06" * 32, clock.now_ms() + 1), CHILD)
    assert _seq(resp.latest) == 7 and len(resp.restores) == 1
    assert _seq(resp.restores[0].superseded) == 9  # the history given up, as the parent held it
    assert "restored from a backup" in caplog.text and "rows 7..9" in caplog.text
    k.take(checkpoints.make(child, 9, b"\x99" * 32, clock.now_ms() + 2), CHILD)  # the restored chain's 9
    assert audit.child_checkpoint(db, CHILD)["head"] == b"\x99" * 32
    again = k.take(_restore(child, 7, b"\x77" * 32, b"\x06" * 32, clock.now_ms() + 1), CHILD)  # resent: same answer
    assert len(again.restores) == 1 and _seq(again.latest) == 9
    with pytest.raises(Rejected) as e:  # within the new branch, another head at a kept seq is still a conflict
        k.take(checkpoints.make(child, 9, b"\x09" * 32, clock.now_ms() + 3), CHILD)
    assert e.value.reason is Reason.CHECKPOINT_CONFLICT
    old = db.query("SELECT head FROM child_checkpoint WHERE code = ? AND seq = 9 ORDER BY branch", (CHILD,))
    assert [r["head"] for r in old] == [b"\x09" * 32, b"\x99" * 32]


def test_a_restore_that_contradicts_a_kept_checkpoint_is_refused_and_changes_nothing(keeper, clock):  # noqa: F811
    """A "backup" whose last row is not the one the parent holds at that seq is not of this child's history."""
    k, child, db = keeper
    k.take(checkpoints.make(child, 6, b"\x06" * 32, clock.now_ms()), CHILD)
    with pytest.raises(Rejected) as e:
        k.take(_restore(child, 7, b"\x77" * 32, b"\x66" * 32, clock.now_ms()), CHILD)
    assert e.value.reason is Reason.CHECKPOINT_CONFLICT
    assert not audit.child_restores(db, CHILD) and _seq(k.latest_for(CHILD, CHILD, 0).latest) == 6


@pytest.mark.parametrize("make_bad", [
    lambda c, now: checkpoints.make(c, 9, b"\x09" * 32, now, restored_from=(3, b"\x03" * 32)),  # not the next row
    lambda c, now: checkpoints.make(c, 4, b"\x04" * 32, now, restored_from=(3, b"\x03" * 5)),   # not a hash
    lambda c, now: checkpoints.make(c, 4, b"\x04" * 32, now, restored_from=(3, b"\x03" * 32), backup="a\x1b[2Jb"),
])
def test_a_malformed_restore_is_refused(keeper, clock, make_bad):  # noqa: F811
    k, child, db = keeper
    with pytest.raises(Rejected) as e:
        k.take(make_bad(child, clock.now_ms()), CHILD)
    assert e.value.reason is Reason.INVALID_REQUEST
    assert not audit.child_restores(db, CHILD)


def test_an_untaken_restore_checkpoint_is_handed_over_before_later_ones(tmp_path, ca, clock):  # noqa: F811
    from node.audit import restore
    path = tmp_path / "child.sqlite3"
    child = ca.signer(CHILD)
    db = Database(path)
    with db.transaction() as tx:
        audit.append_many(tx, [(1, audit.SENT, "m1", "p", "")])
    db.close()
    assert restore.record(path, child, clock.now_ms(), "b.tar") == restore.Recorded(1, 2)
    db = Database(path)
    with db.transaction() as tx:
        audit.append_many(tx, [(3, audit.SENT, "m2", "p", "")])
    sent = []
    cp = checkpoints.Checkpointer(db, child, clock, send=lambda signed: sent.append(_seq(signed)))
    assert cp.tick() == 3 and sent == [2, 3]
    assert cp.tick() == 3 and sent == [2, 3]


def test_a_second_restore_is_held_against_the_branch_its_backup_head_is_in(keeper, clock):  # noqa: F811
    """Restored at 7 (from a backup up to 6); later restored again from an older backup up to 4: its head is
    compared with the checkpoint the parent kept at 4 in the first history, not ignored."""
    k, child, db = keeper
    k.take(checkpoints.make(child, 4, b"\x04" * 32, clock.now_ms()), CHILD)
    k.take(checkpoints.make(child, 9, b"\x09" * 32, clock.now_ms()), CHILD)
    k.take(_restore(child, 7, b"\x77" * 32, b"\x06" * 32, clock.now_ms() + 1), CHILD)
    with pytest.raises(Rejected) as e:
        k.take(_restore(child, 5, b"\x55" * 32, b"\x44" * 32, clock.now_ms() + 2), CHILD)
    assert e.value.reason is Reason.CHECKPOINT_CONFLICT
    resp = k.take(_restore(child, 5, b"\x55" * 32, b"\x04" * 32, clock.now_ms() + 2), CHILD)
    assert [_seq(r.restore) for r in resp.restores] == [7, 5] and _seq(resp.latest) == 5
