"""The adaptive search for m_thr (counting.sweep.search): the logic against planted thresholds, and a
tiny real search that converges to the full grid's answer, records every cell as an ordinary
record and, run again, trains nothing."""

import csv
import dataclasses
import math

import numpy as np
import pytest

from counting.config import AdaptiveConfig, ConfigError, JobConfig
from counting.sweep.search import (
    CENSORED_ABOVE,
    CENSORED_BELOW,
    DONE,
    ROUNDS_OUT,
    bracket,
    cell_statistic,
    fitted,
    inside,
    search,
)

GRID = (2, 4, 8, 16, 32, 64, 128)


def planted(m_thr: float, high: float = 1.0, low: float = 0.3):
    """A trainer whose cells pass exactly below m_thr; it counts what it was asked to train."""
    asked = []

    def train(m_values):
        asked.extend(m_values)
        return {m: (high if m <= m_thr else low) for m in asked}

    return train, asked


@pytest.mark.parametrize("m_thr", [5, 11, 23, 45, 100])
def test_the_search_locates_a_planted_threshold_within_the_ratio(m_thr):
    train, asked = planted(m_thr)
    rounds = search(train, 0.9, AdaptiveConfig(m=GRID))
    last = rounds[-1].bracket
    assert last.status == DONE and last.lo == m_thr < last.hi  # the last passing m is the planted one
    assert last.hi / last.lo <= 1.1 or last.hi == m_thr + 1
    assert len(asked) == len(set(asked))  # no cell trained twice
    grid_cost = len(range(2, 129))  # every integer m of the range
    assert len(asked) < grid_cost / 3


@pytest.mark.parametrize("m_thr", [5, 23, 45])
def test_a_small_grid_grows_by_doubling_until_a_cell_fails_and_then_refines(m_thr):
    train, asked = planted(m_thr)
    rounds = search(train, 0.9, AdaptiveConfig(m=(2, 4, 8), grow=3))
    last = rounds[-1].bracket
    assert last.status == DONE and last.lo == m_thr < last.hi
    assert not [m for m in asked if m > 2 * m_thr]  # no cell far past the threshold (the fixed grid trains 64)
    assert len(asked) == len(set(asked))
    grown = [r.m_tried for r in rounds[1:] if len(r.m_tried) == 1 and r.m_tried[0] in (16, 32, 64)]
    assert grown == [[m] for m in (16, 32, 64) if m / 2 <= m_thr][:3]


def test_growing_stops_after_its_budget_censored_above():
    train, asked = planted(1000)
    rounds = search(train, 0.9, AdaptiveConfig(m=(2, 4, 8), grow=2))
    assert rounds[-1].bracket.status == CENSORED_ABOVE and max(asked) == 32 and len(rounds) == 3


def test_a_ratio_stops_it_sooner_without_integers():
    train, _asked = planted(37)
    rounds = search(train, 0.9, AdaptiveConfig(m=GRID, integer=False, ratio=0.1))
    b = rounds[-1].bracket
    assert b.status == DONE and b.lo <= 37 < b.hi and b.hi / b.lo <= 1.1


def test_censoring_at_either_edge_and_a_round_budget():
    train, _ = planted(1000)
    assert search(train, 0.9, AdaptiveConfig(m=GRID))[-1].bracket.status == CENSORED_ABOVE
    train, _ = planted(1)
    assert search(train, 0.9, AdaptiveConfig(m=GRID))[-1].bracket.status == CENSORED_BELOW
    train, _ = planted(23)
    rounds = search(train, 0.9, AdaptiveConfig(m=GRID, rounds=1, per_round=1))
    assert len(rounds) == 2 and rounds[-1].bracket.status == ROUNDS_OUT


def test_the_bracket_interpolates_like_the_analysis_and_refines_inside_it():
    b = bracket({8: 1.0, 16: 0.8}, 0.9, AdaptiveConfig(m=(8, 16)))
    assert (b.lo, b.hi) == (8, 16) and b.estimate == pytest.approx(math.exp(math.log(8) + 0.5 * math.log(2)))
    assert inside(8, 16, 4, True, {8, 16}) == [9, 11, 12, 14]  # 8 * 2^(i/5), rounded
    assert inside(8, 10, 4, True, {8, 10}) == [9]


def test_bad_search_configs_are_one_line():
    with pytest.raises(ConfigError, match="adaptive.m: must be increasing"):
        AdaptiveConfig(m=(8, 4))
    with pytest.raises(ConfigError, match="cohort.m: the adaptive search chooses m"):
        JobConfig.from_dict({"adaptive": {"m": [2, 4]}, "cohort": {"m": [2]}})


@pytest.mark.slow
def test_a_tiny_real_search_converges_to_the_grids_answer_and_resumes(tmp_path):
    from counting.experiment import plan_experiment, run_experiment, train_job

    # d = 32 members take turns on the CPU (per_call = 1), so a cell's numbers do not depend on
    # which cohort trained it: the search and the grid see the same accuracies
    common = ["model.d=32", "model.w=16", "task.n=4", "task.eval_size=128", "train.steps=150", "train.eval_every=50",
              "train.batch=32", "cohort.seed=[0]", "hydra.sweeper.params={}",
              "after=[aggregate,search,analyze]"]  # the tables this test reads, no figures
    grid = run_experiment("quick", [*common, "cohort.m=[2,3,4,5,6,7,8]", "name=grid", "analysis.tau=0.6"],
                          results_dir=tmp_path, show_progress=False)
    best = {c["m"]: c["best_accuracy"] for c in grid.analysis.cell_rows}
    ms = sorted(best)
    first_fail = next((m for m in ms if best[m] < 0.6), None)
    result = run_experiment("quick", [*common, "cohort.m=[]", "adaptive.m=[2,4,8]", "name=search", "analysis.tau=0.6"],
                            results_dir=tmp_path, show_progress=False)
    assert result.ok, result.failed
    with (tmp_path / "search" / "search.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows and rows[-1]["status"] in (DONE, CENSORED_ABOVE, CENSORED_BELOW)
    last = rows[-1]
    if first_fail is None:
        assert last["status"] == CENSORED_ABOVE
    elif first_fail == ms[0]:
        assert last["status"] == CENSORED_BELOW
    else:
        assert int(last["hi"]) == first_fail and int(last["lo"]) == max(m for m in ms if m < first_fail)
    searched = {r["m"] for r in result.rows}
    assert len(searched) < len(ms) or first_fail is None  # fewer cells than the grid
    for r in result.rows:  # every cell the search trained is an ordinary record, identical to the grid's
        assert r["accuracy"] == best[r["m"]]
    plan = plan_experiment("quick", [*common, "cohort.m=[]", "adaptive.m=[2,4,8]", "name=search", "analysis.tau=0.6"],
                           results_dir=tmp_path)
    (tmp_path / "search" / "search" / next((tmp_path / "search" / "search").iterdir()).name).unlink()
    report = train_job(plan.cells[0][1], show_progress=False)  # killed and rerun: nothing new is trained
    assert report.trained == [] and len(report.skipped) == len(result.rows)
    assert dataclasses.asdict(plan.cells[0][1].config.adaptive)["m"] == (2, 4, 8)


def planted_outcomes(m50: float, slope: float = 6.0, seeds: int = 40):
    """A trainer of exact outcomes (0/1 per seed) with P(exact | m) = 1 / (1 + (m / m50)^slope),
    drawn at evenly spaced quantiles (deterministic: no random draw can move the fit)."""
    asked = []

    def train(m_values):
        asked.extend(m_values)
        out = {}
        for m in asked:
            p = 1.0 / (1.0 + (m / m50) ** slope)
            out[m] = ((np.arange(seeds) + 0.5) / seeds < p).astype(np.float64)
        return out

    return train, asked


@pytest.mark.parametrize("m50", [6.5, 12.2, 35.0])
def test_the_logistic_search_locates_a_planted_m50_with_the_analysiss_fit(m50):
    train, asked = planted_outcomes(m50)
    rounds = search(train, 0.5, AdaptiveConfig(m=(2, 4, 8), grow=3, per_round=3, statistic="exact_logistic"))
    last = rounds[-1].bracket
    assert last.status == DONE and last.lo <= last.estimate < last.hi
    assert last.estimate == pytest.approx(m50, rel=0.1)
    assert last.hi / last.lo <= 1.1 or last.hi - last.lo == 1
    assert len(asked) == len(set(asked)) and max(asked) <= 4 * m50  # no cell far past it


def test_the_logistic_bracket_censors_and_reports_the_fit():
    cfg = AdaptiveConfig(m=(2, 4), statistic="exact_logistic")
    ones, zeros = np.ones(5), np.zeros(5)
    assert fitted({2: ones, 4: ones}, cfg).status == CENSORED_ABOVE
    assert fitted({2: zeros, 4: zeros}, cfg).status == CENSORED_BELOW
    b = fitted({4: ones, 8: np.array([1.0, 1, 1, 0]), 16: zeros}, cfg)
    assert (b.lo, b.hi, b.status) == (8, 16, "") and 8 <= b.estimate < 16
    from counting.analysis.exactness import logistic_rows

    rows = [{"task": "qc", "d": 8, "m": m, "worst": w, "accuracy": 1.0}
            for m, ws in ((4, ones), (8, [1.0, 1, 1, 0]), (16, zeros)) for w in ws]
    assert b.estimate == pytest.approx(logistic_rows(rows)[0][0]["m_thr"])  # the analysis's m_50


def test_the_share_statistic_and_a_replay_on_a_fixed_grid():
    records = [{"metrics": {"accuracy": 1.0}, "halving": {"promoted": p}} for p in (True, True, True, False)]
    assert cell_statistic(records, "exact_share", [1.0, 0.995, 0.9, 1.0]) == pytest.approx(2 / 3)
    assert list(cell_statistic(records, "exact_logistic", [1.0, 0.995, 0.9, 1.0])) == [1.0, 1.0, 0.0]
    assert inside(8, 16, 3, True, {8, 16}, allowed=(2, 8, 9, 10, 12, 16)) == [9, 10, 12]
    train, asked = planted(11)
    grid = (2, 3, 4, 6, 8, 10, 12, 16)
    rounds = search(lambda ms: train([m for m in ms if m in grid]), 0.9, AdaptiveConfig(m=(2, 4), grow=3), allowed=grid)
    assert set(asked) <= set(grid) and (rounds[-1].bracket.lo, rounds[-1].bracket.hi) == (10, 12)
