import dataclasses
import io

import jax
import numpy as np
import pytest
from reference import train_alone
from tiny import tiny

from counting.config import CohortConfig, ConfigError, RunConfig
from counting.store import read_record
from counting.store.record import load_params
from counting.sweep.cohort import train_cohort
from counting.sweep.plan import expand, group, split_to_fit
from counting.sweep.progress import Progress
from counting.sweep.runner import execute_many, folder_of
from counting.tasks import make_task
from counting.training.train import init_state

BASE = tiny(task={"m": 5, "n": 6, "eval_size": 256}, model={"d": 16, "H": 2, "w": 32},
            train={"steps": 60, "batch": 32, "eval_every": 30})


@pytest.mark.slow
def test_a_member_trains_exactly_like_the_same_model_alone():
    members = expand(BASE, {"m": [5, 9], "seed": [0, 3]})
    results = train_cohort(members)
    params, metrics = train_alone(BASE)  # m = 5, seed 0: the first member, with a table padded to m = 9 in the cohort
    assert results[0].metrics["accuracy"] == metrics["accuracy"]
    assert results[0].metrics["loss"] == pytest.approx(metrics["loss"], rel=1e-5)
    for a, b in zip(jax.tree.leaves(results[0].params), jax.tree.leaves(params)):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert results[1].metrics["loss"] != results[0].metrics["loss"]


@pytest.mark.slow
def test_members_taking_turns_train_like_alone():
    """per_call = 1: on each device the members run one after another (lax.map), as the CPU
    does for d >= 32; per_call = 2: pairs side by side, the pairs in turn (4 members per
    device)."""
    members = expand(BASE, {"seed": list(range(4 * len(jax.local_devices())))})
    alone = {i: train_alone(members[i]) for i in (0, len(members) - 1)}
    for per_call in (1, 2):
        results = train_cohort(members, settings=CohortConfig(per_call=per_call))
        for i, (params, metrics) in alone.items():
            assert results[i].metrics["accuracy"] == metrics["accuracy"]
            for a, b in zip(jax.tree.leaves(results[i].params), jax.tree.leaves(params)):
                np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.slow
def test_members_with_other_learning_rates_differ_from_each_other():
    # m = 5 and 9, as in the first test: the same shapes, so the same compiled programs
    members = expand(BASE, {"m": [5, 9], "lr": [1e-3, 3e-3]})
    assert [(c.task.m, c.train.lr) for c in members] == [(5, 1e-3), (5, 3e-3), (9, 1e-3), (9, 3e-3)]
    a, b = train_cohort(members)[:2]
    assert a.metrics["loss"] != b.metrics["loss"]
    _, alone = train_alone(members[1])
    assert b.metrics["loss"] == pytest.approx(alone["loss"], rel=1e-5)


def test_shape_changing_values_make_separate_cohorts():
    other_d = dataclasses.replace(BASE, model=dataclasses.replace(BASE.model, d=8))
    cohorts = group(expand(BASE, {"seed": [0, 1]}) + [other_d])
    assert [len(c) for c in cohorts] == [2, 1]
    with pytest.raises(ValueError, match="share"):
        train_cohort([BASE, other_d])


def test_expand_rejects_shape_changing_axes():
    with pytest.raises(ConfigError, match="cohort.d"):
        expand(BASE, {"d": [8, 16]})
    with pytest.raises(ConfigError, match="cohort.m: every value must be >= 2"):
        expand(BASE, {"m": [1, 4]})
    with pytest.raises(ConfigError, match="task.k: must be in 2..task.m"):  # a member's own rule
        expand(BASE, {"k": [9]})


def test_a_cohort_too_large_for_memory_splits_into_chunks():
    members = expand(BASE, {"seed": list(range(5))})
    from counting.sweep.plan import bytes_per_model

    per = bytes_per_model(BASE, 5)
    assert [len(c) for c in split_to_fit(members, budget=2 * per)] == [2, 2, 1]
    assert [len(c) for c in split_to_fit(members, max_models=4)] == [4, 1]
    assert [len(c) for c in split_to_fit(members)] == [5]


@pytest.mark.slow
def test_each_member_writes_a_record_in_the_single_run_format(tmp_path):
    base = dataclasses.replace(BASE, results_dir=str(tmp_path), experiment="c")
    members = expand(base, {"m": [3, 5], "seed": [0, 1]})
    report = execute_many(members, CohortConfig(max_models=3), show_progress=False)  # 2 chunks
    assert len(report.trained) == 4 and not report.failed
    for cfg in members:
        folder = folder_of(cfg)
        record = read_record(folder)
        assert record["status"] == "complete" and record["steps"] == 60
        assert RunConfig.from_dict(record["config"]) == cfg
        _, state, _ = init_state(cfg, make_task(cfg.task))  # the member's own, unpadded shapes
        load_params(folder, state.params)
        assert len((folder / "metrics.jsonl").read_text().splitlines()) == 2
    again = execute_many(members, show_progress=False)
    assert len(again.skipped) == 4 and not again.trained


def test_progress_prints_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    progress = Progress(models=3, steps=10, label="c", stream=stream, interval_s=3600)
    progress.start()
    for _ in range(5):
        progress.update(6)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2  # the first update, then the last one
    assert "30/30 model-steps (3 models)" in lines[-1] and "\r" not in stream.getvalue()


@pytest.mark.slow
def test_resuming_from_a_checkpoint_gives_the_uninterrupted_result(tmp_path):
    from counting.store.checkpoint import CohortCheckpoint

    members = expand(BASE, {"m": [3, 5], "seed": [0, 1]})
    straight = train_cohort(members)

    class Preempted(Exception):
        pass

    def preempt_after_first_evaluation(row):
        raise Preempted

    ckpt = CohortCheckpoint(tmp_path / "ckpt")
    with pytest.raises(Preempted):  # logging precedes the chunk's checkpoint
        train_cohort(members, [preempt_after_first_evaluation] + [lambda r: None] * 3, checkpoint=ckpt)
    assert ckpt.latest_step() is None  # killed before its first checkpoint: nothing to resume

    calls = {"n": 0}

    def preempt_on_second_evaluation(row):
        calls["n"] += 1
        if calls["n"] == 2:
            raise Preempted

    with pytest.raises(Preempted):
        train_cohort(members, [preempt_on_second_evaluation] + [lambda r: None] * 3, checkpoint=ckpt)
    assert ckpt.latest_step() == 30
    resumed = train_cohort(members, checkpoint=ckpt)
    for a, b in zip(straight, resumed):
        assert a.metrics == b.metrics
        for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
            np.testing.assert_array_equal(x, y)


def test_heartbeat_prints_while_work_without_steps_runs():
    import io
    import time

    from counting.sweep.progress import Heartbeat

    stream = io.StringIO()
    with Heartbeat("theory part 1/1 slow", interval_s=0.05, stream=stream):
        time.sleep(0.3)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "theory part 1/1 slow: started"
    assert len(lines) >= 3 and all("running, elapsed 0:00:0" in line for line in lines[1:])
