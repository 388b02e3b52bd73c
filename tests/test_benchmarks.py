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
                           "--arms", "off", "exact", "--cache", "warm", "--out", str(out)],  # the suite's cache: no
                          capture_output=True, text=True, timeout=900)  # arm compiles what another test compiled
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = json.loads(out.read_text())
    assert row["cache"] == "warm" and row["paid_off"] >= row["paid_exact"] >= row["useful"] > 0
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


def test_rank_agreement_reads_each_rung_from_the_metrics(tmp_path):
    """benchmarks/compute.py's rank agreement on a planted full grid: two settings whose ranking
    flips after a third of the budget agree at 2/3 (rho 1) and disagree at 1/9 (rho -1); the cell's
    best setting survives a rung only where the ranking has flipped."""
    sys.path.insert(0, str(BENCH.parent))
    from compute import rank_agreement

    rows = []
    for i, (lr, early, late, acc) in enumerate([(0.001, 1.0, 0.1, 0.99), (0.01, 0.5, 0.9, 0.5)]):
        folder = tmp_path / "full" / "runs" / f"h{i}"
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps({"train": {"steps": 900}}))
        points = [{"step": s, "loss": early if s < 300 else late} for s in range(100, 901, 100)]
        (folder / "metrics.jsonl").write_text("".join(json.dumps(p) + "\n" for p in points))
        rows.append({"hash": f"h{i}", "m": 4, "lr": lr, "weight_decay": 0.0, "accuracy": acc})
    out = rank_agreement(tmp_path / "full", rows, eta=2)
    assert out["0.111"]["spearman"] == pytest.approx(-1) and out["0.667"]["spearman"] == pytest.approx(1)
    assert (out["0.111"]["best_survives"], out["0.667"]["best_survives"], out["0.667"]["cells"]) == (0, 1, 1)


def test_the_support_search_replay_reads_the_dense_grids_cells(tmp_path):
    """benchmarks/compute.py support_search --replay on a planted dense table: P(exact) falls from 1
    to 0 between m = 9 and 12; both statistics locate it inside the grid from fewer cells (and fewer
    model-steps) than the grid, the dense estimates are the analysis's (the logistic m_50 of
    exact_fit.csv), and a demoted setting's models count in the steps but not in the outcomes."""
    import csv

    sys.path.insert(0, str(BENCH.parent))
    from compute import support_search

    from counting.analysis.exactness import logistic_rows

    exact = {2: 5, 3: 5, 4: 5, 6: 5, 8: 5, 9: 4, 10: 3, 11: 2, 12: 1, 14: 0, 16: 0}  # exact seeds of 5
    rows = [{"task": "qc", "d": 8, "m": m, "seed": s, "lr": lr, "accuracy": 1.0, "steps": 1000 * m,
             "promoted": lr == 0.001, "worst": 1.0 if lr == 0.001 and s < k else 0.5}
            for m, k in exact.items() for s in range(5) for lr in (0.001, 0.01)]
    path = tmp_path / "table.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (row,) = support_search([8], False, str(path), replay=True)
    assert row["dense_model_steps"] == sum(2 * 5 * 1000 * m for m in exact)
    assert row["dense_estimates"]["exact_logistic"] == pytest.approx(logistic_rows(rows)[0][0]["m_thr"])
    assert row["dense_estimates"]["exact_share"] == pytest.approx(10.0 * (11 / 10) ** 0.5, rel=1e-6)  # 0.6 -> 0.4
    for statistic in ("exact_share", "exact_logistic"):
        arm = row[statistic]
        assert set(arm["cells"]) < set(exact) and arm["model_steps"] < row["dense_model_steps"]
        assert arm["status"] == "located" and 8 <= arm["estimate"] <= 14 and arm["steps_ratio"] > 1


def test_the_timeline_attributes_each_cached_program_to_the_tests_running_when_it_appeared(tmp_path, capsys):
    """benchmarks/timeline.py --cache: a program written while one test ran is that test's file's;
    one written while two ran is shared between them; single eager jax operations are told from
    the suite's own programs by their names."""
    sys.path.insert(0, str(BENCH.parent))
    from timeline import compiles, is_eager_op, op_name

    assert op_name("jit_broadcast_in_dim-4f3a") == "broadcast_in_dim" and is_eager_op("broadcast_in_dim")
    assert is_eager_op(op_name("jit__truncated_normal-1b")) and not is_eager_op(op_name("jit__forward-9c"))
    timeline, cache = tmp_path / "timeline", tmp_path / "cache"
    timeline.mkdir()
    cache.mkdir()
    (timeline / "gw0.jsonl").write_text(json.dumps(["tests/test_a.py::t", 100.0, 110.0]) + "\n")
    (timeline / "gw1.jsonl").write_text(json.dumps(["tests/test_b.py::t", 105.0, 120.0]) + "\n")
    for name, t in (("jit_add-1", 101.0), ("jit__forward-2", 102.0), ("jit_multiply-3", 107.0), ("jit_exp-4", 108.0),
                    ("jit_sample-5", 115.0)):
        (cache / name).write_bytes(b"")
        os.utime(cache / name, (t, t))
    compiles(timeline, cache)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "5 programs in the cache, 3 of them single eager jax operations"
    assert out[2].split() == ["3", "2", "tests/test_a.py"]  # add, _forward, half of multiply and of exp
    assert out[3].split() == ["2", "1", "tests/test_b.py"]  # sample, half of multiply and of exp


@pytest.mark.slow
def test_the_compile_profile_records_every_process_and_sums_compiles_by_program_and_test(tmp_path, capsys, monkeypatch):
    """benchmarks/compile_profile.py: a process the recorded command starts reports its compiles
    with the test it ran under; the summary counts loads from the cache (short events) apart."""
    sys.path.insert(0, str(BENCH.parent))
    from compile_profile import record, summary

    child = "import jax, jax.numpy as jnp; jax.jit(lambda x: jnp.sin(x) * 2)(jnp.ones(3))"
    cmd = [sys.executable, "-c", f"import subprocess, sys; subprocess.check_call([sys.executable, '-c', {child!r}])"]
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "tests/test_x.py::t (call)")
    assert record(tmp_path, cmd) == 0
    rows = [json.loads(line) for p in (tmp_path / "events").glob("*.jsonl") for line in p.open()]
    assert "jit(<lambda>)" in {r[0] for r in rows}, rows  # the grandchild's program, recorded
    assert {r[2] for r in rows} == {"tests/test_x.py::t (call)"}
    planted = tmp_path / "planted" / "events"
    planted.mkdir(parents=True)
    (planted / "1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in (
        ["jit(local)", 9.0, "tests/test_a.py::u (call)"], ["jit(local)", 0.01, "tests/test_b.py::v (call)"],
        ["jit(sample)", 1.5, "tests/test_a.py::w (call)"])))
    summary(planted.parent)
    out = capsys.readouterr().out
    assert out.startswith("3 compile events: 2 compiles (10.5 s), 1 shorter than 0.3 s")
    assert "| 9.0 | 1 | local |" in out and "| 10.5 | 2 | tests/test_a.py |" in out
