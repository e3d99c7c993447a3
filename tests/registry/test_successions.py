"""Succession lists on one node, real keys and a clock the test moves: who may retire what, cycles, newest
wins, effective times, codes this node cannot place, and what a restart reads back."""
from __future__ import annotations

import pytest

from node.codes import Hierarchy
from node.errors import Reason, Rejected
from node.pb import registry_pb2 as rpb
from node.registry import successions as succ
from node.store.database import Database

P, D = "000.00.00.H53", "000.00.35.H53"
C1, C2, C3 = "000.21.35.H53", "000.22.35.H53", "000.23.35.H53"
ODD = "vxp.xa.01"  # an identifier registered in another branch: this node cannot place it


def one(old: list[str], to: str, effective_ms: int = 0) -> rpb.Succession:
    return rpb.Succession(old_codes=old, successor=to, effective_ms=effective_ms, reason="sáp nhập")


@pytest.fixture
def held(tmp_path, pki, clock):
    db = Database(tmp_path / "s.sqlite3")
    s = succ.Successions(db, pki.trust(clock), clock, Hierarchy)
    yield s
    db.close()


def offered(held, pki, clock, issuer, *items, number=1):
    return held.offer(succ.sign(pki.signer(issuer), number, list(items), clock.now_ms()), "test")


def test_the_parent_retires_its_codes_and_the_chain_is_followed(held, pki, clock):
    assert offered(held, pki, clock, D, one([C1], C2))
    assert offered(held, pki, clock, D, one([C1], C2), one([C2], C3), number=2)  # the newer list replaces it
    assert (held.successor(C1), held.successor(C2), held.successor(C3)) == (C3, C3, None)
    assert held.numbers() == {D: 2}
    assert not held.offer(held.list_of(D), "again")  # the very list held: nothing to take


def test_only_the_competent_authority_and_a_successor_below_it(held, pki, clock):
    for issuer, item in ((C1, one([D], C1)),      # a commune for its district
                         (P, one([C1], C2)),       # the province for a district's communes: not their parent
                         (D, one([C1], "000.21.38.H53"))):  # a successor in another district
        with pytest.raises(Rejected) as e:
            offered(held, pki, clock, issuer, item)
        assert e.value.reason is Reason.SUCCESSION_NOT_COMPETENT
    assert held.numbers() == {}


def test_a_level_abolished_its_mail_goes_to_the_issuer(held, pki, clock):
    assert offered(held, pki, clock, P, one([D], P))  # the district's mail to its province
    assert held.successor(D) == P


def test_an_identifier_this_node_cannot_place_is_taken_where_the_signed_list_puts_it(held, pki, clock):
    assert offered(held, pki, clock, D, one([ODD], C2))
    assert held.successor(ODD) == C2


def test_cycles_across_lists_and_codes_retired_twice_are_refused(held, pki, clock):
    assert offered(held, pki, clock, D, one([C1], C2))
    with pytest.raises(Rejected) as e:  # D's own newer list making C2 -> C1 while C1 -> C2
        offered(held, pki, clock, D, one([C1], C2), one([C2], C1), number=2)
    assert e.value.reason is Reason.SUCCESSION_CYCLE
    with pytest.raises(Rejected) as e:
        offered(held, pki, clock, D, one([C1], C2), one([C1], C3), number=3)
    assert e.value.reason is Reason.SUCCESSION_CYCLE
    assert succ.chains_problem({f"c{i}": f"c{i + 1}" for i in range(succ.MAX_CHAIN + 1)})  # too long a chain
    assert held.numbers() == {D: 1}


def test_an_older_list_is_stale_and_changes_nothing(held, pki, clock):
    older = succ.sign(pki.signer(D), 1, [one([C1], C2)], clock.now_ms())
    assert offered(held, pki, clock, D, one([C1], C3), number=2)
    with pytest.raises(Rejected) as e:
        held.offer(older, "replayed")
    assert (e.value.reason, e.value.metadata) == (Reason.SUCCESSION_STALE, {"held": "2"})
    assert held.successor(C1) == C3


def test_a_succession_takes_effect_at_its_time(held, pki, clock):
    assert offered(held, pki, clock, D, one([C1], C2, effective_ms=clock.now_ms() + 60_000))
    assert held.successor(C1) is None and held.effective_codes() == []
    clock.advance(61)
    assert held.successor(C1) == C2 and held.effective_codes() == [C1]


def test_a_restart_reads_the_lists_back(held, pki, clock, tmp_path):
    assert offered(held, pki, clock, D, one([C1, C2], C3))
    again = succ.Successions(held.db, held.trust, clock, Hierarchy)
    again.load()
    assert again.numbers() == {D: 1} and again.successor(C2) == C3


def test_bounds(held, pki, clock):
    for item in (one([f"000.{n:02d}.35.H53" for n in range(1, succ.MAX_OLD_CODES + 2)], C3),
                 rpb.Succession(old_codes=[C1], successor=C2, reason="x" * (succ.MAX_REASON + 1))):
        with pytest.raises(Rejected) as e:
            offered(held, pki, clock, D, item)
        assert e.value.reason is Reason.SUCCESSION_TOO_LARGE
    with pytest.raises(Rejected) as e:
        succ.check_count([None] * (succ.MAX_LISTS + 1))
    assert e.value.reason is Reason.SUCCESSION_TOO_LARGE


def test_a_signature_over_other_bytes_is_refused(held, pki, clock):
    signed = succ.sign(pki.signer(D), 1, [one([C1], C2)], clock.now_ms())
    body = rpb.SuccessionList.FromString(signed.body)
    body.successions[0].successor = C3
    with pytest.raises(Rejected) as e:
        held.offer(rpb.SignedSuccessionList(body=body.SerializeToString(), signature=signed.signature,
                                            cert_der=signed.cert_der), "forged")
    assert e.value.reason is Reason.SUCCESSION_BAD_SIGNATURE


def test_a_successor_re_parented_elsewhere_since_is_still_the_issuers_by_the_code_rule(tmp_path, pki, clock):
    """The district merged C1 into C2, then C2 moved under another province (re-parenting, docs/restructuring.md):
    a node that learned C2's new place still takes the district's list; a successor in another district does
    not pass for that."""
    moved = Hierarchy({C2: "000.00.00.H19"})
    db = Database(tmp_path / "m.sqlite3")
    try:
        held = succ.Successions(db, pki.trust(clock), clock, lambda: moved)
        assert offered(held, pki, clock, D, one([C1], C2))
        assert held.successor(C1) == C2
        with pytest.raises(Rejected) as e:
            offered(held, pki, clock, D, one([C1], C2), one([C3], "000.21.38.H53"), number=2)
        assert e.value.reason is Reason.SUCCESSION_NOT_COMPETENT
    finally:
        db.close()
