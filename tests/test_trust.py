"""Results you can trust: stale records, rerun policies, corrupt folders, concurrent sweeps,
sweeps that judge themselves, every bad input before compute."""

import dataclasses
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tiny import TINY

from counting.config import ConfigError
from counting.experiment import compose, plan_job
from counting.store import PARAMS, RECORD, problem, read_record
from counting.store.aggregate import AggregateError, aggregate, failures
from counting.sweep.plan import expand
from counting.sweep.runner import execute_many, folder_of, write_failure

BASE = TINY


def cfgs_in(tmp_path, experiment="t", **axes):
    return expand(dataclasses.replace(BASE, results_dir=str(tmp_path), experiment=experiment), axes or {"seed": [0, 1]})


@pytest.mark.slow
def test_a_record_from_other_code_is_retrained_kept_or_everything_retrained(tmp_path, capsys):
    cfgs = cfgs_in(tmp_path)
    assert len(execute_many(cfgs, show_progress=False).trained) == 2
    path = folder_of(cfgs[0]) / RECORD
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "fingerprint": "0000000000000000"}))
    assert problem(folder_of(cfgs[0]), "ffff") == "stale"

    kept = execute_many(cfgs, show_progress=False, rerun="never")
    assert len(kept.skipped) == 2 and not kept.trained
    assert read_record(folder_of(cfgs[0]))["fingerprint"] == "0000000000000000"

    stale = execute_many(cfgs, show_progress=False, rerun="stale")
    assert stale.trained == [folder_of(cfgs[0])] and stale.skipped == [folder_of(cfgs[1])]
    assert "1 record(s) stale: retrained" in capsys.readouterr().err
    assert read_record(folder_of(cfgs[0]))["fingerprint"] != "0000000000000000"

    everything = execute_many(cfgs, show_progress=False, rerun="all")
    assert len(everything.trained) == 2
    with pytest.raises(ConfigError, match="rerun"):
        execute_many(cfgs, show_progress=False, rerun="sometimes")


@pytest.mark.slow
def test_a_corrupt_record_or_missing_params_is_reported_and_retrained(tmp_path, capsys):
    cfgs = cfgs_in(tmp_path)
    execute_many(cfgs, show_progress=False)
    truncated = folder_of(cfgs[0]) / RECORD
    truncated.write_text(truncated.read_text()[:40])
    shutil.rmtree(folder_of(cfgs[1]) / PARAMS)
    assert problem(folder_of(cfgs[0])) == "corrupt record.json"
    assert problem(folder_of(cfgs[1])) == "params/ missing"

    _, rows = aggregate(tmp_path, "t")  # the table lists both, it does not crash or drop them
    assert sorted(r["status"] for r in rows) == ["corrupt", "corrupt"] and len(failures(rows)) == 2

    again = execute_many(cfgs, show_progress=False)
    assert len(again.trained) == 2
    err = capsys.readouterr().err
    assert "corrupt record.json: retrained" in err and "params/ missing: retrained" in err
    _, rows = aggregate(tmp_path, "t")
    assert [r["status"] for r in rows] == ["complete", "complete"]


def test_aggregate_of_an_experiment_without_runs_is_an_error(tmp_path):
    with pytest.raises(AggregateError, match="no runs"):
        aggregate(tmp_path, "nosuch")
    assert not (tmp_path / "nosuch").exists()


@pytest.mark.slow
def test_a_model_finished_under_another_experiment_is_copied_not_retrained(tmp_path):
    first = execute_many(cfgs_in(tmp_path, "a"), show_progress=False)
    assert len(first.trained) == 2
    second = execute_many(cfgs_in(tmp_path, "b"), show_progress=False)
    assert len(second.copied) == 2 and not second.trained
    record = read_record(folder_of(cfgs_in(tmp_path, "b")[0]))
    assert record["copied_from"] == "a" and record["config"]["experiment"] == "b"
    assert problem(folder_of(cfgs_in(tmp_path, "b")[0])) is None


@pytest.mark.slow
def test_a_stale_record_is_replaced_by_a_current_copy_of_the_same_model(tmp_path, capsys):
    """Code changed: experiment a was retrained; b's stale records of the same models become
    copies of a's (the same numbers in both tables), not a second training."""
    execute_many(cfgs_in(tmp_path, "b"), show_progress=False)
    stale = folder_of(cfgs_in(tmp_path, "b")[0])
    record = json.loads((stale / RECORD).read_text())
    (stale / RECORD).write_text(json.dumps({**record, "fingerprint": "0000000000000000"}))
    (stale / "ood.json").write_text("{}")  # left by the old code: must not survive the copy
    first = execute_many(cfgs_in(tmp_path, "a"), show_progress=False)  # seed 1 is copied from b
    assert len(first.trained) == 1 and len(first.copied) == 1
    again = execute_many(cfgs_in(tmp_path, "b"), show_progress=False)
    assert again.copied == [stale] and not again.trained and len(again.skipped) == 1
    assert "retraining" not in capsys.readouterr().err
    assert read_record(stale)["copied_from"] == "a" and problem(stale, read_record(stale)["fingerprint"]) is None
    assert not (stale / "ood.json").exists()
    assert read_record(stale)["metrics"] == read_record(folder_of(cfgs_in(tmp_path, "a")[0]))["metrics"]


@pytest.mark.parametrize("override, field", [
    ("cohort.m=4", "cohort.m: expected a list"),
    ("cohort.seed=abc", "cohort.seed: expected a list"),
    ("cohort.max_models=0", "cohort.max_models: must be >= 1 or null"),
    ("task.n=100000", "memory: one model needs about"),
    ("rerun=maybe", "rerun: unknown value"),
    ("analysis.budgets=[0]", "analysis.budgets"),
])
def test_bad_input_is_one_line_before_compute(override, field):
    with pytest.raises(ConfigError, match=field.replace("[", r"\[")) as err:
        plan_job(compose(["experiment=quick", override]))
    assert "\n" not in str(err.value)


SWEEP_ARGS = ["task.n=4", "task.eval_size=64", "train.steps=20", "train.eval_every=10", "train.batch=16",
              "model.w=16", "cohort.m=[2,4]", "cohort.seed=[0]", "analysis.boot=20",
              "after=[aggregate,analyze]"]  # the steps these tests judge


def sweep(tmp_path, *args):
    cmd = [sys.executable, "-m", "counting.cli.train", "-m", f"results_dir={tmp_path / 'results'}",
           f"hydra.sweep.dir={tmp_path / 'multirun' / str(len(list(tmp_path.glob('multirun/*'))))}", *SWEEP_ARGS, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_bad_value_in_the_second_cell_trains_nothing(tmp_path):
    out = sweep(tmp_path, "experiment=quick", "model.d=4,0")
    assert out.returncode == 2
    assert "error: cell 2/2" in out.stderr and "model.d: must be >= 1" in out.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_the_sweep_judges_its_own_cells_and_its_own_steps(tmp_path):
    old = dataclasses.replace(BASE, results_dir=str(tmp_path / "results"), experiment="quick")
    write_failure(folder_of(old), old, RuntimeError("an old failure"))  # not a cell of the sweep below
    out = sweep(tmp_path, "experiment=quick", "model.d=4")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "an old failure" not in out.stdout and "2 models of this sweep, 0 failed" in out.stdout

    root = tmp_path / "results" / "quick"
    (root / "cells.csv").unlink()
    (root / "cells.csv").mkdir()  # the analysis cannot write: the sweep must say so and fail
    out = sweep(tmp_path, "experiment=quick", "model.d=4")
    assert out.returncode == 1
    assert "step 'write analysis' failed" in out.stderr


CONCURRENT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[4])
    from tiny import tiny
    from counting.runtime.devices import use_compilation_cache, use_cpu_devices
    use_cpu_devices()
    use_compilation_cache()  # as the commands do
    from counting.config import CohortConfig
    from counting.sweep.plan import expand
    from counting.sweep.runner import execute_many
    base = tiny(train={"steps": 200, "eval_every": 50}, results_dir=sys.argv[1], experiment="c")
    seeds, max_models = int(sys.argv[2]), int(sys.argv[3])
    report = execute_many(expand(base, {"seed": list(range(seeds))}), CohortConfig(max_models=max_models),
                          show_progress=False)
    print(json.dumps({"trained": [p.name for p in report.trained], "skipped": len(report.skipped),
                      "failed": len(report.failed)}))
""")


@pytest.mark.slow
@pytest.mark.parametrize("seeds, max_models", [(4, 1)])
def test_two_sweeps_at_once_train_each_model_once(tmp_path, seeds, max_models):
    """Two processes, one experiment, jobs of several chunks: every model is trained by exactly
    one of them (decided under its lock, re-checked after waiting), every record complete."""
    here = str(Path(__file__).parent)
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT, str(tmp_path), str(seeds), str(max_models), here],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    reports = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
    trained = [h for r in reports for h in r["trained"]]
    assert sorted(trained) == sorted(set(trained)) and len(trained) == seeds  # each model exactly once
    assert not any(r["failed"] for r in reports)
    assert sum(r["skipped"] for r in reports) == seeds  # what the other one trained, taken as it is
    for folder in (tmp_path / "c" / "runs").iterdir():
        record = read_record(folder)
        assert record["status"] == "complete" and problem(folder) is None
        steps = [json.loads(line)["step"] for line in (folder / "metrics.jsonl").read_text().splitlines()]
        assert steps == list(range(50, 201, 50))  # no duplicated or missing rows
    assert not any((tmp_path / "c" / "checkpoints").glob("*/*"))
