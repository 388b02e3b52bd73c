"""The committed reference results reproduce, honestly, on any CPU: `counting-reproduce`
(counting.experiment.reproduce) retrains the first cell of a committed experiment into a
temporary folder and compares it with the committed table: exactly where the committed rows
were trained by the same code on the same kind of machine with the same jax/jaxlib and layout,
within the stated tolerance elsewhere. The test retrains results/quick_tiny (the README's main
job shrunk to two models; `counting-reproduce quick` checks the main job itself)."""

import csv
from pathlib import Path

import pytest

from counting.experiment.reproduce import (
    DIFFERS,
    EXACT,
    MISSING,
    WITHIN,
    compare,
    compare_thresholds,
    reproduce,
    same_kind,
)
from counting.runtime import machine

COMMITTED = Path(__file__).parents[1] / "results" / "quick" / "table.csv"
REFERENCE = "quick_tiny"  # experiments/quick_tiny.yaml, committed in results/quick_tiny/


def row(h, acc, **kw):
    base = {"hash": h, "d": 4, "m": 2, "n": 16, "task": "qc", "seed": 0, "accuracy": acc, "baseline_accuracy": 0.1,
            "loss": 0.5, "steps": 100, "stop_reason": "budget", "status": "complete", "fingerprint": "f",
            "arithmetic": "cpu x86_64 avx2 X", "jaxlib": "0.10.2", "layout": "1 devices"}
    return {**base, **kw}


def test_the_comparison_is_exact_only_where_code_machine_libraries_and_layout_match():
    ok, _ = same_kind(row("a", 1.0), row("a", 1.0))
    assert ok
    for column, other in (("arithmetic", "cpu x86_64 avx512 Y"), ("jaxlib", "0.11.0"), ("fingerprint", "g"),
                          ("layout", "2 devices")):
        ok, why = same_kind(row("a", 1.0), row("a", 1.0, **{column: other}))
        assert not ok and column in why
    assert not same_kind(row("a", 1.0, arithmetic=""), row("a", 1.0))[0]  # an old table: not recorded


def test_an_optimisation_level_in_xla_flags_is_part_of_the_arithmetic(monkeypatch):
    """The tests compile at LLVM level 0 (tests/conftest.py): their records must not pass for
    ones of XLA's default level."""
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    default = machine.arithmetic()
    assert "xla_opt" not in default and not machine.label(default).endswith(" O0")
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2 --xla_backend_optimization_level=0")
    level0 = machine.arithmetic()
    assert level0 == {**default, "xla_opt": "0"} and machine.label(level0) == machine.label(default) + " O0"
    versions = machine.versions()
    assert not machine.same_arithmetic({"arithmetic": default, "versions": versions},
                                       {"arithmetic": level0, "versions": versions})
    assert not same_kind(row("a", 1.0, arithmetic=machine.label(default)),
                         row("a", 1.0, arithmetic=machine.label(level0)))[0]


def test_cell_verdicts_exact_within_tolerance_differs_and_missing():
    committed = [row("a", 0.9), row("b", 0.8, seed=1)]
    assert [c["verdict"] for c in compare(committed, [row("a", 0.9), row("b", 0.8, seed=1)])] == [EXACT]
    assert compare(committed, [row("a", 0.9), row("b", 0.81, seed=1)])[0]["verdict"] == DIFFERS  # same kind: bits
    other = {"arithmetic": "cpu x86_64 avx512 Y"}
    assert compare(committed, [row("a", 0.87, **other), row("b", 0.86, **other)])[0]["verdict"] == WITHIN
    assert compare(committed, [row("a", 0.5, **other), row("b", 0.6, **other)])[0]["verdict"] == DIFFERS
    assert compare(committed, [row("c", 0.9)])[0]["verdict"] == MISSING


def test_threshold_verdicts_use_the_widened_bootstrap_interval():
    committed = [{"d": 4, "task": "qc", "n": 16, "method": "interpolated", "m_thr": 10.0}]
    rerun = [{"d": 4, "task": "qc", "n": 16, "method": "interpolated", "m_thr": 12.0, "m_thr_low": 10.5,
              "m_thr_high": 13.0}]
    assert compare_thresholds(committed, rerun, ratio=0.1)[0]["verdict"] == WITHIN  # 10.5 / 1.1 = 9.5 <= 10
    assert compare_thresholds(committed, rerun, ratio=0.0)[0]["verdict"] == DIFFERS


@pytest.mark.slow
def test_a_committed_reference_reproduces_here(tmp_path):
    """Exact where this machine is of the kind that trained results/quick_tiny, within
    tolerance elsewhere; never 'differs' or 'missing'."""
    reference = COMMITTED.parents[1] / REFERENCE
    with (reference / "table.csv").open() as f:
        rows = list(csv.DictReader(f))
    out = reproduce(REFERENCE, work_dir=tmp_path, show_progress=False)
    print(out.report())
    assert out.cells and out.ok, out.report()
    assert all(c["verdict"] in (EXACT, WITHIN) for c in out.cells)
    here = machine.label(machine.arithmetic())
    same_machine = all(r.get("arithmetic") == here and r.get("jaxlib") == machine.versions()["jaxlib"] for r in rows)
    if same_machine:  # then only the code or the layout (the number of CPU devices) can make it statistical
        assert all(c["verdict"] == EXACT for c in out.cells if c["mode"] == "exact")
    assert len(out.cells) == 2 and out.thresholds  # m = 2 and 3, and the thresholds compared
    assert not any((reference / "runs").glob("*")), "the reference was written to"


@pytest.mark.slow
def test_figures_are_the_same_bytes_whatever_the_hash_seed(tmp_path):
    """counting-plot redraws results/quick from its committed tables; two runs under different
    PYTHONHASHSEED values (set iteration order) write byte-identical PNG and PDF files."""
    import os
    import shutil
    import subprocess
    import sys

    source = COMMITTED.parent
    outs = []
    for seed in ("1", "2"):
        root = tmp_path / seed / "quick"
        root.mkdir(parents=True)
        for name in ("table.csv", "counts.csv", "inspect.csv", "inspect_fit.csv"):
            shutil.copy(source / name, root / name)
        env = {**os.environ, "PYTHONHASHSEED": seed, "MPLBACKEND": "Agg"}
        run = subprocess.run([sys.executable, "-m", "counting.cli.plot", "quick", "--results-dir", str(tmp_path / seed)],
                             capture_output=True, text=True, env=env, timeout=300)
        assert run.returncode == 0, run.stderr
        outs.append({p.name: p.read_bytes() for p in sorted((root / "figures").iterdir())})
    assert len(outs[0]) >= 8 and outs[0].keys() == outs[1].keys()
    assert [name for name in outs[0] if outs[0][name] != outs[1][name]] == []
