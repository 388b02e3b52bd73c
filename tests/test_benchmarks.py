"""The benchmarks run on today's driver and fail loudly: benchmarks/cohort.py at its tiny size,
every mode, and a non-zero exit when a mode breaks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[1] / "benchmarks" / "cohort.py"


def run(tmp_path, *args, env=None):
    return subprocess.run([sys.executable, str(BENCH), "--configs", "tiny", "--repeats", "1", *args],
                          capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})


@pytest.mark.slow
def test_the_cohort_benchmark_runs_every_mode_at_a_tiny_size(tmp_path):
    out = tmp_path / "bench.json"
    proc = run(tmp_path, "--modes", "single", "cohort", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())
    medians = {r["mode"]: r for r in rows if r["repeat"] == "median"}
    assert set(medians) == {"single", "cohort"}
    for r in medians.values():
        assert r["model_steps_per_s"] > 0 and r["models"] == 2 and r["steps"] == 20
    assert "cohort/single" in proc.stdout


def test_a_broken_mode_makes_the_benchmark_exit_non_zero(tmp_path):
    proc = run(tmp_path, "--modes", "cohort", env={"COUNTING_CPU_DEVICES": "none"})
    assert proc.returncode == 1
    assert "tiny cohort failed" in proc.stderr and "FAILED: tiny cohort" in proc.stderr


@pytest.mark.slow
def test_the_compaction_benchmark_measures_its_arms_at_a_tiny_size(tmp_path):
    """benchmarks/compute.py compaction --tiny: every arm trains, model-steps add up (each arm
    pays at least what its members used, compaction never more than without it)."""
    out = tmp_path / "compute.json"
    proc = subprocess.run([sys.executable, str(BENCH.parent / "compute.py"), "compaction", "--tiny", "--d", "8",
                           "--arms", "off", "exact", "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = json.loads(out.read_text())
    assert row["paid_off"] >= row["paid_exact"] >= row["useful"] > 0
    assert row["ideal_speedup"] >= 1 and row["train_s_off"] > 0 and row["train_s_exact"] > 0
    assert "compaction d=8 exact" in proc.stdout and "ideal" in proc.stdout


@pytest.mark.slow
def test_the_search_benchmark_compares_both_arms_at_a_tiny_size(tmp_path):
    out = tmp_path / "compute.json"
    proc = subprocess.run([sys.executable, str(BENCH.parent / "compute.py"), "search", "--tiny", "--d", "4",
                           "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = json.loads(out.read_text())
    assert set(row["adaptive_best_accuracy"]) <= set(row["fine_best_accuracy"]) == {"2", "3", "4", "5", "6", "8"}
    assert row["fine_model_steps"] > row["adaptive_model_steps"] > 0 and "best model per m" in proc.stdout
