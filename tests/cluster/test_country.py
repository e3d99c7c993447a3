"""scripts/topology: the 2025 country from the official list, coded so every node places by the code rule
or an explicit parent; cut-down trees are subtrees of the full one; committed files are what it writes."""
from __future__ import annotations

import ast
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from node import codes
from node.harness import country, topology
from node.harness.cluster import Cluster
from node.harness.waiting import EventWaiter
from node.pb import envelope_pb2 as pb

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def official():
    return country.official_list()


@pytest.fixture(scope="module")
def full(official):
    source, provinces = official
    tree = country.build(provinces, source=source)
    text = country.render(tree)
    return tree, text, topology.parse(yaml.safe_load(text))


def test_the_full_tree_is_34_provinces_and_3321_communes_each_under_its_province(official, full):
    _, provinces = official
    tree, _, topo = full
    assert len(provinces) == 34 and sum(len(p.communes) for p in provinces) == 3321
    c = country.counts(tree)
    assert c == {"root": 1, "ministries": 17, "ministry_units": 2, "provinces": 34, "departments": 34 * 13,
                 "communes": 3321, "communes_qcvn_level2": 2466, "communes_identifier": 855,
                 "total": 1 + 17 + 2 + 34 + 34 * 13 + 3321}
    assert len(topo) == c["total"] and len(set(topo.codes)) == len(topo)
    assert topo.roots() == [codes.ROOT]
    hierarchy = topo.hierarchy()
    for p in provinces:
        communes = country.commune_codes(p)
        assert len(communes) == len(p.communes)
        for (code, name, odd), (ward, official_name) in zip(communes, p.communes):
            node = topo.node(code)
            assert node.parent == p.code and hierarchy.parent(code) == p.code and node.depth == 2
            assert node.name == f"UBND {official_name}"
            if odd:  # past the 79 level-2 slots: an identifier carrying the NSO ward code
                assert node.explicit_parent and not codes.is_qcvn(code) and codes.is_identifier(code)
                assert code == f"{p.level1}.{ward:05d}"
            else:
                assert codes.parse(code).level == 2 and codes.parent(code) == p.code
    assert min(len(p.communes) for p in provinces) == 38 and max(len(p.communes) for p in provinces) == 168


def test_level_1_codes_follow_the_pre_2025_alphabetical_numbering_our_sources_attest(official):
    h, g = country.PROVINCE_CODES, country.MINISTRY_CODES
    assert len(set(h.values())) == 63 and len(set(g.values())) == 22
    # edXML samples and field packets (Cao Bằng, Nghệ An, Đà Nẵng's 28.22.H17), the domain reference
    # (Tây Ninh, G12, G22), and what small.yaml and binh-phuoc.yaml already assumed (Hòa Bình, Bình Phước)
    assert (h["Cao Bằng"], h["Đà Nẵng"], h["Nghệ An"], h["Tây Ninh"]) == ("H14", "H17", "H41", "H53")
    assert (h["Hòa Bình"], h["Bình Phước"]) == ("H29", "H10")
    assert (g["Bộ Tài chính"], g["Văn phòng Chính phủ"]) == ("G12", "G22")
    _, provinces = official
    by_slug = {p.slug: p for p in provinces}
    assert len({p.level1 for p in provinces}) == 34
    assert by_slug["dong_nai"].code == "000.00.00.H19"      # kept its name; Bình Phước (H10) merged in
    assert by_slug["tay_ninh"].code == "000.00.00.H53"      # as in small.yaml
    assert by_slug["hue"].level1 == h["Thừa Thiên Huế"]


def test_the_generator_is_deterministic_and_writes_what_it_counts(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    args = ["--provinces", "dong-nai,75,Tây Ninh", "--communes", "82", "--departments", "2", "--ministries", "3"]
    for out in (a, b):
        proc = subprocess.run([sys.executable, "-m", "node.harness.country", *args, "-o", str(out)],
                              cwd=REPO, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    assert a.read_bytes() == b.read_bytes()
    assert f"{country.ARGUMENTS_PREFIX} {shlex.join(args)}\n" in a.read_text()  # -o is not part of the tree
    t = topology.load(a)
    assert len(t.at_depth(1)) == 3 + 2 and len(t) == 1 + 3 + 2 + 2 * (1 + 2 + 82)
    proc = subprocess.run([sys.executable, "-m", "node.harness.country", *args, "--counts"], cwd=REPO,
                          capture_output=True, text=True)
    assert yaml.safe_load(proc.stdout)["communes_identifier"] == 2 * 3


def _generate(*args: str) -> topology.Topology:
    _, text = country.generate(list(args))
    return topology.parse(yaml.safe_load(text))


def test_cut_down_trees_are_subtrees_of_the_full_one(full):
    _, _, whole = full
    by_name = _generate("--provinces", "Đồng Nai", "--communes", "5", "--departments", "1", "--ministries", "2")
    assert by_name.codes == _generate("--provinces", "dong_nai", "--communes", "5", "--departments", "1",
                                      "--ministries", "2").codes
    assert by_name.codes == _generate("--provinces", "75", "--communes", "5", "--departments", "1",
                                      "--ministries", "2").codes
    assert by_name.at_depth(1) == ["000.00.00.G22", "000.00.00.G12", "000.00.00.H19"]
    assert by_name.children("000.00.00.H19") == ["000.00.01.H19"] + [f"000.00.{n}.H19" for n in range(21, 26)]
    for code, name, parent in by_name.flat():  # same code, name and place as in the full tree
        assert (code, name, parent) == (code, whole.node(code).name, whole.node(code).parent)
    # provinces come in NSO order whatever order they are asked in
    assert _generate("--provinces", "ca-mau,ha-noi", "--communes", "0", "--departments", "0",
                     "--ministries", "0").at_depth(1) == ["000.00.00.H26", "000.00.00.H12"]
    alone = _generate("--provinces", "dong-nai", "--no-root", "--ministries", "0", "--communes", "81")
    assert alone.roots() == ["000.00.00.H19"] and alone.node("000.00.00.H19").parent is None
    odd = [c for c in alone.children("000.00.00.H19") if not codes.is_qcvn(c)]
    assert len(odd) == 2 and all(alone.node(c).explicit_parent for c in odd)


@pytest.mark.parametrize("args, message", [
    (["--provinces", "Bình Phước"], "--provinces: no 2025 province 'Bình Phước'; known: ha-noi,"),
    (["--provinces", " , "], "--provinces: no province chosen"),
    (["--communes", "-1"], "--communes: expected a number >= 0, got -1"),
    (["--no-root"], "--no-root: the top of the tree is one province, got 34"),
    (["--no-root", "--provinces", "hue"], "--no-root: ministries hang under the national root"),
])
def test_bad_options_are_refused_naming_the_option(args, message):
    with pytest.raises(country.CountryError) as e:
        country.generate(args)
    assert str(e.value).startswith(message)
    proc = subprocess.run([sys.executable, "-m", "node.harness.country", *args], cwd=REPO, capture_output=True,
                          text=True)
    assert proc.returncode == 2 and proc.stdout == "" and proc.stderr == f"scripts/topology: {e.value}\n"


def test_a_malformed_official_list_is_refused_naming_the_entry():
    good = {"code": 75, "name": "Đồng Nai", "codename": "dong_nai", "division_type": "tỉnh",
            "wards": [{"code": 26734, "name": "Xã Phú Lý", "division_type": "xã"}]}
    [p] = country.parse_divisions([good])
    assert (p.name, p.kind, p.communes) == ("Đồng Nai", "tỉnh", ((26734, "xã Phú Lý"),))
    bad_ward = {**good, "wards": [good["wards"][0], {"code": "x", "name": "Xã"}]}
    with pytest.raises(country.CountryError, match=r"\[0\]\.wards\[1\]: expected a ward with a 5-digit code"):
        country.parse_divisions([bad_ward])
    dup = {**good, "wards": good["wards"] * 2}
    with pytest.raises(country.CountryError, match=r"\[0\]\.wards: duplicate ward codes"):
        country.parse_divisions([dup])
    with pytest.raises(country.CountryError, match=r"\[0\]: expected a province"):
        country.parse_divisions([{"code": 75}])


@pytest.mark.parametrize("committed", sorted(
    p for p in topology.TOPOLOGY_DIR.glob("*.yaml") if country.ARGUMENTS_PREFIX in p.read_text(encoding="utf-8")))
def test_a_committed_generated_topology_is_what_the_generator_writes(committed):
    line = next(l for l in committed.read_text(encoding="utf-8").splitlines() if l.startswith(country.ARGUMENTS_PREFIX))
    args = shlex.split(line[len(country.ARGUMENTS_PREFIX):])
    _, text = country.generate(args)
    assert committed.read_text(encoding="utf-8") == text, (
        f"{committed.name} is stale: run scripts/topology {shlex.join(args)} -o {committed.relative_to(REPO)}")


def test_dong_nai_is_generated_and_the_province_size_topology():
    text = (topology.TOPOLOGY_DIR / "dong-nai.yaml").read_text(encoding="utf-8")
    assert country.ARGUMENTS_PREFIX in text
    t = topology.load("dong-nai")
    assert t.roots() == ["000.00.00.H19"] and len(t) == 1 + 13 + 95
    below = t.children("000.00.00.H19")
    assert sum(codes.is_qcvn(c) for c in below) == 13 + 79 and sum(t.node(c).explicit_parent for c in below) == 16


def _imports_of(path: Path) -> list[tuple[str, bool]]:
    """(module, at module level?) for every import in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            out += [(a.name, id(n) in top) for a in n.names]
        elif isinstance(n, ast.ImportFrom) and n.module:
            out.append((n.module, id(n) in top))
    return out


def test_the_node_never_imports_the_official_list_package():
    users = {p.relative_to(REPO).as_posix(): imports for p in (REPO / "node").rglob("*.py")
             if (imports := [(m, top) for m, top in _imports_of(p) if m.split(".")[0] == "vietnam_provinces"])}
    assert users == {"node/harness/country.py": [("vietnam_provinces", False)]}  # lazily, in the harness only
    code = ("import sys; sys.modules['vietnam_provinces'] = None\n"
            "import node.cli, node.runtime, node.harness.cluster, node.harness.country as c\n"
            "try:\n    c.official_list()\nexcept c.CountryError as e:\n    print(e)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "vietnam-provinces package: pip install 'lienthong[harness]'" in proc.stdout


def test_generated_codes_route_on_real_nodes(tmp_path, official):
    """A cut of Đồng Nai on real processes: a department, a commune with a level-2 code and two with
    identifiers (their parent given explicitly) exchange documents through the province."""
    source, provinces = official
    tree = country.build(provinces, source=source, wanted=["dong-nai"], departments=1, ministries=0,
                         national_root=False, name="dong-nai-cut")
    [province] = tree.roots
    keep = [province.children[0], province.children[1], *province.children[-2:]]
    cut = country.Tree("dong-nai-cut", (country.Unit(province.code, province.name, None, tuple(keep)),), source)
    topo = topology.parse(yaml.safe_load(country.render(cut)))
    dept, commune, odd1, odd2 = (u.code for u in keep)
    assert codes.is_qcvn(commune) and not codes.is_qcvn(odd1) and not codes.is_qcvn(odd2)
    cluster = Cluster(tmp_path)
    try:
        cluster.up(topo, quiet=True, timeout=120)
        for sender, recipient in ((commune, odd1), (odd1, odd2), (odd2, dept)):
            with EventWaiter(cluster.client(recipient), sent=False) as arrivals:
                [env] = cluster.client(sender).send(pb.Document(subject=f"{sender} → {recipient}"),
                                                    [recipient]).envelopes
                arrivals.wait(lambda evs: env.message_id in {e.message_id for e in evs}, timeout=60)
            path = [h.code for h in cluster.client(recipient).fetch(env.message_id).path]
            assert path == [sender, province.code, recipient]
    finally:
        statuses = cluster.close()
    assert set(statuses.values()) == {0}


def test_every_option_of_scripts_topology_is_documented():
    doc = (REPO / "docs" / "topologies.md").read_text(encoding="utf-8")
    options = [s for a in country.parser()._actions for s in a.option_strings if s not in ("-h", "--help")]
    assert options and not [o for o in options if f"`{o}" not in doc]
    assert "`scripts/topology`" in (REPO / "README.md").read_text(encoding="utf-8")


def test_bench_cluster_reports_the_route_to_an_identifier_of_dong_nai():
    from node.harness import bench_cluster
    t = topology.load("dong-nai")
    first, last = t.leaves()[0], t.leaves()[-1]
    assert bench_cluster.path_report(first, last, t.hierarchy()) == {
        "from": "000.00.01.H19", "to": last, "route": ["000.00.01.H19", "000.00.00.H19", last], "hops": 2}
