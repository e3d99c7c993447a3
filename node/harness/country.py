"""`scripts/topology`: the country since 1 July 2025 as a topology YAML (configs/topologies/).

The national root VN; ministry-level bodies (G codes) with a unit or two; the 34 provinces
(H codes), each with its departments and its communes directly below it: two local tiers,
no districts. Names and NSO codes of provinces and communes come from the official list
published as the `vietnam-provinces` package (``pip install 'lienthong[harness]'``), imported
here only, and only when a tree is built: the node never depends on it.

How agencies are coded (docs/topologies.md says why, with the evidence):

- Level 1 (the last group). The pre-2025 units are numbered alphabetically: the 63 provinces
  H01-H63 and the 22 ministry-level bodies G01-G22, their names read without diacritics
  (Đ as D), spaces or dashes. That reproduces every code our sources attest (H14 Cao Bằng,
  H17 Đà Nẵng, H41 Nghệ An, H53 Tây Ninh; G12 Finance, G22 Government Office). A 2025 unit
  keeps the code of the pre-2025 unit whose name it kept (Đồng Nai, which took in Bình
  Phước H10, stays H19); a ministry with a new name keeps the code of the one it was built on.
- Level 2 under a province (the third group, 01-99). Slots 01-20 are the departments', in
  a fixed table (01 the People's Committee's office, 12 Home Affairs, as the Lạng Sơn
  packet in our samples has them); 21-99 (79 slots) the communes, in ascending NSO ward code.
- Communes past the 79th get a Decision 20/2020 identifier: the province's level-1 group,
  a dot, the 5-digit NSO ward code (``H79.27004``), with the province as explicit parent.

A commune's code depends only on the official list, never on the options that cut the
tree down, so a cut tree is a subtree of the full one. Same options, same bytes.
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from .. import codes
from . import topology

__all__ = ["CountryError", "Unit", "Province", "Tree", "official_list", "build", "render", "counts",
           "level1_codes", "main", "ARGUMENTS_PREFIX", "PROVINCES_BEFORE_2025", "MINISTRY_BODIES_BEFORE_2025"]

INSTALL_HINT = "pip install 'lienthong[harness]' (scripts/_env.sh installs it from requirements.lock)"
ARGUMENTS_PREFIX = "# arguments:"   # the header line that says how a committed file was made
ROOT_NAME = "Trục liên thông quốc gia"
DEFAULT_NAME = "vietnam-2025"

# The 63 provinces and centrally-run cities before Resolution 202/2025/QH15.
PROVINCES_BEFORE_2025 = (
    "An Giang", "Bà Rịa – Vũng Tàu", "Bạc Liêu", "Bắc Giang", "Bắc Kạn", "Bắc Ninh", "Bến Tre",
    "Bình Dương", "Bình Định", "Bình Phước", "Bình Thuận", "Cà Mau", "Cao Bằng", "Cần Thơ",
    "Đà Nẵng", "Đắk Lắk", "Đắk Nông", "Điện Biên", "Đồng Nai", "Đồng Tháp", "Gia Lai", "Hà Giang",
    "Hà Nam", "Hà Nội", "Hà Tĩnh", "Hải Dương", "Hải Phòng", "Hậu Giang", "Hòa Bình", "Hồ Chí Minh",
    "Hưng Yên", "Khánh Hòa", "Kiên Giang", "Kon Tum", "Lai Châu", "Lâm Đồng", "Lạng Sơn", "Lào Cai",
    "Long An", "Nam Định", "Nghệ An", "Ninh Bình", "Ninh Thuận", "Phú Thọ", "Phú Yên", "Quảng Bình",
    "Quảng Nam", "Quảng Ngãi", "Quảng Ninh", "Quảng Trị", "Sóc Trăng", "Sơn La", "Tây Ninh",
    "Thái Bình", "Thái Nguyên", "Thanh Hóa", "Thừa Thiên Huế", "Tiền Giang", "Trà Vinh",
    "Tuyên Quang", "Vĩnh Long", "Vĩnh Phúc", "Yên Bái",
)
# A 2025 province whose name is not the pre-2025 name it kept (folded): Huế was Thừa Thiên Huế.
RENAMED = {"hue": "Thừa Thiên Huế"}

# The 22 ministries and ministry-level bodies of the government of 2016-2025.
MINISTRY_BODIES_BEFORE_2025 = (
    "Bộ Công an", "Bộ Công Thương", "Bộ Giáo dục và Đào tạo", "Bộ Giao thông vận tải",
    "Bộ Kế hoạch và Đầu tư", "Bộ Khoa học và Công nghệ", "Bộ Lao động – Thương binh và Xã hội",
    "Bộ Ngoại giao", "Bộ Nội vụ", "Bộ Nông nghiệp và Phát triển nông thôn", "Bộ Quốc phòng",
    "Bộ Tài chính", "Bộ Tài nguyên và Môi trường", "Bộ Thông tin và Truyền thông", "Bộ Tư pháp",
    "Bộ Văn hóa, Thể thao và Du lịch", "Bộ Xây dựng", "Bộ Y tế", "Ngân hàng Nhà nước Việt Nam",
    "Thanh tra Chính phủ", "Ủy ban Dân tộc", "Văn phòng Chính phủ",
)

# The 17 ministry-level bodies since March 2025 (Resolution 176/2025/QH15), in the order
# `--ministries N` takes them: the two our sources name first, then by code. Each is
# (name, the pre-2025 body whose code it keeps, its units as (level-2 group, name)).
# Units: Cục Thuế 18 is the domain reference's General Department of Taxation (a Cục since
# March 2025); Cục Hải quan's group is illustrative.
MINISTRIES = (
    ("Văn phòng Chính phủ", "Văn phòng Chính phủ", ()),
    ("Bộ Tài chính", "Bộ Tài chính", ((18, "Cục Thuế"), (19, "Cục Hải quan"))),
    ("Bộ Công an", "Bộ Công an", ()),
    ("Bộ Công Thương", "Bộ Công Thương", ()),
    ("Bộ Giáo dục và Đào tạo", "Bộ Giáo dục và Đào tạo", ()),
    ("Bộ Khoa học và Công nghệ", "Bộ Khoa học và Công nghệ", ()),
    ("Bộ Ngoại giao", "Bộ Ngoại giao", ()),
    ("Bộ Nội vụ", "Bộ Nội vụ", ()),
    ("Bộ Nông nghiệp và Môi trường", "Bộ Nông nghiệp và Phát triển nông thôn", ()),
    ("Bộ Quốc phòng", "Bộ Quốc phòng", ()),
    ("Bộ Tư pháp", "Bộ Tư pháp", ()),
    ("Bộ Văn hóa, Thể thao và Du lịch", "Bộ Văn hóa, Thể thao và Du lịch", ()),
    ("Bộ Xây dựng", "Bộ Xây dựng", ()),
    ("Bộ Y tế", "Bộ Y tế", ()),
    ("Ngân hàng Nhà nước Việt Nam", "Ngân hàng Nhà nước Việt Nam", ()),
    ("Thanh tra Chính phủ", "Thanh tra Chính phủ", ()),
    ("Bộ Dân tộc và Tôn giáo", "Ủy ban Dân tộc", ()),
)

# A province's departments: (level-2 group, name before "tỉnh X" / "thành phố X"), in the order
# `--departments N` takes them. 01 and 12 as the Lạng Sơn packet in our samples; the rest of
# the groups are illustrative. 14-20 are kept free for departments some provinces add.
DEPARTMENTS = (
    (1, "Văn phòng UBND"), (12, "Sở Nội vụ"), (2, "Sở Tài chính"), (3, "Sở Tư pháp"),
    (4, "Sở Công Thương"), (5, "Sở Xây dựng"), (6, "Sở Nông nghiệp và Môi trường"),
    (7, "Sở Khoa học và Công nghệ"), (8, "Sở Giáo dục và Đào tạo"), (9, "Sở Y tế"),
    (10, "Sở Văn hóa, Thể thao và Du lịch"), (11, "Thanh tra"), (13, "Sở Dân tộc và Tôn giáo"),
)
DEPARTMENT_GROUPS = range(1, 21)
COMMUNE_GROUPS = range(21, 100)


class CountryError(ValueError):
    """Options or data that cannot make a tree; the message names the option or the field."""


def fold(text: str) -> str:
    """A name as the alphabetical numbering reads it: no diacritics, Đ as D, letters only."""
    text = text.replace("Đ", "D").replace("đ", "d")
    bare = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return re.sub(r"[^a-z]", "", bare.lower())


def level1_codes(names: Iterable[str], prefix: str) -> dict[str, str]:
    """name -> prefix + 2-digit rank in folded alphabetical order (H01..H63, G01..G22)."""
    ordered = sorted(names, key=fold)
    return {name: f"{prefix}{i:02d}" for i, name in enumerate(ordered, 1)}


PROVINCE_CODES = level1_codes(PROVINCES_BEFORE_2025, "H")
MINISTRY_CODES = level1_codes(MINISTRY_BODIES_BEFORE_2025, "G")


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    parent: str | None = None       # set only when the code is outside the QCVN 102 form
    children: tuple["Unit", ...] = ()


@dataclass(frozen=True)
class Province:
    """One 2025 province of the official list."""
    nso: int                          # NSO province code (1..96)
    slug: str                         # the package's codename, e.g. dong_nai
    name: str                         # bare name, e.g. Đồng Nai
    kind: str                         # "tỉnh" or "thành phố"
    communes: tuple[tuple[int, str], ...]  # (NSO ward code, "xã X" / "phường Y" / "đặc khu Z"), ascending code

    @property
    def level1(self) -> str:
        kept = RENAMED.get(fold(self.name)) or next((n for n in PROVINCES_BEFORE_2025 if fold(n) == fold(self.name)), None)
        if kept is None:
            raise CountryError(f"province {self.name!r} (NSO {self.nso}) kept no pre-2025 name: no level-1 code for it")
        return PROVINCE_CODES[kept]

    @property
    def code(self) -> str:
        return f"000.00.00.{self.level1}"


@dataclass(frozen=True)
class Tree:
    name: str
    roots: tuple[Unit, ...]
    source: str                       # "vietnam-provinces X (data Y)"


def official_list() -> tuple[str, list[Province]]:
    """The 34 provinces with their communes, from the vietnam-provinces package (imported here only)."""
    try:
        import vietnam_provinces  # noqa: PLC0415 - the harness extra, never imported by the node
    except ImportError:
        raise CountryError(f"the official list of 2025 units comes from the vietnam-provinces package: "
                           f"{INSTALL_HINT}") from None
    path = Path(vietnam_provinces.NESTED_DIVISIONS_JSON_PATH)
    source = f"vietnam-provinces {vietnam_provinces.__version__} (data {vietnam_provinces.__data_version__})"
    return source, parse_divisions(json.loads(path.read_text(encoding="utf-8")), str(path))


def parse_divisions(data: object, where: str = "nested-divisions.json") -> list[Province]:
    """Check the package's nested list and keep what a topology needs; errors name the entry."""
    def fail(path: str, problem: str) -> None:
        raise CountryError(f"{where}: {path}: {problem}")

    if not isinstance(data, list) or not data:
        fail("top", "expected a non-empty list of provinces")
    out = []
    for i, p in enumerate(data):
        if not isinstance(p, dict) or not isinstance(p.get("code"), int) or not isinstance(p.get("name"), str) \
                or not isinstance(p.get("codename"), str) or not isinstance(p.get("wards"), list):
            fail(f"[{i}]", "expected a province with code, name, codename and wards")
        name = re.sub(r"^(Thành phố|Tỉnh)\s+", "", p["name"].strip())
        kind = "thành phố" if str(p.get("division_type", "")).startswith("thành phố") else "tỉnh"
        communes = []
        for j, w in enumerate(p["wards"]):
            if not isinstance(w, dict) or not isinstance(w.get("code"), int) or not 0 < w["code"] < 100_000 \
                    or not isinstance(w.get("name"), str) or not w["name"].strip():
                fail(f"[{i}].wards[{j}]", "expected a ward with a 5-digit code and a name")
            communes.append((w["code"], _lower_kind(w["name"].strip(), str(w.get("division_type", "")))))
        communes.sort()
        if len({c for c, _ in communes}) != len(communes):
            fail(f"[{i}].wards", "duplicate ward codes")
        out.append(Province(p["code"], p["codename"], name, kind, tuple(communes)))
    out.sort(key=lambda p: p.nso)
    return out


def _lower_kind(name: str, kind: str) -> str:
    """"Xã Thượng Lâm" -> "xã Thượng Lâm": the kind reads in lower case after "UBND"."""
    if kind and name.lower().startswith(kind.lower()):
        return kind.lower() + name[len(kind):]
    return name[:1].lower() + name[1:]


def commune_codes(province: Province) -> list[tuple[str, str, bool]]:
    """(code, name, explicit parent?) for every commune of `province`, in ascending NSO code."""
    out = []
    for i, (ward, name) in enumerate(province.communes):
        if i < len(COMMUNE_GROUPS):
            out.append((f"000.00.{COMMUNE_GROUPS[i]:02d}.{province.level1}", name, False))
        else:
            out.append((f"{province.level1}.{ward:05d}", name, True))
    return out


def select(provinces: list[Province], wanted: Sequence[str] | None) -> list[Province]:
    """Provinces named by NSO code, slug (dong-nai, dong_nai) or name (Đồng Nai, any case or accents)."""
    if wanted is None:
        return provinces
    keys = {key: p for p in provinces for key in (str(p.nso), fold(p.slug), fold(p.name))}
    chosen = set()
    for w in wanted:
        text = w.strip()
        key = str(int(text)) if text.isdigit() else fold(text)
        if key not in keys:
            known = ", ".join(p.slug.replace("_", "-") for p in provinces)
            raise CountryError(f"--provinces: no 2025 province {text[:60]!r}; known: {known} (or NSO codes)")
        chosen.add(keys[key].nso)
    return [p for p in provinces if p.nso in chosen]


def build(provinces: list[Province], *, source: str = "", wanted: Sequence[str] | None = None,
          communes: int | None = None, departments: int | None = None, ministries: int | None = None,
          national_root: bool = True, name: str = DEFAULT_NAME) -> Tree:
    """The tree for these options (None: all). Without the national root, one province is the top."""
    for option, value in (("--communes", communes), ("--departments", departments), ("--ministries", ministries)):
        if value is not None and value < 0:
            raise CountryError(f"{option}: expected a number >= 0, got {value}")
    chosen = select(provinces, wanted)
    if not chosen:
        raise CountryError("--provinces: no province chosen")
    ministries = len(MINISTRIES) if ministries is None else ministries
    if not national_root:
        if len(chosen) != 1:
            raise CountryError(f"--no-root: the top of the tree is one province, got {len(chosen)}; use --provinces")
        if ministries:
            raise CountryError("--no-root: ministries hang under the national root; add --ministries 0")
    top_units = [_ministry(*m) for m in MINISTRIES[:ministries]]
    top_units += [_province(p, communes, departments) for p in chosen]
    roots = (Unit(codes.ROOT, ROOT_NAME, None, tuple(top_units)),) if national_root else tuple(top_units)
    return Tree(name, roots, source)


def _ministry(name: str, kept: str, units: tuple) -> Unit:
    g = MINISTRY_CODES[kept]
    return Unit(f"000.00.00.{g}", name, None, tuple(Unit(f"000.00.{n:02d}.{g}", u) for n, u in units))


def _province(p: Province, communes: int | None, departments: int | None) -> Unit:
    where = f"{p.kind} {p.name}"
    kids = [Unit(f"000.00.{n:02d}.{p.level1}", f"{d} {where}") for n, d in DEPARTMENTS[:departments]]
    for code, name, odd in commune_codes(p)[:communes]:
        kids.append(Unit(code, f"UBND {name}", p.code if odd else None))
    return Unit(p.code, f"UBND {where}", None, tuple(kids))


def walk(tree: Tree) -> Iterable[tuple[Unit, int]]:
    """(unit, depth) in tree order."""
    def go(units, depth):
        for u in units:
            yield u, depth
            yield from go(u.children, depth + 1)
    yield from go(tree.roots, 0)


def counts(tree: Tree) -> dict:
    """How many units of each kind: the figures docs/topologies.md and the issue quote."""
    out = {"root": 0, "ministries": 0, "ministry_units": 0, "provinces": 0, "departments": 0,
           "communes": 0, "communes_qcvn_level2": 0, "communes_identifier": 0, "total": 0}
    for u, _ in walk(tree):
        out["total"] += 1
        if u.code == codes.ROOT:
            out["root"] += 1
        elif u.parent is not None:
            out["communes"] += 1
            out["communes_identifier"] += 1
        else:
            group4, level = u.code.split(".")[3], codes.level(u.code)
            kind = "ministries" if group4[0] == "G" else "provinces"
            if level == 1:
                out[kind] += 1
            elif kind == "ministries":
                out["ministry_units"] += 1
            elif int(u.code.split(".")[2]) in COMMUNE_GROUPS:
                out["communes"] += 1
                out["communes_qcvn_level2"] += 1
            else:
                out["departments"] += 1
    return out


def summary(c: dict) -> str:
    """The counts in words, leaving out kinds the tree does not have."""
    def n(k: int, one: str, many: str) -> str:
        return f"{k} {one if k == 1 else many}"
    parts = ["the national root"] if c["root"] else []
    if c["ministries"]:
        parts.append(n(c["ministries"], "ministry", "ministries") + f" with {n(c['ministry_units'], 'unit', 'units')}")
    parts.append(n(c["provinces"], "province", "provinces"))
    parts.append(n(c["departments"], "department", "departments"))
    parts.append(n(c["communes"], "commune", "communes") + f" ({c['communes_qcvn_level2']} with QCVN 102 level-2 "
                 f"codes, {c['communes_identifier']} with identifiers)")
    return ", ".join(parts)


def _scalar(text: str) -> str:
    """Plain when YAML reads it back as the same string, else double-quoted (JSON is valid YAML)."""
    if re.fullmatch(r"[0-9A-Za-z.À-ỹ][0-9A-Za-z.À-ỹ –-]*", text) and yaml.safe_load(text) == text:
        return text
    return json.dumps(text, ensure_ascii=False)


def render(tree: Tree, arguments: Sequence[str] = ()) -> str:
    """The topology YAML, in the layout of the hand-written files: leaves on one line."""
    c = counts(tree)
    lines = [
        f"# The country since 1 July 2025, made by scripts/topology from {tree.source}:",
        "# do not edit, run it again (tests/cluster/test_country.py fails when this file is stale).",
        f"{ARGUMENTS_PREFIX} {shlex.join(arguments)}".rstrip(),
        f"# {c['total']} nodes: {summary(c)}.",
        "# Codes: docs/topologies.md (level 1 as the pre-2025 alphabetical numbering; department groups",
        "# other than 01 and 12, and Cục Hải quan's, are illustrative).",
        f"name: {_scalar(tree.name)}",
        "nodes:",
    ]

    def emit(u: Unit, indent: str) -> None:
        parent = f", parent: {_scalar(u.parent)}" if u.parent else ""
        if not u.children:
            lines.append(f"{indent}- {{code: {_scalar(u.code)}, name: {_scalar(u.name)}{parent}}}")
            return
        lines.append(f"{indent}- code: {_scalar(u.code)}")
        lines.append(f"{indent}  name: {_scalar(u.name)}")
        if u.parent:
            lines.append(f"{indent}  parent: {_scalar(u.parent)}")
        lines.append(f"{indent}  children:")
        for k in u.children:
            emit(k, indent + "    ")

    for r in tree.roots:
        emit(r, "  ")
    return "\n".join(lines) + "\n"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="scripts/topology",
        description="Write the 2025 country (national root, ministries, 34 provinces with their departments "
                    "and communes) as a topology YAML for scripts/cluster and scripts/bench-cluster. "
                    "Codes: docs/topologies.md.")
    p.add_argument("--provinces", metavar="LIST",
                   help="comma-separated provinces by name (Đồng Nai), slug (dong-nai) or NSO code (75); default all 34")
    p.add_argument("--communes", type=int, metavar="N", help="the first N communes of each province (ascending NSO code)")
    p.add_argument("--departments", type=int, metavar="N", help=f"the first N of the {len(DEPARTMENTS)} departments")
    p.add_argument("--ministries", type=int, metavar="N", help=f"the first N of the {len(MINISTRIES)} ministries")
    p.add_argument("--no-root", action="store_true",
                   help="no national root: the one province chosen is the top node (needs --ministries 0)")
    p.add_argument("--name", default=DEFAULT_NAME, help=f"the topology's name (default {DEFAULT_NAME})")
    p.add_argument("--counts", action="store_true", help="print the number of units per level as JSON instead")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: standard output)")
    return p


def generate(argv: Sequence[str]) -> tuple[Tree, str]:
    """Parse `argv` (without -o/--counts effects) and return the tree and its YAML."""
    args = parser().parse_args(list(argv))
    source, provinces = official_list()
    wanted = [w for w in args.provinces.split(",") if w.strip()] if args.provinces is not None else None
    tree = build(provinces, source=source, wanted=wanted, communes=args.communes, departments=args.departments,
                 ministries=args.ministries, national_root=not args.no_root, name=args.name)
    recorded = _without_output(argv)
    text = render(tree, recorded)
    topology.parse(yaml.safe_load(text), source="generated")  # what we write loads, by the code rule
    return tree, text


def _without_output(argv: Sequence[str]) -> list[str]:
    """The arguments that shape the tree: what the header records so the file can be made again."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in ("-o", "--output"):
            skip = True
        elif not a.startswith(("--output=", "-o")) and a != "--counts":
            out.append(a)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    try:
        tree, text = generate(argv)
    except (CountryError, topology.TopologyError) as e:
        print(f"scripts/topology: {e}", file=sys.stderr)
        return 2
    out = json.dumps(counts(tree), indent=2) + "\n" if args.counts else text
    if args.output and args.output != "-":
        Path(args.output).write_text(out, encoding="utf-8")
    else:
        sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
