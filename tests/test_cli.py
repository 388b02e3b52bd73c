import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import counting.cli.train
from counting.config import RunConfig
from counting.store.record import load_params
from counting.tasks import make_task
from counting.training.train import init_state

TINY_ARGS = ["task.m=2", "task.n=4", "task.eval_size=256", "model.d=8", "model.w=16",
             "train.steps=20", "train.eval_every=10", "train.batch=16"]


def cli(tmp_path, *args):
    cmd = [sys.executable, "-m", "counting.cli.train", f"results_dir={tmp_path / 'results'}",
           f"hydra.run.dir={tmp_path / 'hydra'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def train_in_process(monkeypatch, tmp_path, *args) -> int:
    """counting-train in this process, as from a shell: its exit status (stdout/stderr go to capsys)."""
    argv = ["counting-train", f"results_dir={tmp_path / 'results'}", f"hydra.run.dir={tmp_path / 'hydra'}",
            "hydra/job_logging=none", "hydra/hydra_logging=none", *args]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_:
        counting.cli.train.main()
    return exit_.value.code


@pytest.mark.slow
def test_cli_writes_a_complete_record_and_skips_it_next_time(tmp_path):
    out = cli(tmp_path, *TINY_ARGS)
    assert out.returncode == 0, out.stderr
    line = [l for l in out.stdout.splitlines() if l.startswith("record: ")][-1]
    record_path = tmp_path / "results" / "default" / "runs" / line.split("/runs/")[1].split("/")[0] / "record.json"
    record = json.loads(record_path.read_text())
    folder = record_path.parent
    assert record["status"] == "complete" and record["steps"] == 20
    assert {"accuracy", "baseline_accuracy", "accuracy_per_count", "param_norms", "loss"} <= set(record["metrics"])
    assert record["seed"] == 0 and record["compile_s"] > 0 and record["wall_s"] > 0
    assert {"jax", "flax", "optax", "numpy"} <= set(record["versions"])
    assert json.loads((folder / "config.json").read_text()) == record["config"]
    rows = [json.loads(l) for l in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 20]
    assert not list(folder.glob(".*.tmp"))

    cfg = RunConfig.from_dict(record["config"])
    assert cfg.hash() == record["hash"] == folder.name
    _, state, _ = init_state(cfg, make_task(cfg.task))
    params = load_params(folder, state.params)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(params))

    mtime = record_path.stat().st_mtime_ns
    again = cli(tmp_path, *TINY_ARGS)
    assert again.returncode == 0 and record_path.stat().st_mtime_ns == mtime  # finished: not retrained


@pytest.mark.parametrize(
    "override,field",
    [
        ("task.name=count", "task.name"),
        ("task.m=1", "task.m"),
        ("task.n=0", "task.n"),
        ("model.d=0", "model.d"),
        ("model.H=3", "model.d"),
        ("task.k=3", "task.k"),
        ("train.steps=-5", "train.steps"),
        ("model.pos=alibi", "model.pos"),
        ("task.sampler=zipf", "task.sampler"),
        ("ood.n=[0,8]", "ood.n"),
        ("analysis.tau=1.5", "analysis.tau"),
    ],
)
def test_invalid_input_is_one_line_and_exit_2(monkeypatch, capsys, tmp_path, override, field):
    assert train_in_process(monkeypatch, tmp_path, *TINY_ARGS, override) == 2
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {field}:"), out.err
    assert "Traceback" not in out.err + out.out
    assert not (tmp_path / "results").exists()  # nothing ran


@pytest.mark.slow
def test_invalid_input_from_a_shell_is_one_line_and_exit_2(tmp_path):
    """The same through a real process: no traceback, nothing written."""
    out = cli(tmp_path, *TINY_ARGS, "task.m=1")
    assert out.returncode == 2 and out.stderr.strip().startswith("error: task.m:"), out.stderr
    assert "Traceback" not in out.stderr + out.stdout and not (tmp_path / "results").exists()


@pytest.mark.slow
def test_a_sweep_job_in_a_fresh_process_gets_the_cpu_devices(tmp_path):
    """The local submitit launcher runs a job as SLURM does (the pickled task function in a
    fresh process): the job itself must give JAX its CPU devices."""
    env = {**{k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}, "COUNTING_CPU_DEVICES": "2"}
    cmd = [sys.executable, "-m", "counting.cli.train", "-m", "hydra/launcher=submitit_local", *TINY_ARGS,
           "cohort.seed=[0,1]", "after=[aggregate]", f"results_dir={tmp_path / 'results'}",
           f"hydra.sweep.dir={tmp_path / 'multirun'}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    records = [json.loads(p.read_text()) for p in (tmp_path / "results").glob("*/runs/*/record.json")]
    assert len(records) == 2 and all(r["layout"]["devices"] == 2 for r in records), [r.get("layout") for r in records]
