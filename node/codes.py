"""Agency codes ("mã định danh", QCVN 102:2016/BTTTT) and the hierarchy they imply.

A QCVN 102 code ``V1V2V3.Z1Z2.Y1Y2.X1X2X3`` encodes its own place in the tree:
the last group is the level-1 unit, level 2 fills the third group, level 3 the
second, level 4 the first, unused levels are zeros. So a node can derive an
agency's parent, and therefore the route between two agencies (up to their
lowest common ancestor, then down), from the codes alone, with no directory.

Real systems also hold codes outside that form (``vxp.saas.03``, ``28.22.H17``);
those only fit into the tree through an explicitly registered parent
(:class:`Hierarchy`). Codes are kept exactly as written: field systems compare
them case-sensitively, so nothing here normalises case or whitespace.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "ROOT",
    "MAX_IDENTIFIER_LENGTH",
    "CodeError",
    "AgencyCode",
    "Hierarchy",
    "DEFAULT",
    "parse",
    "is_qcvn",
    "is_identifier",
    "case_twin_of",
    "validate",
    "level",
    "parent",
    "ancestors",
    "is_under",
    "lca",
    "route",
    "next_hop",
]

ROOT = "VN"
"""The national level: pseudo-code (level 0) above every level-1 unit, so every
pair of agencies has a common ancestor and a route."""

MAX_IDENTIFIER_LENGTH = 35
"""Longest identifier the newer scheme (Decision 20/2020/QĐ-TTg) allows."""

_GROUPS = 4
_DIGIT_GROUP = {1: re.compile(r"[0-9]{3}"), 2: re.compile(r"[0-9]{2}"), 3: re.compile(r"[0-9]{2}")}
_DIGIT_WIDTH = {1: 3, 2: 2, 3: 2}
_LEVEL1_GROUP = re.compile(r"[A-K][0-9]{2}")
_LETTER_2_DIGITS = re.compile(r"[A-Za-z][0-9]{2}")
_IDENTIFIER_CHAR = re.compile(r"[0-9A-Za-z.]")


_PREDICATES = ("is ", "has ", "must ", "cannot ")


def _show(code: object) -> str:
    return f'"{code}"' if isinstance(code, str) else repr(code)


class CodeError(ValueError):
    """A malformed or unplaceable agency code.

    The message names the offending group and what was expected, because codes
    come from hand-edited config and foreign packets and the operator has to fix
    them without reading this module. ``code`` and ``problem`` keep the parts.
    """

    def __init__(self, code: object, problem: str) -> None:
        self.code = code
        self.problem = problem
        # Predicates ("is empty", "must have ...") read as a sentence; clauses
        # ("group 2 ...") follow a colon.
        sep = " " if problem.startswith(_PREDICATES) else ": "
        super().__init__(f"agency code {_show(code)}{sep}{problem}")

    def __reduce__(self):  # keep it picklable despite the two-argument constructor
        return (type(self), (self.code, self.problem))


@dataclass(frozen=True)
class AgencyCode:
    """A well-formed QCVN 102 code. Build it with :func:`parse`, which checks it."""

    code: str
    groups: tuple[str, str, str, str]
    level: int  # 1..4

    @property
    def parent(self) -> str:
        """The code with its most specific non-zero group zeroed; ROOT for level 1."""
        if self.level == 1:
            return ROOT
        i = _GROUPS - self.level  # index of the most specific non-zero group
        groups = list(self.groups)
        groups[i] = "0" * len(groups[i])
        return ".".join(groups)

    def __str__(self) -> str:
        return self.code


def _qcvn_problem(code: object) -> str | None:
    """Why `code` is not a QCVN 102 code, or None if it is one."""
    if not isinstance(code, str):
        return f"must be a string, got {type(code).__name__}"
    if code == ROOT:
        return "is the national root pseudo-code, not a QCVN 102 code"
    if code == "":
        return "is empty"
    groups = code.split(".")
    if len(groups) != _GROUPS:
        return f"must have {_GROUPS} dot-separated groups, got {len(groups)}"
    for n in (1, 2, 3):
        g = groups[n - 1]
        if not _DIGIT_GROUP[n].fullmatch(g):
            return f'group {n} "{g}" must be {_DIGIT_WIDTH[n]} digits'
    g4 = groups[3]
    if not _LEVEL1_GROUP.fullmatch(g4):
        if _LETTER_2_DIGITS.fullmatch(g4) and g4[0].islower():
            return (f'group 4 "{g4}" must start with an uppercase letter A-K; '
                    f'codes are case-sensitive, so it is not read as "{g4.upper()}"')
        if _LETTER_2_DIGITS.fullmatch(g4):
            return f'group 4 "{g4}" must start with a letter A-K (a level-1 prefix), got "{g4[0]}"'
        return f'group 4 "{g4}" must be a letter A-K followed by 2 digits (e.g. H53)'
    # A unit cannot sit under an empty level: once a group is non-zero, every
    # group to its right (the levels above it) must be non-zero too.
    for n in (1, 2):
        g, right = groups[n - 1], groups[n]
        if int(g) and not int(right):
            return (f'group {n + 1} "{right}" is zero but group {n} "{g}" is not; '
                    f"a lower level cannot be set while the level above it is empty")
    return None


def parse(code: str) -> AgencyCode:
    """Check `code` against QCVN 102 and return it with its groups and level (1..4).

    Raises CodeError naming the first wrong group. ROOT is not a QCVN code and is
    refused here; :func:`level` and :func:`parent` handle it.
    """
    problem = _qcvn_problem(code)
    if problem is not None:
        raise CodeError(code, problem)
    groups = tuple(code.split("."))
    # Level = 4 minus the index of the leftmost non-zero group (group 4 is never zero).
    lvl = next(_GROUPS - i for i, g in enumerate(groups) if i == 3 or int(g))
    return AgencyCode(code=code, groups=groups, level=lvl)  # type: ignore[arg-type]


def is_qcvn(code: object) -> bool:
    """True if `code` is a well-formed QCVN 102 code (ROOT is not)."""
    return _qcvn_problem(code) is None


def _identifier_problem(code: object) -> str | None:
    """Why `code` is not even an identifier of the newer scheme, or None.

    Lowercase letters are allowed here (stricter than Decision 20/2020) because
    codes such as ``vxp.saas.03`` circulate in real packets.
    """
    if not isinstance(code, str):
        return f"must be a string, got {type(code).__name__}"
    if code == "":
        return "is empty"
    if len(code) > MAX_IDENTIFIER_LENGTH:
        return f"is {len(code)} characters long, at most {MAX_IDENTIFIER_LENGTH} are allowed"
    for i, ch in enumerate(code):
        if not _IDENTIFIER_CHAR.fullmatch(ch):
            return f"has {ch!r} at position {i + 1}; only digits, letters and dots are allowed"
    if "" in code.split("."):
        return "has an empty group (leading, trailing or doubled dot)"
    twin = case_twin_of(code)
    if twin is not None:
        return f'differs from the QCVN 102 code "{twin}" only by letter case'
    return None


def case_twin_of(code: object) -> str | None:
    """The QCVN 102 code (or ROOT) that `code` differs from only by letter case, else None.

    Codes are case-sensitive, so `000.21.35.h53` is not `000.21.35.H53`; but as an odd code it
    would be a second address one mistyped letter away from a real agency's. No such twin is an
    identifier: it is refused wherever a code comes in (registration, addressing, lookups)."""
    if not isinstance(code, str) or len(code) > MAX_IDENTIFIER_LENGTH:
        return None
    upper = code.upper()
    if upper != code and (upper == ROOT or _qcvn_problem(upper) is None):
        return upper
    return None


def is_identifier(code: object) -> bool:
    """True if `code` is a valid identifier of the newer scheme (1..35 digits, letters, dots)."""
    return _is_identifier_str(code) if isinstance(code, str) else False


@functools.lru_cache(maxsize=4096)
def _is_identifier_str(code: str) -> bool:
    """Cached: the same few codes are checked for every envelope a node sends or relays."""
    return _identifier_problem(code) is None


MEMO_LIMIT = 100_000  # codes remembered per Hierarchy (the country has about 20,000 agencies)


class Hierarchy:
    """The agency tree: the QCVN 102 rule plus explicitly registered parents.

    ``extra_parents`` maps a code to its parent code. It is how codes outside the
    QCVN form get a place in the tree, and it takes precedence over the rule, so
    a registry can also correct a QCVN code's position. It is checked at
    construction (every chain must reach ROOT, no cycles) so that a bad registry
    fails when loaded rather than when a message is being routed. Instances are
    immutable, so a shared one (``DEFAULT``) is safe.
    """

    def __init__(self, extra_parents: Mapping[str, str] | None = None) -> None:
        parents: dict[str, str] = {}
        for child, par in (extra_parents or {}).items():
            if child == ROOT:
                raise CodeError(child, "is the national root and cannot have a parent")
            problem = _identifier_problem(child)
            if problem is not None:
                raise CodeError(child, f"cannot be registered: {problem}")
            if par != ROOT:
                problem = _identifier_problem(par)
                if problem is not None:
                    raise CodeError(child, f"registered parent {_show(par)} {problem}")
            if par == child:
                raise CodeError(child, "is registered as its own parent")
            parents[child] = par
        self._parents = parents
        self._ancestors: dict[str, tuple[str, ...]] = {}  # memo: a relay asks for the same few codes per envelope
        self._check_chains()

    def _check_chains(self) -> None:
        done: set[str] = {ROOT}
        for start in self._parents:
            chain: list[str] = []
            cur = start
            while cur not in done:
                if cur in chain:
                    cycle = " -> ".join(chain[chain.index(cur):] + [cur])
                    raise CodeError(start, f"registered parents form a cycle: {cycle}")
                chain.append(cur)
                try:
                    cur = self._parent(cur)
                except CodeError as e:  # the chain leaves the known tree
                    path = " -> ".join(chain)
                    raise CodeError(start, f"registered parent chain {path} does not reach {ROOT}: {e}") from e
            done.update(chain)

    @property
    def registered(self) -> Mapping[str, str]:
        """The explicitly registered parents (read-only)."""
        return MappingProxyType(self._parents)

    def _parent(self, code: str) -> str:
        """Parent of a non-ROOT code: registry first, else the QCVN rule."""
        if isinstance(code, str) and code in self._parents:
            return self._parents[code]
        problem = _qcvn_problem(code)
        if problem is None:
            return parse(code).parent
        ident_problem = _identifier_problem(code)
        if ident_problem is not None and case_twin_of(code) is not None:
            raise CodeError(code, f"is not of the QCVN 102 form ({problem}) and cannot be placed: it {ident_problem}")
        if ident_problem is not None:
            raise CodeError(code, f"is not a valid agency identifier: {ident_problem}")
        raise CodeError(
            code, f"is not of the QCVN 102 form ({problem}) and has no registered parent")

    def validate(self, code: str) -> str:
        """Return `code` unchanged if this hierarchy can place it (ROOT included), else raise CodeError."""
        if code != ROOT:
            self.ancestors(code)  # memoized; raises for the first code on the chain that cannot be placed
        return code

    def parent(self, code: str) -> str | None:
        """The parent code: ROOT for a level-1 unit, None for ROOT itself."""
        if code == ROOT:
            return None
        return self._parent(code)

    def ancestors(self, code: str) -> list[str]:
        """`code`, its parent, ... up to and including ROOT."""
        known = self._ancestors.get(code) if isinstance(code, str) else None
        if known is not None:
            return list(known)
        chain = [code]
        while chain[-1] != ROOT:
            chain.append(self._parent(chain[-1]))
        if len(self._ancestors) >= MEMO_LIMIT:
            self._ancestors.clear()
        self._ancestors[code] = tuple(chain)
        return chain

    def level(self, code: str) -> int:
        """Depth below ROOT: 0 for ROOT, 1..4 for QCVN codes, 1 + parent's for registered ones."""
        return len(self.ancestors(code)) - 1

    def is_under(self, code: str, ancestor: str) -> bool:
        """True if `ancestor` is strictly above `code` in the tree."""
        self.validate(ancestor)
        return ancestor in self.ancestors(code)[1:]

    def lca(self, a: str, b: str) -> str:
        """Lowest common ancestor of `a` and `b` (either of them, or at worst ROOT)."""
        above_b = set(self.ancestors(b))
        return next(x for x in self.ancestors(a) if x in above_b)

    def route(self, src: str, dst: str) -> list[str]:
        """Codes an envelope passes from `src` to `dst` inclusive: up to the LCA, then down."""
        return route_between(self.ancestors(src), self.ancestors(dst))

    def next_hop(self, here: str, dst: str) -> str:
        """The code after `here` on the route to `dst`. ValueError if already there."""
        if here == dst:
            raise ValueError(f"already at destination {_show(dst)}; there is no next hop")
        return self.route(here, dst)[1]

    def __repr__(self) -> str:
        return f"Hierarchy({len(self._parents)} registered parents)"


def route_between(up: list[str], down: list[str]) -> list[str]:
    """Hierarchy.route from the two codes' ancestor chains (each from the code up to ROOT), for a caller
    that already has them: up to their lowest common ancestor, then down."""
    above_down = set(down)
    common = next(x for x in up if x in above_down)
    return up[: up.index(common) + 1] + down[: down.index(common)][::-1]


DEFAULT = Hierarchy()
"""The pure QCVN 102 hierarchy, with no registered parents."""


def validate(code: str) -> str:
    """Return `code` unchanged if it is ROOT or a QCVN 102 code, else raise CodeError.

    Meant for config and CLI input; codes outside the QCVN form need a
    :class:`Hierarchy` that registers them (use its ``validate``).
    """
    return DEFAULT.validate(code)


def level(code: str) -> int:
    """Level of a QCVN 102 code (1..4), or 0 for ROOT."""
    return DEFAULT.level(code)


def parent(code: str) -> str | None:
    """Parent under the QCVN 102 rule: ROOT for level 1, None for ROOT."""
    return DEFAULT.parent(code)


def ancestors(code: str) -> list[str]:
    """See :meth:`Hierarchy.ancestors` (QCVN 102 rule only)."""
    return DEFAULT.ancestors(code)


def is_under(code: str, ancestor: str) -> bool:
    """See :meth:`Hierarchy.is_under` (QCVN 102 rule only)."""
    return DEFAULT.is_under(code, ancestor)


def lca(a: str, b: str) -> str:
    """See :meth:`Hierarchy.lca` (QCVN 102 rule only)."""
    return DEFAULT.lca(a, b)


def route(src: str, dst: str) -> list[str]:
    """See :meth:`Hierarchy.route` (QCVN 102 rule only)."""
    return DEFAULT.route(src, dst)


def next_hop(here: str, dst: str) -> str:
    """See :meth:`Hierarchy.next_hop` (QCVN 102 rule only)."""
    return DEFAULT.next_hop(here, dst)
