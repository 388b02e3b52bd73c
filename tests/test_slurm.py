"""Integration: a tiny sweep submitted through the slurm launcher preset to a real SLURM
cluster (`scripts/local-slurm start`; .ci/run starts one). Skipped where none runs, except
under CI, where a missing cluster is a failure."""

import csv
import os
import shutil
import subprocess
import sys

import pytest


def cluster_up() -> bool:
    if not shutil.which("sinfo"):
        return False
    out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
    return out.returncode == 0 and any(s in out.stdout for s in ("idle", "mix", "alloc"))


@pytest.mark.slow
def test_sweep_through_the_slurm_preset(tmp_path):
    if not cluster_up():
        if os.environ.get("CI"):
            pytest.fail("no SLURM cluster is running: .ci/run must start scripts/local-slurm")
        pytest.skip("no SLURM cluster running (scripts/local-slurm start)")
    cmd = [sys.executable, "-m", "counting.cli.train", "-m", "experiment=quick", "hydra/launcher=slurm",
           "hydra.launcher.cpus_per_task=1", "task.n=4", "task.eval_size=64", "train.steps=20",
           "train.eval_every=10", "train.batch=16", "model.w=16", "cohort.m=[2,4]", "cohort.seed=[0]",
           "model.d=4,8", "after=[aggregate]", f"results_dir={tmp_path / 'results'}",
           f"hydra.sweep.dir={tmp_path / 'multirun'}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "sweep quick: 4 models of this sweep, 0 failed" in out.stdout
    with open(tmp_path / "results" / "quick" / "table.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and {r["status"] for r in rows} == {"complete"}
    assert {(r["d"], r["m"]) for r in rows} == {("4", "2"), ("4", "4"), ("8", "2"), ("8", "4")}
    scripts = list((tmp_path / "multirun" / ".submitit").glob("*/*_submission.sh"))
    assert scripts, "the sweep went through sbatch"
    text = scripts[0].read_text()
    assert "#SBATCH --array=0-1" in text and "XLA_PYTHON_CLIENT_PREALLOCATE=false" in text
    logs = list((tmp_path / "multirun" / ".submitit").glob("*/*_log.out"))
    assert len(logs) == 2
