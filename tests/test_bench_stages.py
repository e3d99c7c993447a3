"""scripts/bench's stage figures: the mean per batch of what the drain alone added to each node's histogram."""
from node.harness.bench import stage_means


def test_stage_means_are_per_batch_over_the_drain_only():
    before = {"in.check": (2.0, 10.0), "out.deliver": (1.0, 4.0)}
    after = {"in.check": (2.5, 15.0), "out.deliver": (1.0, 4.0), "in.custody": (0.3, 3.0)}
    # 0.5 s over 5 new batches; a stage with no new batch is left out; one first seen in the drain counts from zero
    assert stage_means(before, after) == {"in.check": 100.0, "in.custody": 100.0}
