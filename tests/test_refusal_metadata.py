"""Every refusal carries the metadata docs/reasons.md promises for its reason, read from the code.

A client acts on `field`, `limit`, `count`, `recipient`... without parsing text, so each place in
node/ that raises `Rejected(Reason.X, ...)` must give what X's row in docs/reasons.md names after
"Metadata:" (`field` as the `field=` keyword, the others as keys of a literal `metadata={...}`).
Helpers such as `limits.over` and `errors.too_large` are call sites too, so going through them
counts. A computed mapping (`metadata=_step(...)`) cannot be read here: its reason's behaviour
tests check it (BAD_STEP: tests/documents). The HTTP face's own tests check a few of these
refusals end to end (tests/api/test_http_refusals.py)."""
from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

from node.errors import Reason

ROOT = Path(__file__).resolve().parents[1]

# Refusals of a whole request or packet, which no single field is at fault for (detail text prefix).
NO_FIELD = {
    ("INVALID_REQUEST", "the body is not UTF-8"), ("INVALID_REQUEST", "the body is not JSON"),
    ("INVALID_REQUEST", "the body does not fit"), ("INVALID_REQUEST", "a non-delivery notice has no edXML form"),
    ("INVALID_REQUEST", "cannot be written as edXML"), ("INVALID_REQUEST", "this node keeps no CRL"),
    ("INVALID_REQUEST", "this node issues no successions"), ("INVALID_REQUEST", "this node keeps no successions"),
    ("INVALID_REQUEST", "this node takes over no mailboxes"),
}


def documented_metadata() -> dict[str, set[str]]:
    """reason -> the keys its catalogue row lists after `Metadata:`."""
    out = {}
    for line in (ROOT / "docs/reasons.md").read_text().splitlines():
        row = re.match(r"\| `(\w+)` \|", line)
        said = re.search(r"Metadata: ((?:`\w+`(?:, | and )?)+)", line)
        if row and said:
            out[row.group(1)] = set(re.findall(r"`(\w+)`", said.group(1)))
    return out


@functools.cache
def call_sites() -> tuple[tuple[str, str, set[str], str], ...]:
    """(where, reason, keys given, detail prefix or None when the keys cannot be read) per literal reason.
    Parsed once per session: every reason's test reads the same node/ sources."""
    return tuple(_scan())


def _scan():
    for path in sorted((ROOT / "node").rglob("*.py")):
        if "pb" in path.relative_to(ROOT).parts:
            continue
        for call in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Rejected" and call.args
                    and isinstance(call.args[0], ast.Attribute) and getattr(call.args[0].value, "id", "") == "Reason"):
                continue
            kw = {k.arg: k.value for k in call.keywords}
            keys = {"field"} if "field" in kw and not _is_none(kw["field"]) else set()
            meta = kw.get("metadata")
            if meta is not None and not isinstance(meta, ast.Dict):
                continue  # computed: see the docstring
            keys |= {k.value for k in (meta.keys if meta else []) if isinstance(k, ast.Constant)}
            detail = call.args[1] if len(call.args) > 1 else None
            text = (detail.value if isinstance(detail, ast.Constant) else
                    "".join(v.value for v in detail.values if isinstance(v, ast.Constant)) if isinstance(detail, ast.JoinedStr)
                    else "")
            yield f"{path.relative_to(ROOT)}:{call.lineno}", call.args[0].attr, keys, text


def _is_none(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def test_the_catalogue_names_metadata_for_the_refusals_clients_act_on():
    promised = documented_metadata()
    for reason, keys in {"OVER_LIMIT": {"field", "limit", "count"}, "TOO_LARGE": {"limit"},
                         "INVALID_REQUEST": {"field"}, "MISSING_FIELD": {"field"}}.items():
        assert keys <= promised.get(reason, set()), reason
    assert set(promised) <= {r.wire for r in Reason}


def test_the_scan_sees_the_call_sites():  # a scan that finds nothing would pass everything
    sites = list(call_sites())
    assert len(sites) > 150
    assert any(reason == "OVER_LIMIT" and {"limit", "count"} <= keys for _, reason, keys, _ in sites)


@pytest.mark.parametrize("reason", sorted(documented_metadata()))
def test_every_refusal_carries_the_metadata_its_reason_promises(reason):
    promised = documented_metadata()[reason]
    missing = []
    for where, r, keys, text in call_sites():
        if r != reason:
            continue
        need = promised - ({"field"} if any(r == n and text.startswith(p) for n, p in NO_FIELD) else set())
        if not need <= keys:
            missing.append(f"{where}: {sorted(need - keys)} ({text[:50]!r})")
    assert not missing, "\n".join(missing)
