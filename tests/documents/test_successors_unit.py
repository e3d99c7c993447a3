"""node.documents.successors on its own: who may answer for a retired agency, and what it costs to ask."""
from __future__ import annotations

import pytest

from node.documents.successors import UNCERTAIN_FOR_MS, Successors
from node.errors import Reason, Rejected

X, Y, Z, W = "000.21.38.H53", "000.22.38.H53", "000.23.38.H53", "000.24.38.H53"


class Tree:
    """A lookup through the tree that counts its questions."""

    def __init__(self, answer) -> None:
        self.answer, self.asked = answer, []

    def __call__(self, code: str, fresh: bool) -> list[str]:
        self.asked.append((code, fresh))
        if isinstance(self.answer, Rejected):
            raise self.answer
        return self.answer


def test_any_agency_on_the_chain_answers_for_the_retired_one_others_are_refused():
    s = Successors(lambda code: [Y, Z] if code == X else [])
    assert s.answers_for(Y, X) and s.answers_for(Z, X)
    with pytest.raises(Rejected) as e:
        s.answers_for(W, X)
    assert e.value.reason is Reason.NOT_A_SUCCESSOR and e.value.metadata["successor"] == Z
    assert s.answers_for(W, Y) is False  # Y is not retired: the caller's own refusal stands


def test_a_cached_answer_from_before_the_succession_is_asked_again_past_the_cache():
    answers = iter([[], [Z]])
    tree = Tree(None)
    s = Successors(lambda code: [], lambda code, fresh: tree.asked.append((code, fresh)) or next(answers))
    assert s.answers_for(Z, X) and tree.asked == [(X, False), (X, True)]


def test_a_bad_list_keeps_its_reason_and_an_unknown_code_is_not_retired():
    s = Successors(lambda code: [], Tree(Rejected(Reason.SUCCESSION_NOT_COMPETENT, "D2 is not the parent")))
    with pytest.raises(Rejected) as e:
        s.answers_for(Z, X)
    assert e.value.reason is Reason.SUCCESSION_NOT_COMPETENT and X in e.value.public_detail
    assert Successors(lambda code: [], Tree(Rejected(Reason.UNKNOWN_RECIPIENT, "nobody"))).answers_for(Z, X) is False


def test_while_the_tree_cannot_tell_one_question_per_code_answers_a_batch():
    now = [1_000_000]
    tree = Tree(Rejected(Reason.UNREACHABLE, "parent down"))
    s = Successors(lambda code: [], tree, lambda: now[0])
    for _ in range(50):  # 50 statuses about documents of one counterpart, the parent down
        with pytest.raises(Rejected) as e:
            s.answers_for(Z, X)
        assert e.value.reason is Reason.SUCCESSION_UNCERTAIN
    assert tree.asked == [(X, False)]
    now[0] += UNCERTAIN_FOR_MS
    with pytest.raises(Rejected):
        s.answers_for(Z, X)
    assert tree.asked == [(X, False), (X, False)]  # asked again once the answer is old


def test_where_a_status_goes_asks_the_cache_only_and_shares_the_uncertain_memo():
    """Lifecycle.report asks `chain` where a status to a sender goes: held lists first, one cached lookup (no
    question past the cache), and while the tree cannot tell, one question per code, not one per status."""
    assert Successors(lambda code: [Y, Z] if code == X else []).chain(X) == [Y, Z]
    tree = Tree([Z])
    assert Successors(lambda code: [], tree).chain(X) == [Z] and tree.asked == [(X, False)]
    down = Tree(Rejected(Reason.UNREACHABLE, "parent down"))
    s = Successors(lambda code: [], down, lambda: 1_000_000)
    for _ in range(10):
        with pytest.raises(Rejected) as e:
            s.chain(X)
        assert e.value.reason is Reason.SUCCESSION_UNCERTAIN
    assert down.asked == [(X, False)]
