"""Topology files: loaded, checked against the agency-code rule, flattened in tree order."""
from __future__ import annotations

import pytest
import yaml

from node import codes
from node.harness import topology
from node.harness.topology import TopologyError


def test_small_is_the_national_root_two_provinces_four_districts_eight_communes():
    t = topology.load("small")
    assert t.name == "small" and len(t) == 15
    assert t.roots() == [codes.ROOT]
    assert [len(t.at_depth(d)) for d in range(4)] == [1, 2, 4, 8]
    assert set(t.at_depth(1)) == {"000.00.00.H53", "000.00.00.H29"}
    assert "000.23.38.H53" in t.children("000.00.38.H53")
    for code, _, parent in t.flat():  # every child sits under its parent by the code rule
        assert codes.parent(code) == parent


def test_dong_nai_is_one_province_with_its_departments_and_95_communes_directly_below_it_without_a_root():
    t = topology.load("dong-nai")
    assert len(t) == 109
    [province] = t.roots()
    assert province == "000.00.00.H19" and t.node(province).parent is None
    assert max(n.depth for n in t) == 1  # two tiers: no district between province and commune
    below = t.children(province)
    assert len(below) == 108 and len(t.leaves()) == 108
    odd = [c for c in below if t.node(c).explicit_parent]
    assert len(odd) == 16 and all(c.startswith("H19.") for c in odd)
    assert len(set(t.codes)) == 109


def test_binh_phuoc_before_the_merger_is_one_province_eleven_districts_111_communes_without_a_root():
    t = topology.load("binh-phuoc")
    assert len(t) == 123
    [province] = t.roots()
    assert province != codes.ROOT and t.node(province).parent is None
    districts = t.children(province)
    assert len(districts) == 11
    assert sorted(len(t.children(d)) for d in districts) == [10] * 10 + [11]
    assert len(t.leaves()) == 111
    assert len(set(t.codes)) == 123


def test_flat_is_tree_order_parents_first():
    t = topology.load("small")
    seen = set()
    for code, name, parent in t.flat():
        assert parent is None or parent in seen
        assert name
        seen.add(code)
    assert t.subtree("000.00.00.H53") == [c for c in t.codes if codes.is_under(c, "000.00.00.H53")]


def _tree(*children, root="000.00.00.H53"):
    return {"name": "t", "nodes": [{"code": root, "name": "Tỉnh", "children": list(children)}]}


def _error(data) -> str:
    with pytest.raises(TopologyError) as e:
        topology.parse(data)
    return str(e.value)


def test_a_child_not_under_its_parent_by_the_code_rule_is_refused_naming_the_path():
    data = _tree({"code": "000.00.35.H53", "name": "Huyện"},
                 {"code": "000.00.38.H53", "name": "Huyện", "children": [
                     {"code": "000.23.38.H53", "name": "Xã"},
                     {"code": "000.23.35.H53", "name": "Xã lạc"}]})
    msg = _error(data)
    assert msg.startswith("nodes[0].children[1].children[1].code: 000.23.35.H53 is not directly under 000.00.38.H53")
    assert "000.00.35.H53" in msg  # says where the code rule puts it


def test_a_grandchild_listed_as_a_child_is_refused():
    assert _error(_tree({"code": "000.23.38.H53", "name": "Xã"})).startswith("nodes[0].children[0].code:")


def test_malformed_codes_duplicates_and_missing_names_are_named():
    assert _error(_tree({"code": "000.00.3.H53", "name": "x"})).startswith("nodes[0].children[0].code: agency code")
    dup = _tree({"code": "000.00.35.H53", "name": "a"}, {"code": "000.00.35.H53", "name": "b"})
    assert _error(dup) == "nodes[0].children[1].code: duplicate of nodes[0].children[0].code (000.00.35.H53)"
    assert _error(_tree({"code": "000.00.35.H53"})).startswith("nodes[0].children[0].name: expected a non-empty string")
    assert _error(_tree({"code": "000.00.35.H53", "name": "a", "kids": []})).startswith(
        "nodes[0].children[0].kids: unknown key")
    assert _error({"name": "t", "nodes": []}).startswith("nodes: expected a non-empty list")


def test_codes_outside_the_qcvn_form_need_an_explicit_parent_naming_the_enclosing_node():
    without = _tree({"code": "vxp.saas.03", "name": "Hệ thống"})
    assert "has no registered parent" in _error(without)
    with_parent = _tree({"code": "vxp.saas.03", "name": "Hệ thống", "parent": "000.00.00.H53",
                         "children": [{"code": "vxp.saas.03.01", "name": "Đơn vị", "parent": "vxp.saas.03"}]})
    t = topology.parse(with_parent)
    assert t.flat() == [("000.00.00.H53", "Tỉnh", None), ("vxp.saas.03", "Hệ thống", "000.00.00.H53"),
                        ("vxp.saas.03.01", "Đơn vị", "vxp.saas.03")]
    assert t.hierarchy().route("vxp.saas.03.01", "000.00.00.H53") == ["vxp.saas.03.01", "vxp.saas.03", "000.00.00.H53"]
    wrong = _tree({"code": "vxp.saas.03", "name": "Hệ thống", "parent": "000.00.00.H29"})
    assert _error(wrong).startswith("nodes[0].children[0].parent: parent '000.00.00.H29' is not the enclosing node")


def test_load_by_name_or_path_and_unknown_names(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text(yaml.safe_dump(_tree({"code": "000.00.35.H53", "name": "Huyện"}), allow_unicode=True))
    assert topology.load(p).codes == ["000.00.00.H53", "000.00.35.H53"]
    assert topology.resolve("small") == topology.TOPOLOGY_DIR / "small.yaml"
    with pytest.raises(TopologyError, match="topology file not found .*binh-phuoc, dong-nai, small"):
        topology.load("no-such-topology")


def test_per_province_places_the_root_alone_and_each_province_with_everything_under_it():
    t = topology.load("small")
    placed = topology.place(t, "per-province")
    assert set(placed) == set(t.codes) and placed["VN"] == "VN"
    for province in t.children("VN"):
        assert {c for c, h in placed.items() if h == province} == {province, *t.subtree(province)}
    assert len(set(placed.values())) == 3
    # a province alone (no national root) is one host
    assert set(topology.place(topology.load("dong-nai"), "per-province").values()) == {"000.00.00.H19"}


def test_per_agency_is_a_host_each_and_no_rule_reads_the_files_host_keys():
    t = topology.load("small")
    assert topology.place(t, "per-agency") == {c: c for c in t.codes}
    assert topology.place(t) is None  # no `host:` key: one node process each, as before
    keyed = topology.parse(_tree({"code": "000.00.35.H53", "name": "Huyện", "host": "huyen",
                                  "children": [{"code": "000.21.35.H53", "name": "Xã", "host": "huyen"}]}))
    assert topology.place(keyed) == {"000.00.00.H53": "000.00.00.H53", "000.00.35.H53": "huyen",
                                     "000.21.35.H53": "huyen"}
    with pytest.raises(TopologyError, match="unknown placement 'per-commune'"):
        topology.place(t, "per-commune")


@pytest.mark.parametrize("host", ["", "../etc", "a b", 7, "x" * 65])
def test_a_host_name_that_is_no_directory_name_is_refused_naming_the_key(host):
    with pytest.raises(TopologyError) as e:
        topology.parse(_tree({"code": "000.00.35.H53", "name": "Huyện", "host": host}))
    assert e.value.path == "nodes[0].children[0].host"
