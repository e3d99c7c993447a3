"""Directory's name search folding (node/api/folding.py) and its page tokens (node/api/page_tokens.py)."""
from __future__ import annotations

import pytest

from node.api.folding import fold
from node.api.page_tokens import PageTokens
from node.errors import Reason, Rejected


@pytest.mark.parametrize("typed, name", [("hoa", "UBND thị xã Hòa Thành"), ("dong nai", "Sở Tư pháp tỉnh Đồng Nai"),
                                         ("DUONG", "Đường"), ("ủy ban", "Ủy ban nhân dân"), ("hoà", "Hòa")])
def test_a_search_without_marks_finds_the_name_with_them(typed, name):
    assert fold(typed) in fold(name)


def test_folding_takes_marks_off_and_keeps_the_letters():
    assert fold("ư") == "u" and fold("ơ") == "o" and fold("đ") == "d" and fold("Bình") == "binh"


def test_a_token_reads_back_only_for_its_listing_and_key():
    tokens = PageTokens(b"k" * 32)
    listing = ("000.00.35.H53", False)
    token = tokens.issue(listing, "000.21.35.H53")
    assert "000.21.35.H53" not in token and tokens.read(listing, token) == "000.21.35.H53"
    assert tokens.read(listing, "") == ""
    for bad_listing, bad_token in [(("000.00.35.H53", True), token), (listing, token + "A"), (listing, "a.b"),
                                   (listing, "000.21.35.H53"), (listing, "x" * 200), (listing, "!!.??")]:
        with pytest.raises(Rejected) as e:
            tokens.read(bad_listing, bad_token)
        assert (e.value.reason, e.value.field) == (Reason.INVALID_REQUEST, "page_token")
    with pytest.raises(Rejected):
        PageTokens(b"j" * 32).read(listing, token)  # another process (a restart) did not issue it
