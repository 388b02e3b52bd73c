"""Successive halving over the optimiser (counting.training.halving): members are every (setting, seed)
of a cell inside one cohort; at each rung the best 1/eta of a cell's settings go on and the
others stop as `pruned`; searched hyperparameters never split a cell; capacity and
learnability are read from the result."""

import dataclasses
import math

import pytest
from tiny import tiny

from counting.analysis.analyze import analyze
from counting.config import AnalysisConfig, ConfigError, HalvingConfig
from counting.sweep.plan import expand, split_to_fit
from counting.training.halving import Halving, cell_key
from counting.training.stop import StopRule

SPACE = HalvingConfig(lr=(1e-3, 3e-3, 1e-2), weight_decay=(0.0,), eta=3, rungs=(0.25, 0.5))


def searched(**kw):
    return dataclasses.replace(tiny(train={"steps": 400, "eval_every": 50}, **kw), halving=SPACE)


class Book:
    """A stand-in for cohort.Members: each member's last held-out metrics and its rule."""

    def __init__(self, cfgs, losses):
        self.rules = [StopRule(c.train.stop) for c in cfgs]
        self.last = [{"loss": loss, "accuracy": 0.5} for loss in losses]


def test_the_space_expands_into_members_and_the_search_is_part_of_their_identity():
    members = expand(searched(), {"m": [2, 4], "seed": [0, 1]})
    assert len(members) == 2 * 2 * 3
    assert sorted({c.train.lr for c in members}) == [1e-3, 3e-3, 1e-2]
    plain = tiny(train={"steps": 400, "eval_every": 50, "lr": 1e-3})
    assert "halving" in members[0].identity() and "halving" not in plain.identity()
    assert len({c.hash() for c in members}) == 12
    assert len({cell_key(c) for c in members}) == 2  # one race per m
    with pytest.raises(ConfigError, match="cohort.lr: halving.lr searches it already"):
        expand(searched(), {"lr": [1e-3]})
    with pytest.raises(ConfigError, match="halving.rungs: must be increasing"):
        HalvingConfig(lr=(1e-3,), rungs=(0.5, 0.25))


def test_chunks_never_split_a_race():
    members = expand(searched(), {"m": [2, 4], "seed": [0, 1]})  # two races of 6
    assert [len(c) for c in split_to_fit(members, max_models=7)] == [6, 6]
    assert [len(c) for c in split_to_fit(members, max_models=12)] == [12]
    with pytest.raises(ConfigError, match="a halving race has 6 members"):
        split_to_fit(members, max_models=4)


def test_each_rung_keeps_the_best_third_of_the_settings_by_mean_loss_and_prunes_the_rest():
    members = expand(searched(), {"seed": [0, 1]})  # settings x seeds: (1e-3, 0), (1e-3, 1), (3e-3, 0), ...
    order = [(c.train.lr, c.train.seed) for c in members]
    assert order == [(1e-3, 0), (3e-3, 0), (1e-2, 0), (1e-3, 1), (3e-3, 1), (1e-2, 1)]
    losses = {1e-3: (0.9, 0.7), 3e-3: (0.2, 0.6), 1e-2: (0.5, 0.5)}  # means 0.8, 0.4, 0.5
    book = Book(members, [losses[lr][seed] for lr, seed in order])
    race = Halving.of(members)
    assert race.rung_steps == [100, 200]
    assert race.after(50, book) == []  # before the first rung nothing happens
    pruned = race.after(100, book)
    assert sorted(order[i] for i in pruned) == [(1e-3, 0), (1e-3, 1), (1e-2, 0), (1e-2, 1)]
    assert all(book.rules[i].reason == "pruned" and book.rules[i].stopped_at == 100 for i in pruned)
    assert [race.record(i)["promoted"] for i in range(6)] == [False, True, False, False, True, False]
    assert race.record(1)["rung"] == 1 and race.record(0)["rung"] == 0
    assert race.after(200, book) == [] and race.record(1)["rung"] == 2  # one setting left: it goes on
    again = Halving.of(members)
    again.load(race.state())
    assert again.state() == race.state()


def test_a_diverged_member_ranks_its_setting_last_and_ties_go_to_the_earlier_setting():
    members = expand(searched(), {"seed": [0]})
    book = Book(members, [0.5, 0.5, 0.1])
    book.rules[2].stop("diverged", 60)
    race = Halving.of(members)
    race.after(100, book)
    assert race.record(0)["promoted"] and not race.record(1)["promoted"] and not race.record(2)["promoted"]
    assert math.isinf(race.score(book, 2))


@pytest.mark.slow
def test_a_searched_cohort_prunes_records_it_and_the_analysis_reads_capacity_and_learnability(tmp_path):
    from counting.store.aggregate import aggregate
    from counting.sweep.runner import execute_many

    base = dataclasses.replace(searched(task={"m": 3, "n": 4}), results_dir=str(tmp_path), experiment="h")
    base = dataclasses.replace(base, halving=dataclasses.replace(SPACE, lr=(1e-4, 3e-3, 3e-2)))
    members = expand(base, {"m": [2, 4], "seed": [0, 1]})
    report = execute_many(members, show_progress=False)
    assert len(report.trained) == 12 and not report.failed
    _, rows = aggregate(tmp_path, "h")
    assert sum(r["stop_reason"] == "pruned" for r in rows) == 2 * 2 * 2  # two of three settings, per m, both seeds
    assert {r["steps"] for r in rows if r["stop_reason"] == "pruned"} == {100}
    winners = [r for r in rows if r["promoted"]]
    assert len(winners) == 4 and all(r["steps"] == 400 and r["rung"] == 2 for r in winners)
    analysis = analyze(rows, AnalysisConfig(boot=50, tau=0.5))
    assert "lr" not in analysis.columns and len(analysis.cells) == 2  # the search never splits a cell
    for cell, row in zip(analysis.cells, analysis.cell_rows):
        assert len(cell.acc_S) == 6 and len(cell.chosen_S) == 2
        assert row["chosen_lr"] in (1e-4, 3e-3, 3e-2) and row["models"] == 6 and row["seeds"] == 2
        assert row["best_accuracy"] == max(cell.acc_S)
    methods = {r["method"] for r in analysis.threshold_rows}
    assert {"best_seed", "learnability", "interpolated"} <= methods
