"""Directory with no arguments: the whole tree reachable from a node, paged (issue 11), on the shared
cluster of real node processes (configs/topologies/small.yaml, 15 nodes under the national root VN)."""
from __future__ import annotations

import grpc
import pytest

from node.grpc_errors import fields_of
from node.pb import mailbox_pb2 as mpb

COMMUNE, PROVINCE = "000.21.35.H53", "000.00.00.H29"


def pages(cluster, at: str, **request) -> list[mpb.DirectoryResponse]:
    c = cluster.client(at)
    out, token = [], ""
    while True:
        resp = c.stub.Directory(mpb.DirectoryRequest(page_token=token, **request), metadata=c.metadata, timeout=30)
        out.append(resp)
        if not resp.has_more:
            return out
        assert resp.next_page_token
        token = resp.next_page_token


@pytest.mark.parametrize("at", [COMMUNE, PROVINCE, "VN"])
def test_no_arguments_list_the_whole_tree_in_pages_from_any_node(cluster, at):
    got = pages(cluster, at, page_size=4)
    codes = [a.code for p in got for a in p.agencies]
    assert sorted(codes) == codes and len(set(codes)) == len(codes)  # in code order, each once across pages
    # every node of the tree, the top (VN) included: what VN lists below itself (other modules sharing the
    # cluster may register more), and at least every node the harness started
    below_root = {a.code for a in cluster.directory("VN", parent="VN", recursive=True)}
    assert set(codes) == below_root | {"VN"} and set(codes) >= set(cluster.nodes)
    assert all(len(p.agencies) == 4 and p.has_more for p in got[:-1]) and not got[-1].has_more
    assert got[-1].next_page_token == ""
    top = next(a for p in got for a in p.agencies if a.code == "VN")
    assert top.level == 0 and top.parent == ""


def test_filters_apply_to_the_whole_tree_and_one_page_says_there_is_no_more(cluster):
    [page] = pages(cluster, COMMUNE, level=2)
    districts = {a.code for p in ("000.00.00.H53", "000.00.00.H29") for a in cluster.directory(p, parent=p)}
    assert {a.code for a in page.agencies} == districts and not page.has_more
    # a node's own children (its code as parent) and its subtree (recursive) are paged the same way
    [own] = pages(cluster, "000.00.35.H53", parent="000.00.35.H53")
    assert {a.code for a in own.agencies} == {"000.21.35.H53", "000.22.35.H53"} and not own.has_more


@pytest.mark.parametrize("token", ["x" * 65, "zzz", "000.00.35.H53", "VN"])
def test_a_page_token_it_did_not_give_is_refused_naming_it(cluster, token):
    """Not read as "past the end" (an empty last page), which would end a client's listing early in silence."""
    c = cluster.client(COMMUNE)
    with pytest.raises(grpc.RpcError) as e:
        c.stub.Directory(mpb.DirectoryRequest(page_token=token), metadata=c.metadata, timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fields_of(e.value) == ["page_token"]


def test_a_token_is_opaque_and_good_only_for_its_own_listing(cluster):
    c = cluster.client(COMMUNE)
    first = c.stub.Directory(mpb.DirectoryRequest(page_size=2), metadata=c.metadata, timeout=30)
    token = first.next_page_token
    assert first.has_more and first.agencies[-1].code not in token
    for other in (dict(parent=PROVINCE), dict(page_token=token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))):
        with pytest.raises(grpc.RpcError) as e:
            c.stub.Directory(mpb.DirectoryRequest(**{"page_token": token, **other}), metadata=c.metadata, timeout=10)
        assert fields_of(e.value) == ["page_token"]
    nxt = c.stub.Directory(mpb.DirectoryRequest(page_size=2, page_token=token), metadata=c.metadata, timeout=30)
    assert nxt.agencies[0].code > first.agencies[-1].code


def test_name_search_folds_vietnamese_diacritics(cluster):
    names = {a.name for a in cluster.client(COMMUNE).directory(name_contains="hoa")}
    assert {"UBND thị xã Hòa Thành", "UBND xã Trường Hòa", "UBND tỉnh Hòa Bình", "UBND xã Hòa Sơn"} <= names
    assert {a.name for a in cluster.client(COMMUNE).directory(name_contains="HÒA")} == names
