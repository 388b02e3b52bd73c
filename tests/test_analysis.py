"""The threshold finder recovers planted thresholds from synthetic tables."""

import csv
import math

import numpy as np
import pytest

from counting.analysis import threshold
from counting.analysis.analyze import analyze, write
from counting.cli.analyze import main as analyze_cli
from counting.config import AnalysisConfig, ConfigError
from counting.store.columns import read_table

M_GRID = [2, 4, 8, 16, 32, 64, 128]
TAU = 0.9


def curve(m, m_star, width=0.6, lo=0.25, hi=1.0):
    """A logistic accuracy curve in log m that crosses TAU exactly at m = m_star."""
    # acc = lo + (hi - lo) / (1 + exp((log m - mu) / width)); solve acc(m_star) = TAU for mu.
    mu = math.log(m_star) - width * math.log((hi - TAU) / (TAU - lo))
    return lo + (hi - lo) / (1.0 + math.exp((math.log(m) - mu) / width))


def synthetic(tmp_path, planted, seeds=5, noise=0.01, drop=(), overrides=None, rng_seed=0):
    """A table.csv with accuracy = curve + Gaussian noise per seed; `drop` removes cells
    (d, m) or single runs (d, m, seed); `overrides` sets whole curves {d: {m: acc}}."""
    rng = np.random.default_rng(rng_seed)
    path = tmp_path / "table.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["task", "d", "m", "n", "k", "seed", "accuracy", "baseline_accuracy", "status"])
        w.writeheader()
        for d, m_star in planted.items():
            for m in M_GRID:
                for s in range(seeds):
                    if (d, m) in drop or (d, m, s) in drop:
                        continue
                    given = (overrides or {}).get(d, {})
                    mean = given[m] if m in given else curve(m, m_star)
                    acc = float(np.clip(mean + noise * rng.standard_normal(), 0.0, 1.0))
                    w.writerow({"task": "qc", "d": d, "m": m, "n": 32, "k": m, "seed": s, "accuracy": acc,
                                "baseline_accuracy": 1 / 32, "status": "complete"})
        w.writerow({"task": "qc", "d": 4, "m": 2, "n": 32, "k": 2, "seed": 99, "accuracy": "",
                    "baseline_accuracy": "", "status": "failed"})  # failed runs are ignored
    return path


def thresholds(path, method="interpolated", **cfg):
    result = analyze(read_table(path), AnalysisConfig(tau=TAU, boot=200, **cfg))
    return {r["d"]: r for r in result.threshold_rows if r["method"] == method}, result


@pytest.mark.parametrize("method,tol", [("interpolated", 0.2), ("logistic", 0.1)])  # grid step: log 2 = 0.69
def test_recovers_planted_thresholds_and_slope_one(tmp_path, method, tol):
    planted = {d: 1.41 * d for d in (4, 8, 16, 32)}  # m_thr proportional to d: the paper's law
    rows, result = thresholds(synthetic(tmp_path, planted, seeds=8, noise=0.02), method)
    for d, m_star in planted.items():
        r = rows[d]
        assert abs(math.log(r["m_thr"] / m_star)) < tol, (d, r)
        assert r["m_thr_low"] <= r["m_thr"] <= r["m_thr_high"] and r["censored"] == ""
    fit = [f for f in result.fit_rows if f["method"] == method][0]
    assert abs(fit["slope"] - 1.0) < 0.05 and fit["slope_one_inside"]
    assert fit["slope_low"] < fit["slope"] < fit["slope_high"]


def test_a_planted_slope_of_one_half_excludes_one(tmp_path):
    planted = {d: 2 * d**0.5 for d in (4, 16, 64, 256)}
    _, result = thresholds(synthetic(tmp_path, planted, seeds=8))
    fit = [f for f in result.fit_rows if f["method"] == "interpolated"][0]
    assert abs(fit["slope"] - 0.5) < 0.08 and not fit["slope_one_inside"]


def test_missing_cells_and_runs(tmp_path):
    planted = {8: 11.0, 16: 22.0}
    drop = {(8, 16), (16, 4), (16, 32, 0), (16, 32, 1)}  # whole cells and single seeds
    rows, result = thresholds(synthetic(tmp_path, planted, drop=drop))
    assert abs(math.log(rows[16]["m_thr"] / 22)) < 0.2
    # d = 8 has no m = 16 cell: the crossing lies between m = 8 (passes) and m = 32 (fails).
    assert 8 <= rows[8]["m_thr"] <= 32
    assert rows[8]["grid_m"] == "2 4 8 32 64 128"
    seeds = {(c.d, c.m): len(c.acc_S) for c in result.cells}
    assert seeds[(16, 32)] == 3 and (16, 4) not in seeds


def test_non_monotone_curve_uses_the_first_crossing(tmp_path):
    # Falls below tau after m = 8, then a spurious recovery at m = 64.
    bump = {2: 1.0, 4: 0.98, 8: 0.95, 16: 0.5, 32: 0.4, 64: 0.97, 128: 0.3}
    rows, _ = thresholds(synthetic(tmp_path, {8: 8.0}, noise=0.0, overrides={8: bump}))
    x = math.log(8) + (0.95 - TAU) / (0.95 - 0.5) * (math.log(16) - math.log(8))
    assert rows[8]["m_thr"] == pytest.approx(math.exp(x), rel=1e-4)


def test_every_m_passes_or_fails_is_censored_and_left_out_of_the_fit(tmp_path):
    passes = {m: 0.99 for m in M_GRID}
    fails = {m: 0.3 for m in M_GRID}
    planted = {4: 1.0, 8: 11.0, 16: 22.0, 32: 1.0}  # d = 4 and 32: curves overridden
    rows, result = thresholds(synthetic(tmp_path, planted, overrides={4: fails, 32: passes}))
    assert rows[32]["censored"] == "above" and rows[32]["m_thr"] == max(M_GRID)
    assert rows[4]["censored"] == "below" and rows[4]["m_thr"] == min(M_GRID)
    fit = [f for f in result.fit_rows if f["method"] == "interpolated"][0]
    assert fit["d_values"] == "8 16" and abs(fit["slope"] - 1.0) < 0.15
    logistic_rows, _ = thresholds(synthetic(tmp_path, planted, overrides={4: fails, 32: passes}), "logistic")
    assert 4 not in logistic_rows and 32 not in logistic_rows  # no crossing: the curve does not allow a fit


def test_interpolation_is_exact_on_a_hand_computed_curve():
    m_K = np.array([2, 4, 8, 16])
    acc_RxK = np.array([[1.0, 1.0, 0.8, 0.2], [0.5, 0.4, 0.3, 0.2], [1.0, 1.0, 1.0, 0.95]])
    m_thr_R, censored_R = threshold.interpolated(m_K, acc_RxK, 0.9)
    assert m_thr_R[0] == pytest.approx(4 * 2**0.5)  # halfway from 1.0 to 0.8 in log m
    assert list(censored_R) == ["", "below", "above"]


def test_logistic_fit_recovers_its_own_parameters():
    m_K = np.array(M_GRID, float)
    acc_1xK = np.array([[curve(m, 20.0) for m in m_K]])
    assert threshold.logistic(m_K, acc_1xK, TAU)[0] == pytest.approx(20.0, rel=0.03)


def test_outputs_and_cli(tmp_path, capsys):
    path = synthetic(tmp_path, {4: 4.0, 8: 8.0, 16: 16.0})
    analyze_cli(["--table", str(path), "--boot", "100"])
    assert "slope 1 inside" in capsys.readouterr().out
    with open(tmp_path / "thresholds.csv") as f:
        header = next(csv.reader(f))
    assert {"d", "m_thr", "m_thr_low", "m_thr_high", "method"} <= set(header)
    assert (tmp_path / "cells.csv").exists() and (tmp_path / "fit.csv").exists()
    with pytest.raises(SystemExit) as bad:
        analyze_cli(["--table", str(path), "--tau", "1.5"])
    assert bad.value.code == 2 and capsys.readouterr().err.strip() == "error: analysis.tau: must be in (0, 1), got 1.5"
    with pytest.raises(SystemExit) as missing:
        analyze_cli(["nope", "--results-dir", str(tmp_path)])
    assert missing.value.code == 2 and capsys.readouterr().err.startswith("error: table:")


def test_cells_carry_bootstrap_intervals_and_baseline(tmp_path):
    _, result = thresholds(synthetic(tmp_path, {8: 8.0}, noise=0.05))
    for r in result.cell_rows:
        assert r["accuracy_low"] <= r["accuracy"] <= r["accuracy_high"]
        assert r["baseline_accuracy"] == pytest.approx(1 / 32) and r["seeds"] == 5
    write(result, tmp_path / "out")
    assert (tmp_path / "out" / "cells.csv").read_text().startswith("task,n,d,m,seeds,accuracy")


def test_analysis_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="analysis.boot"):
        AnalysisConfig(boot=1)
