"""The stopping rule: per member, inside a cohort, in the record; and divergence per member."""

import dataclasses

import jax
import numpy as np
import pytest
from tiny import tiny

from counting.config import CohortConfig, ConfigError, RunConfig, StopConfig
from counting.store import read_record
from counting.sweep.cohort import train_cohort
from counting.sweep.plan import expand
from counting.sweep.runner import execute_many, folder_of
from counting.training.stop import StopRule

BASE = tiny(task={"m": 2, "eval_size": 256}, model={"d": 16, "w": 64},
            train={"steps": 400, "batch": 64, "warmup": 20, "eval_every": 50})


def with_stop(cfg, **stop):
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, stop=StopConfig(**stop)))


def test_rule_stops_at_target_on_plateau_and_not_before():
    rule = StopRule(StopConfig(target=0.9))
    rule.update(10, {"accuracy": 0.5, "loss": 1.0})
    assert rule.active
    rule.update(20, {"accuracy": 0.9, "loss": 0.9})
    assert (rule.reason, rule.stopped_at) == ("target", 20)

    rule = StopRule(StopConfig(patience=2, min_delta=0.05))
    for step, loss in [(10, 1.0), (20, 0.9), (30, 0.88), (40, 0.87)]:  # 0.88 and 0.87: within min_delta
        rule.update(step, {"accuracy": 0.1, "loss": loss})
    assert (rule.reason, rule.stopped_at) == ("plateau", 40)
    assert StopRule.from_state(rule.cfg, rule.state()) == rule


def test_stop_fields_are_validated():
    for raw, field in [({"target": 1.5}, "train.stop.target"), ({"patience": 0}, "train.stop.patience"),
                       ({"budget": 0}, "train.stop.budget"), ({"min_delta": -1}, "train.stop.min_delta"),
                       ({"patience": "x"}, "train.stop.patience"), ({"nope": 1}, "train.stop.nope")]:
        with pytest.raises(ConfigError, match=field):
            RunConfig.from_dict({"train": {"stop": raw}})
    assert RunConfig.from_dict({"train": {"stop": {"target": 1, "budget": 50}}}).train.total_steps == 50


def test_identity_keeps_eval_every_only_under_a_stop_rule():
    other_cadence = dataclasses.replace(BASE, train=dataclasses.replace(BASE.train, eval_every=100), experiment="x")
    assert other_cadence.hash() == BASE.hash()  # cadence and experiment: not the model
    stopping = with_stop(BASE, target=0.9)
    assert with_stop(other_cadence, target=0.9).hash() != stopping.hash()
    assert with_stop(BASE, budget=400).hash() == BASE.hash()  # the budget resolved: 400 steps either way


@pytest.mark.slow
def test_a_member_that_stops_early_is_bit_identical_to_the_same_model_trained_to_that_step():
    """The stop freezes a member exactly: its parameters equal those of the same model
    trained for exactly that many steps (constant schedule, so the budget does not change
    the learning rate), in the same program (same members, same layout), bit for bit; and the
    same model alone (another XLA program: its own fusion and rounding) to float32 rounding."""
    constant = dataclasses.replace(BASE, train=dataclasses.replace(BASE.train, schedule="constant"))
    easy, hard = expand(with_stop(constant, target=0.9), {"lr": [3e-3, 1e-6]})
    alone = train_cohort([easy])[0]
    for per_call in (1, 2):  # in turns (lax.map: the chunk is skipped) and side by side (vmap: the old state selected)
        rows = [[], []]
        early, late = train_cohort([easy, hard], [rows[0].append, rows[1].append], settings=CohortConfig(per_call=per_call))
        assert early.stop_reason == "target" and early.steps < 400 and early.steps == alone.steps
        assert rows[0][-1]["step"] == early.steps and rows[0][-1]["stop_reason"] == "target"
        assert late.stop_reason == "budget" and late.steps == 400  # lr 1e-6 does not reach 0.9
        fixed = [dataclasses.replace(c, train=dataclasses.replace(constant.train, steps=early.steps, lr=c.train.lr))
                 for c in (easy, hard)]
        to_step = train_cohort(fixed, settings=CohortConfig(per_call=per_call))[0]
        assert to_step.stop_reason == "budget" and to_step.metrics == early.metrics
        for a, b, c in zip(jax.tree.leaves(early.params), jax.tree.leaves(to_step.params), jax.tree.leaves(alone.params)):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_a_cohort_whose_members_all_stop_finishes_early(monkeypatch):
    """The program runs no train chunk after the last member has stopped."""
    from counting.sweep import cohort

    calls = []
    real = cohort.compile_program

    def counting_calls(f):
        def call(*a):
            calls.append(1)
            return f(*a)
        return call

    def counted(*args, **kwargs):
        program = real(*args, **kwargs)
        program.chunks = {length: counting_calls(f) for length, f in program.chunks.items()}
        return program

    monkeypatch.setattr(cohort, "compile_program", counted)
    # BASE's own 400 steps (its schedule), so the program is the one the record test below loads
    members = expand(with_stop(BASE, target=0.5, budget=400), {"seed": [0, 1]})
    results = train_cohort(members)
    assert all(r.stop_reason == "target" and r.steps < 400 for r in results)
    assert len(calls) == max(r.steps for r in results) // BASE.train.eval_every  # not 400 / 50 = 8


@pytest.mark.slow
def test_the_record_says_why_and_when_the_model_stopped(tmp_path):
    cfgs = expand(dataclasses.replace(with_stop(BASE, patience=1, min_delta=10.0), results_dir=str(tmp_path)),
                  {"seed": [0, 1]})
    report = execute_many(cfgs, show_progress=False)
    assert len(report.trained) == 2
    for cfg in cfgs:
        record = read_record(folder_of(cfg))
        assert record["stop_reason"] == "plateau" and record["steps"] == 100  # the first evaluation sets the best; min_delta 10: never beaten
        assert record["layout"]["members"] == 2 and record["fingerprint"]


@pytest.mark.slow
def test_one_member_diverging_leaves_the_others_training():
    base = dataclasses.replace(BASE, model=dataclasses.replace(BASE.model, norm="none"),
                               train=dataclasses.replace(BASE.train, warmup=0, clip=1e30, steps=100))
    sane, wild = expand(base, {"lr": [3e-3, 1e30]})
    rows = []
    results = train_cohort([sane, wild], [lambda r: None, rows.append])
    assert results[1].status == "diverged" and results[1].stop_reason == "diverged"
    assert results[1].diverged_at is not None and results[1].steps == results[1].diverged_at + 1
    assert rows[-1]["status"] == "diverged"
    assert results[0].status == "complete" and results[0].steps == 100
    assert np.isfinite(results[0].metrics["loss"])

