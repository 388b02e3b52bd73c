"""counting.inspect: the diagnostics' pieces, the mechanism label calibrated on the hand-built
constructions and on untrained models, and bad input (no models, broken folders)."""

import json
import math

import numpy as np
import pytest
from flax import nnx

from counting.config import ModelConfig, RunConfig, TaskConfig
from counting.inspect import InspectError, diagnose, inspect_experiment
from counting.inspect.geometry import coherence, effective_rank, welch_bound
from counting.inspect.growth import loglog_slope
from counting.inspect.probes import ridge_r2
from counting.models.transformer import Transformer
from counting.tasks import make_task
from counting.theory.count_attend import count_attend
from counting.theory.histogram import histogram_solution
from counting.theory.mfe import mfe_solution

N, EVAL = 8, 256


def task(name, m):
    return TaskConfig(name=name, m=m, n=N, eval_size=EVAL)


def untrained(t: TaskConfig, d: int, seed: int = 0) -> Transformer:
    spec = make_task(t)
    return Transformer(ModelConfig(d=d, w=32), spec.vocab_size(), spec.length, spec.num_classes, nnx.Rngs(params=seed))


# (name, task, model builder, expected label): the calibration table
CALIBRATION = [
    ("histogram qc d=m", task("qc", 6), lambda t: histogram_solution(t).model, "histogram"),
    ("histogram qc d>m", task("qc", 4), lambda t: histogram_solution(t, d=8).model, "histogram"),
    ("histogram task", task("histogram", 6), lambda t: histogram_solution(t).model, "histogram"),
    ("mfe two layers", task("mfe", 4), lambda t: mfe_solution(t).model, "histogram"),
    ("count_attend m>d", task("qc", 12), lambda t: count_attend(t, 5).model, "count_attend"),
    ("count_attend m<d", task("qc", 4), lambda t: count_attend(t, 8).model, "count_attend"),
    ("count_attend head", task("qc", 12), lambda t: count_attend(t, 6, inverse="head").model, "count_attend"),
    ("untrained qc d>m", task("qc", 4), lambda t: untrained(t, 16), "neither"),
    ("untrained qc d<m", task("qc", 16), lambda t: untrained(t, 4), "neither"),
    ("untrained histogram", task("histogram", 4), lambda t: untrained(t, 8, seed=1), "neither"),
    ("untrained mfe", task("mfe", 8), lambda t: untrained(t, 8, seed=2), "neither"),
]


# The fast tier keeps one untrained model (the others, and the two-layer MFE, run in the full tier).
SLOW = {"untrained qc d>m", "untrained histogram", "untrained mfe", "mfe two layers"}


@pytest.mark.parametrize("name,t,build,expected", [
    pytest.param(*c, id=c[0], marks=[pytest.mark.slow] if c[0] in SLOW else []) for c in CALIBRATION])
def test_calibration_labels_each_model_as_built(name, t, build, expected):
    row = diagnose(t, build(t))
    assert row["mechanism"] == expected, {k: row[k] for k in ("probe_accuracy", "att_bos", "other_lift", "match_lift",
                                                              "probe_hist_r2", "rmse_count_attend", "rmse_uniform")}


def test_constructions_show_their_signatures():
    """The numbers behind the labels: CountAttend puts 1/(c + 1) on BOS (K = 1, nothing on the
    others); the histogram attends uniformly and its residual holds the whole histogram."""
    t = task("qc", 12)
    ca = diagnose(t, count_attend(t, 5).model)
    assert ca["probe_accuracy"] == 1.0
    assert abs(ca["match_K"] - 1.0) < 0.05 and ca["other_lift"] < 0.05 and ca["rmse_count_attend"] < 0.01
    assert ca["probe_inv_count_r2"] > 0.99
    assert ca["coherence"] >= ca["welch_bound"] - 1e-9 and ca["welch_bound"] > 0
    h = diagnose(task("qc", 6), histogram_solution(task("qc", 6)).model)
    assert h["probe_accuracy"] == 1.0 and h["coherence"] < 1e-9 and h["welch_bound"] == 0.0
    assert abs(h["match_lift"] - 1.0) < 1e-6 and abs(h["other_lift"] - 1.0) < 1e-6 and h["rmse_uniform"] < 1e-6
    assert h["probe_hist_r2"] > 0.999 and h["norm_qk"] == 0.0


def test_geometry_reference_values():
    assert welch_bound(4, 4) == 0.0
    assert math.isclose(welch_bound(2, 3), math.sqrt(1 / 4))
    assert coherence(np.eye(5)) == 0.0
    assert math.isclose(effective_rank(np.eye(5)), 5.0)
    # three unit vectors at 120 degrees meet the Welch bound in d = 2
    angle = 2 * np.pi * np.arange(3) / 3
    E = np.stack([np.cos(angle), np.sin(angle)], 1)
    assert math.isclose(coherence(E), welch_bound(2, 3), rel_tol=1e-9)


def test_ridge_probe_reads_a_linear_target_and_not_noise():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6))
    train = np.arange(400) < 200
    assert ridge_r2(X, X @ rng.normal(size=(6, 3)) + 1.0, train) > 0.999
    assert ridge_r2(X, rng.normal(size=(400, 1)), train) < 0.1


def test_growth_exponent_is_the_within_d_slope():
    x = np.array([2.0, 4, 8, 2, 4, 8])
    g = np.array([4, 4, 4, 8, 8, 8])
    y = np.where(g == 4, 1.0, 100.0) * x**1.5  # a different scale per d, the same exponent
    assert math.isclose(loglog_slope(x, y, g), 1.5)


# --- bad input ---------------------------------------------------------------------------


def save_untrained(root, m: int, seed: int):
    """A finished-looking model folder holding untrained parameters (no training needed)."""
    from counting.store.record import save_params

    cfg = RunConfig.from_dict({"task": {"name": "qc", "m": m, "n": N, "eval_size": EVAL},
                               "model": {"d": 8, "w": 16}, "train": {"seed": seed}, "experiment": "tiny"})
    spec = make_task(cfg.task)
    model = Transformer(cfg.model, spec.vocab_size(), spec.length, spec.num_classes, nnx.Rngs(params=seed))
    folder = root / "tiny" / "runs" / cfg.hash()
    folder.mkdir(parents=True)
    save_params(folder, nnx.to_pure_dict(nnx.state(model, nnx.Param)))
    record = {"config": cfg.to_dict(), "status": "complete", "hash": cfg.hash(), "steps": 0,
              "metrics": {"accuracy": 0.1, "baseline_accuracy": 0.1}}
    (folder / "record.json").write_text(json.dumps(record))
    return folder


def test_no_saved_models_is_one_clear_line(tmp_path, capsys):
    with pytest.raises(InspectError) as err:
        inspect_experiment(tmp_path, "nothing")
    assert "\n" not in str(err.value) and "no finished models" in str(err.value)
    from counting.cli.inspect import main

    with pytest.raises(SystemExit) as exit_:
        main(["nothing", "--results-dir", str(tmp_path)])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


@pytest.mark.slow
def test_broken_folders_are_one_line_each_and_the_rest_is_inspected(tmp_path):
    good = save_untrained(tmp_path, 4, 0)
    gone = save_untrained(tmp_path, 4, 1)
    corrupt = save_untrained(tmp_path, 6, 2)
    bad_record = save_untrained(tmp_path, 6, 3)
    import shutil

    shutil.rmtree(gone / "params")
    for f in (corrupt / "params").rglob("*"):
        if f.is_file():
            f.write_bytes(b"not a checkpoint")
    (bad_record / "record.json").write_text("{ not json")
    lines = []
    path, rows = inspect_experiment(tmp_path, "tiny", lines.append, sequences=64)
    errors = [line for line in lines if "/" not in line.split(":")[0] and "models (" not in line]
    assert len(errors) == 3, lines
    assert all("\n" not in e for e in errors)
    assert any(gone.name in e and "checkpoint" in e for e in errors)
    assert any(corrupt.name in e and "checkpoint" in e for e in errors)
    assert any(bad_record.name in e and "record.json" in e for e in errors)
    done = [r for r in rows if r["inspect_status"] == "complete"]
    assert [r["hash"] for r in done] == [good.name] and done[0]["mechanism"] == "neither"
    assert path.exists() and {"coherence", "welch_bound", "mechanism", "hash", "d", "m", "n"} <= set(rows[0])


def test_legacy_records_with_the_softmax_flag_are_read(tmp_path):
    folder = save_untrained(tmp_path, 4, 0)
    record = json.loads((folder / "record.json").read_text())
    model = record["config"]["model"]
    model.pop("attention"), model.pop("topk")
    model["softmax"] = True
    (folder / "record.json").write_text(json.dumps(record))
    _, rows = inspect_experiment(tmp_path, "tiny", lambda line: None, sequences=64)
    assert rows[0]["inspect_status"] == "complete" and rows[0]["attention"] == "softmax"


def test_topk_model_is_inspected():
    t = task("qc", 4)
    spec = make_task(t)
    model = Transformer(ModelConfig(d=8, w=16, attention="topk", topk=2), spec.vocab_size(), spec.length,
                        spec.num_classes, nnx.Rngs(params=0))
    row = diagnose(t, model)
    assert row["att_keys"] <= 2.0 + 1e-6 and np.isfinite(row["coherence"])

