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


def test_a_listing_searched_by_name_folds_each_name_once_for_all_its_pages(tmp_path, monkeypatch):
    """Every page of a name search folded every name of the listing again: paging 10,000 agencies 100 at a time
    folded a million names. Now a listing folds its names once, on its first search."""
    from node.api import mailbox
    from node.harness.inproc import running_pair
    from node.harness.nodes import NodeSpec
    from node.pb import registry_pb2 as rpb

    a, b = "000.00.01.H53", "000.00.02.H53"
    with running_pair(tmp_path, NodeSpec(a, "Sở A"), NodeSpec(b, "Sở B")) as (na, _, ha, _):
        listed = [rpb.DirectoryEntry(record=rpb.SignedRecord(record=rpb.AgencyRecord(
            code=f"000.{i:02d}.01.H53", name=f"UBND xã Hòa {i}" if i % 2 else f"Sở {i}", level=3,
            parent=a).SerializeToString())) for i in range(1, 51)]
        na.directory.whole_tree = lambda: listed
        calls = []
        real = mailbox.fold
        monkeypatch.setattr(mailbox, "fold", lambda text: calls.append(text) or real(text))
        client = ha.client()
        try:
            found = client.directory(name_contains="HOA", page_size=5)
        finally:
            client.close()
    assert [x.code for x in found] == [f"000.{i:02d}.01.H53" for i in range(1, 51, 2)]
    pages = 5
    assert len(calls) == 50 + pages  # each name once, the needle once a page
