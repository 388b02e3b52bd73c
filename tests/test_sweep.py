"""Sweeps: experiment configs, resumable multirun, the results table, failures."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import counting.sweep.cohort
from counting.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from counting.store import read_record
from counting.store.aggregate import aggregate
from counting.sweep.plan import expand
from counting.sweep.runner import execute_many, folder_of

EXPERIMENTS = sorted(p.stem for p in (Path(__file__).parents[1] / "experiments").glob("*.yaml"))
TINY = ["task.n=4", "task.eval_size=64", "train.steps=20", "train.eval_every=10", "train.batch=16",
        "model.w=16", "cohort.m=[2,4]", "cohort.seed=[0]"]


def sweep(tmp_path, *args, **kw):
    cmd = [sys.executable, "-m", "counting.cli.train", "-m", f"results_dir={tmp_path / 'results'}",
           f"hydra.sweep.dir={tmp_path / 'multirun'}", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, **kw)


def records(root: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in root.glob("runs/*/record.json")}


def test_every_study_has_an_experiment_config_with_its_command():
    assert {"quick", "phase_qc", "phase_mfe", "phase_histogram", "phase_n", "phase_width", "ood_length",
            "ood_vocab"} <= set(EXPERIMENTS)
    for name in EXPERIMENTS:
        text = (Path(__file__).parents[1] / "experiments" / f"{name}.yaml").read_text()
        if name.endswith("_base"):  # shared protocol, included by others
            continue
        app = "counting-llm" if name.startswith("llm_") else "counting-train"
        head = text.split("defaults:")[0]
        assert f"{app} -m experiment={name}" in head or f"{app} experiment={name}" in head, name


@pytest.mark.slow
def test_phase_experiments_load_and_every_cell_validates():
    """Every cell of the phase experiments' sweeps composes into a valid job (config fields,
    cohort axes, analysis, one member fits in memory), with the shared stop rule."""
    from omegaconf import OmegaConf

    from counting.experiment import compose, plan_job

    for name in ("phase_qc", "phase_mfe", "phase_histogram", "phase_n", "phase_width"):
        params = compose([f"experiment={name}"], return_hydra_config=True).hydra.sweeper.params
        axes = {k: str(v).split(",") for k, v in params.items()}
        cells = [dict(zip(axes, combo)) for combo in __import__("itertools").product(*axes.values())]
        assert cells, name
        for cell in cells:
            raw = compose([f"experiment={name}", *(f"{k}={v}" for k, v in cell.items())])
            job = plan_job(raw)
            assert job.cfg.train.stop.active and job.cfg.train.stop.target == 0.99
            assert len(job.members) >= 18 and OmegaConf.to_container(raw.analysis)["budgets"]


@pytest.mark.slow
def test_sweep_survives_sigkill_and_resumes_without_retraining(tmp_path):
    args = ["experiment=quick", *TINY, "model.d=4,8", "model.pos=sinusoidal", "ood.n=[4,6]"]
    proc = sweep(tmp_path, *args)
    root = tmp_path / "results" / "quick"
    deadline = time.time() + 240
    while time.time() < deadline and len(records(root)) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = records(root)
    assert 2 <= len(first) < 4, "the kill should land mid-sweep"
    stamps = {h: (root / "runs" / h / "record.json").stat().st_mtime_ns for h in first}

    again = sweep(tmp_path, *args)
    out, _ = again.communicate(timeout=600)
    assert again.returncode == 0, out
    final = records(root)
    assert len(final) == 4 and all(r["status"] == "complete" for r in final.values())
    for h, stamp in stamps.items():  # finished cells were not retrained
        assert (root / "runs" / h / "record.json").stat().st_mtime_ns == stamp
    with open(root / "table.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 4 and len({r["hash"] for r in table}) == 4
    assert {"task", "d", "m", "n", "k", "L", "H", "w", "pos", "seed", "lr", "steps", "accuracy",
            "baseline_accuracy", "status"} <= set(table[0])
    assert {r["d"] for r in table} == {"4", "8"}
    assert "sweep quick: 4 models of this sweep, 0 failed" in out
    # The sweep ends with out-of-distribution evaluation, the analysis and the figures.
    for name in ("cells.csv", "thresholds.csv", "fit.csv", "counts.csv", "ood.csv"):
        assert (root / name).stat().st_size > 0, name
    with open(root / "ood.csv") as f:
        assert sorted({r["eval_n"] for r in csv.DictReader(f)}) == ["4", "6"]
    for name in ("phase_diagram", "accuracy_vs_m", "threshold_vs_d", "accuracy_per_count", "ood_length"):
        for ext in ("png", "pdf"):
            assert (root / "figures" / f"{name}.{ext}").stat().st_size > 1000, (name, ext)
    assert "figures (PNG + PDF)" in out


@pytest.mark.slow
def test_a_failing_cell_does_not_stop_the_others(tmp_path, monkeypatch):
    base = RunConfig(task=TaskConfig(name="qc", m=4, n=4, eval_size=64), model=ModelConfig(d=8, w=16),
                     train=TrainConfig(steps=10, batch=16, eval_every=10), results_dir=str(tmp_path), experiment="f")
    other_d = RunConfig.from_dict({**base.to_dict(), "model": {**base.to_dict()["model"], "d": 4}})
    cfgs = expand(base, {"seed": [0, 1]}) + expand(other_d, {"seed": [0, 1]})
    real = counting.sweep.cohort.train_cohort

    def flaky(members, *a, **kw):
        if members[0].model.d == 8:
            raise FloatingPointError("injected failure")
        return real(members, *a, **kw)

    monkeypatch.setattr(counting.sweep.cohort, "train_cohort", flaky)
    report = execute_many(cfgs, show_progress=False)
    assert len(report.failed) == 2 and len(report.trained) == 2
    assert "injected failure" in report.summary()
    failed = read_record(folder_of(cfgs[0]))
    assert failed["status"] == "failed" and "FloatingPointError" in failed["traceback"]
    _, rows = aggregate(tmp_path, "f")
    assert sorted(r["status"] for r in rows) == ["complete", "complete", "failed", "failed"]

    monkeypatch.setattr(counting.sweep.cohort, "train_cohort", real)  # the fixed code retrains only the failed
    again = execute_many(cfgs, show_progress=False)
    assert len(again.trained) == 2 and len(again.skipped) == 2


@pytest.mark.slow  # a sweep in a subprocess
def test_a_sweep_reusing_a_sweep_folder_is_judged_on_its_own_cells(tmp_path):
    """An abandoned invocation's manifest in the same hydra.sweep.dir (cells it asked for and
    never finished) is set aside: the new sweep reports only its own cells."""
    from counting.cli.manifest import MANIFEST, sweep_cells

    (tmp_path / "multirun").mkdir()
    (tmp_path / "multirun" / MANIFEST).write_text(json.dumps({"job": 0, "hashes": ["0123456789abcdef"]}) + "\n")
    proc = sweep(tmp_path, "experiment=quick", *TINY, "model.d=4", "analysis.budgets=[]", "families.size=0",
                 "after=[aggregate]")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-2000:]
    assert "no record" not in out
    mine = sweep_cells(str(tmp_path / "multirun"))
    assert mine and "0123456789abcdef" not in mine and mine <= set(records(tmp_path / "results" / "quick"))
    assert (tmp_path / "multirun" / (MANIFEST + ".previous")).exists()
