"""Compaction: members that stopped free their compute. The others continue in a smaller
program; every record's layout says which programs its member ran in; results are
deterministic, a member that stopped before the first compaction is bit for bit the same
model with compaction on or off, and a compacted cohort resumes from its checkpoint exactly."""

import jax
import numpy as np
import pytest
from tiny import tiny

from counting.config import CohortConfig
from counting.sweep.cohort import train_cohort
from counting.sweep.plan import expand
from counting.sweep.sizes import bucket


def test_program_sizes_are_few_and_divide_over_the_devices():
    assert [bucket(a, 2) for a in (1, 2, 3, 4, 5, 9, 16, 17)] == [1, 2, 4, 4, 8, 16, 16, 32]
    assert [bucket(a, 1) for a in (1, 3, 5)] == [1, 4, 8]
    assert [bucket(a, 4) for a in (1, 2, 3, 5)] == [1, 2, 4, 8]


def test_the_finer_size_rule_pads_at_most_a_third():
    assert [bucket(a, 1, "pow2_3") for a in (1, 2, 3, 4, 5, 6, 7, 9, 13, 17, 25)] == [1, 2, 3, 4, 6, 6, 8, 12, 16, 24, 32]
    assert [bucket(a, 2, "pow2_3") for a in (1, 3, 5, 9, 17, 18, 25)] == [1, 4, 6, 12, 24, 24, 32]
    for devices in (1, 2, 4):
        for active in range(1, 70):
            size = bucket(active, devices, "pow2_3")
            assert size >= active and (size < devices or size % devices == 0)
            assert size <= bucket(active, devices) and (active < 3 or size <= 1.5 * active + devices)


def test_the_exact_size_rule_only_rounds_up_to_the_devices():
    assert [bucket(a, 2, "exact") for a in (1, 2, 3, 17, 18)] == [1, 2, 4, 18, 18]
    assert [bucket(a, 1, "exact") for a in (1, 3, 17)] == [1, 3, 17]


def test_compiling_ahead_takes_the_largest_sizes_a_compaction_can_still_reach():
    from counting.sweep.sizes import ahead_sizes

    assert ahead_sizes(33, 34, {34}, 2) == [32, 16]  # the first compaction lands on one of these
    assert ahead_sizes(9, 32, {34, 32}, 2) == [16, 8]  # 9 active: 16 at most
    assert ahead_sizes(3, 16, {16, 4}, 2, depth=3) == [2, 1]  # a compiled size is not compiled again
    assert ahead_sizes(5, 34, {34}, 2, "exact") == [6, 4]  # exact: rounded up to the 2 devices
    assert ahead_sizes(1, 2, {2}, 2) == [1] and ahead_sizes(4, 4, {4}, 1, "pow2_3") == [3, 2]


def test_a_size_rule_registered_in_sizes_is_a_choice_at_once(monkeypatch):
    from counting.config import CohortConfig
    from counting.sweep import sizes

    monkeypatch.setitem(sizes.SIZES, "odd", lambda x: x + x % 2)
    assert CohortConfig.from_dict({"compact_sizes": "odd"}).compact_sizes == "odd"  # no second list in the config
    assert [sizes.bucket(a, 1, "odd") for a in (1, 2, 3)] == [2, 2, 4]


def test_an_unknown_size_rule_is_a_one_line_error():
    from counting.config import CohortConfig
    from counting.spec import ConfigError

    with pytest.raises(ConfigError, match="cohort.compact_sizes.*pow2, pow2_3, exact"):
        CohortConfig.from_dict({"compact_sizes": "powers"})


# m = 2 reaches the target long before m = 8: the cohort compacts from 4 members to 2.
MEMBERS = expand(tiny(task={"n": 4, "eval_size": 128}, train={"steps": 600, "eval_every": 50, "lr": 1e-2},
                      stop={"target": 0.95}), {"m": [2, 8], "seed": [0, 1]})


def summary(results):
    return [(r.steps, r.stop_reason, r.metrics["accuracy"], r.metrics["loss"]) for r in results]


@pytest.mark.slow
def test_compaction_is_recorded_deterministic_and_leaves_early_stoppers_alone():
    if len(jax.local_devices()) > 2:
        pytest.skip("the sizes below assume at most 2 CPU devices")
    on = train_cohort(MEMBERS, settings=CohortConfig(compile_ahead=True))  # compiled ahead, in a background thread
    again = train_cohort(MEMBERS, settings=CohortConfig(compile_ahead=False))  # each compiled when needed
    off = train_cohort(MEMBERS, settings=CohortConfig(compact=False))
    assert summary(on) == summary(again)  # the same numbers, whenever the compile finished
    for a, b in zip(jax.tree.leaves([r.params for r in on]), jax.tree.leaves([r.params for r in again])):
        np.testing.assert_array_equal(a, b)
    assert [r.layout for r in on] == [r.layout for r in again]
    early = [i for i, r in enumerate(on) if r.stop_reason == "target" and "segments" not in r.layout]
    late = [i for i, r in enumerate(on) if "segments" in r.layout]
    assert early and late, [r.layout for r in on]
    for i in early:  # stopped before the first compaction: the same program, the same model
        assert on[i].layout == off[i].layout
        assert summary([on[i]]) == summary([off[i]])
        for a, b in zip(jax.tree.leaves(on[i].params), jax.tree.leaves(off[i].params)):
            np.testing.assert_array_equal(a, b)
    for i in late:
        segments = on[i].layout["segments"]
        assert [s["members"] for s in segments] == sorted((s["members"] for s in segments), reverse=True)
        assert segments[0]["members"] == len(MEMBERS) and segments[-1]["members"] < len(MEMBERS)
        assert segments[0]["from_step"] == 0 and segments[1]["from_step"] > 0
        assert "segments" not in off[i].layout
        # another program rounds differently, so the same model only to float rounding at first,
        # then as chaotic training allows: the layout explains the difference
        assert on[i].steps > 0 and abs(on[i].metrics["accuracy"] - off[i].metrics["accuracy"]) < 0.5


@pytest.mark.slow
def test_members_that_take_turns_are_not_compacted():
    """One member per call (lax.map) skips a stopped member's chunk already: no recompilation."""
    results = train_cohort(MEMBERS, settings=CohortConfig(per_call=1))
    assert all("segments" not in r.layout for r in results)
    assert summary(results) == summary(train_cohort(MEMBERS, settings=CohortConfig(per_call=1, compact=False)))


@pytest.mark.slow
def test_a_compacted_cohort_resumes_from_its_checkpoint_exactly(tmp_path, monkeypatch):
    from counting.store.checkpoint import CohortCheckpoint
    from counting.sweep import cohort

    whole = train_cohort(MEMBERS)
    assert any("segments" in r.layout for r in whole)
    stop_at = max(s["from_step"] for r in whole for s in r.layout.get("segments", [])) + 50
    checkpoint = CohortCheckpoint(tmp_path / "ckpt")
    real = cohort.Members.take

    def take(self, done, length, *args):
        real(self, done, length, *args)
        if done + length > stop_at:
            raise KeyboardInterrupt  # killed after the checkpoint of step stop_at
    monkeypatch.setattr(cohort.Members, "take", take)
    with pytest.raises(KeyboardInterrupt):
        train_cohort(MEMBERS, checkpoint=checkpoint)
    monkeypatch.setattr(cohort.Members, "take", real)
    assert checkpoint.latest_step() == stop_at
    resumed = train_cohort(MEMBERS, checkpoint=checkpoint)
    assert summary(resumed) == summary(whole)
    assert [r.layout for r in resumed] == [r.layout for r in whole]


def test_a_cohort_that_does_not_divide_over_the_devices_is_padded_onto_all_of_them():
    from counting.sweep.cohort import first_rows

    assert first_rows(33, 2) == [*range(33), 0] and first_rows(4, 2) == [0, 1, 2, 3]
    assert first_rows(1, 2) == [0] and first_rows(5, 4) == [0, 1, 2, 3, 4, 0, 0, 0]
    assert first_rows(7, 1) == list(range(7))


@pytest.mark.slow
def test_a_padded_member_trains_as_in_the_cohort_without_the_pad():
    """Three members on two devices run as four rows, two per device (the pad row, member 0
    again, stays inactive): each member is bit for bit what it is beside a real fourth."""
    if len(jax.local_devices()) != 2:
        pytest.skip("the layout below assumes 2 CPU devices")
    three = train_cohort(MEMBERS[:3], settings=CohortConfig(compact=False))
    four = train_cohort(MEMBERS, settings=CohortConfig(compact=False))
    assert {(r.layout["devices"], r.layout["members"], r.layout["members_per_call"]) for r in three} == {(2, 4, 2)}
    assert summary(three) == summary(four[:3])
    for a, b in zip(three, four[:3]):
        for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
            np.testing.assert_array_equal(x, y)
