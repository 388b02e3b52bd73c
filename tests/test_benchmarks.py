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
