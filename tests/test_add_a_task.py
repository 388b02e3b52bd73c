"""docs/add-a-task.md, proved: a task in one file (tests/toy_task.py), registered with one line, runs
through the sweep, the table, the families, the thresholds, the figures, the inspection and the
causal interventions, with no other file of the suite touched."""

import csv

import pytest

from counting.tasks import TASKS, register

pytestmark = pytest.mark.slow


@pytest.fixture
def above():
    register("above", "toy_task:CountAbove")  # the one line a new task needs (from outside the package)
    yield "above"
    TASKS.pop("above")  # other tests in this process see the package's own tasks only


def test_a_task_in_one_file_runs_through_the_pipeline(above, tmp_path):
    from counting.experiment import run_experiment
    from counting.inspect.run import inspect_experiment

    result = run_experiment("quick", [f"task.name={above}", "task.n=6", "model.d=4", "model.w=16",
                                      "cohort.m=[3,5]", "cohort.seed=[0]", "train.steps=100",
                                      "train.eval_every=50", "task.eval_size=128"],
                            results_dir=tmp_path, show_progress=False, say=lambda line: None)
    assert result.ok, result.failed
    folder = tmp_path / "quick"
    table = list(csv.DictReader((folder / "table.csv").open()))
    assert {r["task"] for r in table} == {above} and {r["m"] for r in table} == {"3", "5"}
    assert all(r["status"] == "complete" for r in table)
    families = {r["family"] for r in csv.DictReader((folder / "families.csv").open())}
    assert {"counts", "pairs", "aligned", "uniform"} <= families
    assert any(r["task"] == above for r in csv.DictReader((folder / "thresholds.csv").open()))
    assert list((folder / "figures").glob("*.png"))
    _, rows = inspect_experiment(tmp_path, "quick", log=lambda line: None, sequences=64, interventions=True)
    assert len(rows) == 2 and all(r["task"] == above for r in rows)
    for r in rows:  # the causal tests ran on the toy task's sites (QC's, inherited): numbers, no note of a failure
        assert r["causal_note"] == "" and all(0.0 <= r[k] <= 1.0 for k in ("causal_count_attend", "causal_histogram"))
        assert r["causal_K"] == r["causal_K"]  # not NaN
