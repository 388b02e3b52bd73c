import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from counting.config import RunConfig
from counting.record import load_params
from counting.tasks import make_task
from counting.train import init_state

TINY_ARGS = ["task.m=2", "task.n=4", "task.eval_size=256", "model.d=8", "model.w=16",
             "train.steps=20", "train.eval_every=10", "train.batch=16"]


def cli(tmp_path, *args):
    cmd = [sys.executable, "-m", "counting.cli.train", f"results_dir={tmp_path / 'results'}",
           f"hydra.run.dir={tmp_path / 'hydra'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


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
def test_invalid_input_is_one_line_and_exit_2(tmp_path, override, field):
    out = cli(tmp_path, *TINY_ARGS, override)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {field}:"), out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert not (tmp_path / "results").exists()  # nothing ran
