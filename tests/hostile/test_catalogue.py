"""Every case of the hostile catalogue against real node processes: the attack meets its refusal
(gRPC status and stable reason), and no victim stored anything (custody rows and file hashes
before and after), but what a case allows by design (the good envelopes of a batch, say)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ is not a package (importlib mode)
from hostile.catalogue import CATALOGUE, GROUPS, table  # noqa: E402
from hostile.core import Scene  # noqa: E402
from hostile.world import D, M, seal, unchanged  # noqa: E402
from node.pb import exchange_pb2 as xpb  # noqa: E402


@pytest.mark.parametrize("case", CATALOGUE, ids=[c.id for c in CATALOGUE])
def test_attack_is_refused_and_nothing_is_stored(world, case):
    scene = Scene(world)
    if not case.prepares:
        scene.begin()
    observed = case.attack(scene)
    assert scene.before is not None, "the case never took its before-snapshot"
    assert (observed.status, observed.reason) == (case.status, case.reason), observed.detail
    problems = unchanged(scene.before, world.snapshot(), observed.allow_ids, observed.allow_paths)
    problems += world.recorded_bounds(scene.before)
    assert not problems, "\n".join(problems)


def test_the_catalogue_covers_the_issue():
    assert len(CATALOGUE) >= 60
    assert len({c.id for c in CATALOGUE}) == len(CATALOGUE)
    assert {c.group for c in CATALOGUE} == set(GROUPS)
    assert table().count("\n| ") >= len(CATALOGUE)


def test_the_snapshot_sees_what_an_accepted_envelope_stores(world):
    """The nothing-stored check is not vacuous: a good envelope from M shows up in D's tables."""
    before = world.snapshot()
    header, raw = seal(world.signer(M), D)
    world.exchange(M).Deliver(xpb.DeliverRequest(envelope=raw), timeout=10)
    problems = unchanged(before, world.snapshot())
    assert {p.split(":")[0] for p in problems} >= {f"{D}/received", f"{D}/inbox", f"{D}/doc_progress",
                                                   f"{D}/outbox", f"{D}/status_out", f"{D}/docs"}
    assert not unchanged(before, world.snapshot(), [header.message_id])
