"""The pipeline as a library (counting.experiment): cells composed with Hydra's public API,
every cell checked before compute, and an experiment run from a Python script gives the same
table as `counting-train -m`."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from counting.config import ConfigError
from counting.experiment import compose, plan_experiment
from counting.experiment.compose import split_cells, sweep_arguments

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize("arguments", [
    ["model.d=4,8", "task.n=8,16", "train.steps=5"],
    ["experiment=quick", "model.d=4,8", "model.d=16"],  # a later mention keeps the first place
    ["a=1", "b=x,y,z", "+c=2", "a=3"],
    ["model.d=range(4,12,4)", "task.m=choice(2,4)"],
])
def test_cells_are_split_as_hydras_basic_sweeper_splits_them(arguments):
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper  # the reference, in the test only
    from hydra.core.override_parser.overrides_parser import OverridesParser

    expected = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(arguments), None)[0]
    assert split_cells(arguments) == expected


def test_the_experiments_sweep_params_come_first():
    master = compose(["experiment=phase_qc", "train.steps=5"], return_hydra_config=True)
    assert sweep_arguments(master)[0] == "model.d=4,8,16,32"
    assert [c[0] for c in split_cells(sweep_arguments(master))] == [f"model.d={d}" for d in (4, 8, 16, 32)]
    grid = compose(["experiment=exact_qc"], return_hydra_config=True)  # a config group swept
    assert [c[0] for c in split_cells(sweep_arguments(grid))] == ["grid=around_d8", "grid=around_d16", "grid=below_d8",
                                                               "grid=below_d16"]


def test_every_cell_is_planned_and_checked_before_any_compute(tmp_path):
    plan = plan_experiment("phase_qc", ["train.steps=5", "model.d=4,8"], results_dir=tmp_path)
    assert [c for c, _ in plan.cells] == [["model.d=4"], ["model.d=8"]]
    assert plan.name == "phase_qc" and plan.results_dir == str(tmp_path)
    assert len(plan.hashes) == 2 * 33
    with pytest.raises(ConfigError, match=r"cell 2/2 \(model.d=6 model.H=4\): model.d: must be divisible by model.H \(4\)"):
        plan_experiment("phase_qc", ["model.H=4", "model.d=8,6"], results_dir=tmp_path)
    grid = plan_experiment("exact_qc", results_dir=tmp_path)
    assert [(j.cfg.model.d, len(j.members)) for _, j in grid.cells] == [(8, 81), (16, 90), (8, 90), (16, 99)]
    assert not any(tmp_path.iterdir())  # nothing was written


def test_an_unknown_experiment_is_one_line():
    with pytest.raises(Exception) as err:
        plan_experiment("no_such_experiment")
    assert "no_such_experiment" in str(err.value)


def script_overrides() -> list[str]:
    """The example script's OVERRIDES, read from its source (importing it would set devices)."""
    import ast

    tree = ast.parse((ROOT / "examples" / "tiny_experiment.py").read_text())
    node = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "OVERRIDES")
    return ast.literal_eval(node.value)


def table(path: Path) -> dict[str, dict]:
    with path.open() as f:
        return {r["hash"]: r for r in csv.DictReader(f)}


@pytest.mark.slow
def test_a_script_runs_an_experiment_end_to_end_and_the_cli_gives_the_same_table(tmp_path):
    """examples/tiny_experiment.py (counting.experiment, no Hydra command line) and the command
    its docstring gives write the same table."""
    script = subprocess.run([sys.executable, str(ROOT / "examples" / "tiny_experiment.py"), str(tmp_path / "lib")],
                            capture_output=True, text=True, timeout=900)
    assert script.returncode == 0, script.stderr[-3000:]
    lib = tmp_path / "lib" / "tiny_example"
    assert (lib / "figures" / "example_accuracy_vs_m.png").stat().st_size > 1000
    assert (lib / "figures" / "accuracy_vs_m.png").exists() and (lib / "thresholds.csv").exists()
    assert "thresholds:" in script.stdout

    OVERRIDES = script_overrides()  # the table only: the script's leg above ran every step after the sweep
    cli = subprocess.run([sys.executable, "-m", "counting.cli.train", "-m", "experiment=quick", *OVERRIDES,
                          "after=[aggregate]", f"results_dir={tmp_path / 'cli'}", f"hydra.sweep.dir={tmp_path / 'multirun'}"],
                         capture_output=True, text=True, timeout=900)
    assert cli.returncode == 0, cli.stderr[-3000:]
    a, b = table(lib / "table.csv"), table(tmp_path / "cli" / "tiny_example" / "table.csv")
    assert a.keys() == b.keys() and len(a) == 8
    for h in a:
        for column in ("accuracy", "loss", "steps", "stop_reason", "layout", "fingerprint"):
            assert a[h][column] == b[h][column], (h, column)


CALLS = []


def recording_step(shared) -> None:
    """A step of a user's own, named as module:function in `after`."""
    CALLS.append((shared.store.experiment, shared.job.after))


def test_an_experiment_extends_the_steps_after_the_sweep(tmp_path):
    from counting.config import JobConfig
    from counting.experiment import finish
    from counting.experiment.steps import STEPS

    assert tuple(STEPS) == JobConfig().after  # the default list is every registered step, in order
    job = JobConfig(after=("search", "test_experiment:recording_step"))
    result = finish(tmp_path, "nothing", job, say=lambda line: None)
    assert CALLS == [("nothing", job.after)] and result.ok and result.rows == []


def test_an_unknown_step_is_one_line_before_any_compute(tmp_path):
    with pytest.raises(ConfigError, match=r"after: unknown step 'plot_everything'; allowed: families, .*module:function$"):
        plan_experiment("quick", ["after=[aggregate,plot_everything]"], results_dir=tmp_path)
    assert not any(tmp_path.iterdir())
