"""How `audit verify` reads declared restores, on a real mailbox (the parent's records given as it would
send them): a restore's rows lost are named, not called tampering; a restore a later one gave up is named
as such; a restore row the chain does not hold is a problem."""
from __future__ import annotations

from node.audit import restore, verify
from node.audit.chain import walk
from node.store import audit
from node.store.database import Database
from tests.identity_fixtures import ca, clock  # noqa: F401 - fixtures

CODE = "000.21.35.H53"


def _mailbox(tmp_path, rows: int):
    path = tmp_path / "m.sqlite3"
    db = Database(path)
    with db.transaction() as tx:
        audit.append_many(tx, [(i, audit.SENT, f"m{i}", "p", "") for i in range(1, rows + 1)])
    db.close()
    return path


def _walk(path, keep):
    ro = audit.ReadOnly(path)
    try:
        return walk(ro.rows(), keep=keep)
    finally:
        ro.close()


def test_a_restore_in_the_chain_is_named_with_the_rows_it_gave_up(tmp_path, ca, clock):  # noqa: F811
    path = _mailbox(tmp_path, 3)
    assert restore.record(path, ca.signer(CODE), clock.now_ms(), "b.tar") == restore.Recorded(3, 4)
    r = verify.Restore(4, _walk(path, {4}).at[4], 3, clock.now_ms(), "b.tar", "parent's record at P",
                       verify.Anchor("parent's copy at P", 6, b"\x06" * 32, clock.now_ms() - 1))
    res = verify.Result()
    kept = verify._held_against_restores([r], _walk(path, {4}), res, [])
    assert kept == [r] and not res.problems
    assert "rows 4..6 of the history before it were lost with the restore" in res.restored[0]


def test_a_restore_a_later_one_gave_up_is_named_and_a_missing_one_is_a_problem(tmp_path, ca, clock):  # noqa: F811
    """Restored at 7, then again from an older backup (up to 4): the chain holds the second restore at 5,
    not the first; the first is of the history the second gave up. Without the second, it is a problem."""
    path = _mailbox(tmp_path, 4)
    restore.record(path, ca.signer(CODE), clock.now_ms() + 10, "older.tar")
    w = _walk(path, {5, 7})
    first = verify.Restore(7, b"\x77" * 32, 6, clock.now_ms(), "newer.tar", "parent's record at P")
    second = verify.Restore(5, w.at[5], 4, clock.now_ms() + 10, "older.tar", "parent's record at P")
    res = verify.Result()
    assert verify._held_against_restores([first, second], w, res, []) == [second]
    assert not res.problems and any("the restore at seq 7" in n and "gave up" in n for n in res.notes)
    res = verify.Result()
    verify._held_against_restores([first], w, res, [])
    assert [p.kind for p in res.problems] == ["deleted"] and res.problems[0].seq == 7
