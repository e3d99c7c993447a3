"""Cluster topologies: a tree of agencies in YAML (configs/topologies/), checked against the code rule.

A topology file is a nested tree::

    name: small
    nodes:
      - code: VN
        name: Trục liên thông quốc gia
        children:
          - code: 000.00.00.H53
            name: UBND tỉnh Tây Ninh
            children: [...]

A node may name the host process it runs on (``host: NAME``); `place` turns those keys, or a rule
(``per-agency``, ``per-province``), into each agency's host for the cluster harness (docs/topologies.md).

Every child's code must sit directly under its enclosing node by the QCVN 102 rule
(:class:`node.codes.Hierarchy`); a code outside that form (``vxp.saas.03``) says so with
an explicit ``parent`` key, which must name the enclosing node. A top-level node has no
parent in the cluster: it is the national root ``VN`` or, for a cluster that stops at a
province, the province itself. Errors name the key path (``nodes[0].children[1].code:
...``) so a hand-edited file can be fixed without reading this module.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .. import codes

__all__ = ["TopologyError", "TopologyNode", "Topology", "load", "parse", "resolve", "place", "PLACEMENTS",
           "TOPOLOGY_DIR"]

TOPOLOGY_DIR = Path(__file__).resolve().parents[2] / "configs" / "topologies"

_NODE_KEYS = ("code", "name", "parent", "host", "children")
PLACEMENTS = ("per-agency", "per-province")  # the placement rules of `place` (scripts/cluster up --hosts)
_HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # a directory name under the cluster's hosts/


class TopologyError(ValueError):
    """A topology that cannot be used; ``path`` is the key path of the offending value."""

    def __init__(self, message: str, path: str = "", file: str | None = None) -> None:
        super().__init__(message, path, file)
        self.message, self.path, self.file = message, path, file

    def __str__(self) -> str:
        return ": ".join(p for p in (self.file, self.path, self.message) if p)


@dataclass(frozen=True)
class TopologyNode:
    code: str
    name: str
    parent: str | None          # None for a top-level node (no parent inside the cluster)
    depth: int                  # 0 for a top-level node
    explicit_parent: bool = False  # the file named the parent (code outside the QCVN form)
    host: str | None = None     # the host process the file places it on (None: a process of its own)


@dataclass(frozen=True)
class Topology:
    name: str
    nodes: tuple[TopologyNode, ...]   # tree order: every parent before its children
    source: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_code", {n.code: n for n in self.nodes})

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[TopologyNode]:
        return iter(self.nodes)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def node(self, code: str) -> TopologyNode:
        return self._by_code[code]

    @property
    def codes(self) -> list[str]:
        return [n.code for n in self.nodes]

    def flat(self) -> list[tuple[str, str, str | None]]:
        """(code, name, parent) in tree order."""
        return [(n.code, n.name, n.parent) for n in self.nodes]

    def children(self, code: str) -> list[str]:
        return [n.code for n in self.nodes if n.parent == code]

    def subtree(self, code: str) -> list[str]:
        """Every code strictly below `code`, in tree order."""
        below: set[str] = {code}
        out = []
        for n in self.nodes:
            if n.parent in below:
                below.add(n.code)
                out.append(n.code)
        return out

    def leaves(self) -> list[str]:
        parents = {n.parent for n in self.nodes}
        return [n.code for n in self.nodes if n.code not in parents]

    def at_depth(self, depth: int) -> list[str]:
        return [n.code for n in self.nodes if n.depth == depth]

    def roots(self) -> list[str]:
        return self.at_depth(0)

    def hierarchy(self) -> codes.Hierarchy:
        """The code hierarchy with this topology's explicit parents registered."""
        return codes.Hierarchy({n.code: n.parent for n in self.nodes if n.explicit_parent})


def resolve(name_or_path: str | os.PathLike) -> Path:
    """`small` → configs/topologies/small.yaml; anything that looks like a path is taken as is."""
    text = os.fspath(name_or_path)
    p = Path(text)
    if p.suffix in (".yaml", ".yml") or os.sep in text or p.exists():
        return p
    return TOPOLOGY_DIR / f"{text}.yaml"


def load(name_or_path: str | os.PathLike) -> Topology:
    path = resolve(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        known = ", ".join(sorted(p.stem for p in TOPOLOGY_DIR.glob("*.yaml")))
        raise TopologyError(f"topology file not found (known topologies: {known})", file=str(path)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise TopologyError(f"invalid YAML: {e}", file=str(path)) from None
    topo = parse(data, source=str(path))
    object.__setattr__(topo, "source", path)
    return topo


def parse(data: Any, source: str | None = None) -> Topology:
    """Validate a parsed topology document and flatten it in tree order."""

    def fail(message: str, path: str = "") -> None:
        raise TopologyError(message, path, source)

    if not isinstance(data, Mapping):
        fail("expected a mapping with keys name, nodes")
    for k in data:
        if k not in ("name", "nodes"):
            fail("unknown key; expected one of: name, nodes", str(k))
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        fail(f"expected a non-empty string, got {name!r}", "name")
    top = data.get("nodes")
    if not isinstance(top, list) or not top:
        fail("expected a non-empty list of nodes", "nodes")

    # First pass: shape, and collect the explicit parents so the hierarchy knows odd codes.
    raw: list[tuple[str, Mapping, str | None, int]] = []  # (path, node, enclosing code, depth)

    def walk(items: list, path: str, enclosing: str | None, depth: int) -> None:
        for i, item in enumerate(items):
            p = f"{path}[{i}]"
            if not isinstance(item, Mapping):
                fail(f"expected a mapping with keys {', '.join(_NODE_KEYS)}, got {item!r}", p)
            for k in item:
                if k not in _NODE_KEYS:
                    fail(f"unknown key; expected one of: {', '.join(_NODE_KEYS)}", f"{p}.{k}")
            code = item.get("code")
            if not isinstance(code, str) or not code:
                fail(f"expected an agency code, got {code!r}", f"{p}.code")
            nm = item.get("name")
            if not isinstance(nm, str) or not nm.strip():
                fail(f"expected a non-empty string, got {nm!r}", f"{p}.name")
            if "parent" in item and item["parent"] is not None:
                par = item["parent"]
                if enclosing is None:
                    fail(f"a top-level node has no parent in the cluster, got {par!r}", f"{p}.parent")
                if par != enclosing:
                    fail(f"parent {par!r} is not the enclosing node {enclosing!r}", f"{p}.parent")
            host = item.get("host")
            if host is not None and not (isinstance(host, str) and _HOST_NAME.fullmatch(host)):
                fail(f"expected a host name (letters, digits, '.', '_', '-'; at most 64), got {host!r}", f"{p}.host")
            raw.append((p, item, enclosing, depth))
            kids = item.get("children")
            if kids is None:
                continue
            if not isinstance(kids, list):
                fail(f"expected a list of nodes, got {kids!r}", f"{p}.children")
            walk(kids, f"{p}.children", code, depth + 1)

    walk(top, "nodes", None, 0)

    extra: dict[str, str] = {}
    for p, item, enclosing, _ in raw:
        if item.get("parent") is not None:
            if item["code"] == codes.ROOT:
                fail("the national root cannot have a parent", f"{p}.parent")
            extra[item["code"]] = enclosing
    try:
        hierarchy = codes.Hierarchy(extra)
    except codes.CodeError as e:
        where = next((f"{p}.parent" for p, item, _, _ in raw if item["code"] == e.code), "nodes")
        fail(str(e), where)

    seen: dict[str, str] = {}
    out: list[TopologyNode] = []
    for p, item, enclosing, depth in raw:
        code = item["code"]
        if code in seen:
            fail(f"duplicate of {seen[code]}.code ({code})", f"{p}.code")
        seen[code] = p
        try:
            hierarchy.validate(code)
            if enclosing is not None:
                rule_parent = hierarchy.parent(code)
                if rule_parent != enclosing:
                    fail(f"{code} is not directly under {enclosing}: its parent by the code rule is "
                         f"{rule_parent} (list an explicit `parent` for codes outside the QCVN 102 form)",
                         f"{p}.code")
        except codes.CodeError as e:
            fail(str(e), f"{p}.code")
        out.append(TopologyNode(code, item["name"].strip(), enclosing, depth, item.get("parent") is not None,
                                item.get("host")))
    return Topology(name.strip(), tuple(out), None)


def place(topo: Topology, rule: str | None = None) -> dict[str, str] | None:
    """Which host process serves each agency: code -> host name, or None for one node process each.

    `per-agency`: a host of its own for every agency (named by its code). `per-province`: one host per
    top unit below the national root (a province or ministry, with everything under it), the national
    root on its own; a topology without the root (a province alone) is one host. No rule: the file's
    `host:` keys, an agency without one on a host of its own; None if no node names a host.
    """
    if rule is None:
        if not any(n.host for n in topo):
            return None
        return {n.code: n.host or n.code for n in topo}
    if rule == "per-agency":
        return {n.code: n.code for n in topo}
    if rule == "per-province":
        out: dict[str, str] = {}
        for n in topo:  # tree order: a parent is placed before its children
            top = n.parent is None or (n.parent == codes.ROOT and topo.node(n.parent).parent is None)
            out[n.code] = n.code if top else out[n.parent]
        return out
    raise TopologyError(f"unknown placement {rule!r}; expected one of: {', '.join(PLACEMENTS)}", "hosts")
