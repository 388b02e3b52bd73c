"""The committed reference results reproduce: rerunning one cohort of results/quick (the
README's main job) from its command gives its rows of table.csv exactly, on the same kind of
machine and the same library versions (the record's `versions` and `layout` say which)."""

import csv
from pathlib import Path

import pytest

from counting.aggregate import aggregate
from counting.cli import compose
from counting.cli.train import plan_job
from counting.fingerprint import code_fingerprint
from counting.runner import execute_many

COMMITTED = Path(__file__).parents[1] / "results" / "quick" / "table.csv"


@pytest.mark.slow
def test_a_committed_reference_cohort_reproduces_exactly(tmp_path):
    with COMMITTED.open() as f:
        committed = {r["hash"]: r for r in csv.DictReader(f) if r["d"] == "4"}
    assert committed, "results/quick/table.csv has no d = 4 cohort"
    prints = {r.get("fingerprint") for r in committed.values()}
    assert prints == {code_fingerprint()}, (
        "results/quick was trained by other code than this: regenerate it with "
        "`counting-train -m experiment=quick` (rerun=stale retrains it) and commit the table")
    job = plan_job(compose(["experiment=quick", "model.d=4", f"results_dir={tmp_path}"]))
    report = execute_many(job.members, show_progress=False)
    assert len(report.trained) == len(committed) and not report.failed
    _, rows = aggregate(tmp_path, "quick")
    for row in rows:
        ref = committed[row["hash"]]
        for column in ("accuracy", "baseline_accuracy", "loss", "steps", "status"):
            assert str(row[column]) == ref[column], (row["m"], row["seed"], column)


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
