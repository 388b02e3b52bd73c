"""Out-of-distribution evaluation of saved models (lengths n', distinct tokens k')."""

import csv
import json

import numpy as np
import pytest

from counting.config import ConfigError, ModelConfig, OODConfig, RunConfig, TaskConfig, TrainConfig
from counting.evaluation.evaluate import OOD, evaluate_experiment
from counting.store.aggregate import aggregate
from counting.sweep.runner import execute_many, folder_of


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two tiny QC models (m = 3, n = 4): no positions with a causal mask, and learned positions."""
    root = tmp_path_factory.mktemp("ood")
    cfgs = [RunConfig(TaskConfig(m=3, n=4, eval_size=256), ModelConfig(d=8, w=32, pos=pos, causal=True),
                      TrainConfig(steps=200, batch=64, eval_every=200), experiment="ood", results_dir=str(root))
            for pos in ("none", "learned")]
    report = execute_many(cfgs, show_progress=False)
    assert not report.failed
    aggregate(root, "ood")
    return root, cfgs


@pytest.mark.slow
def test_ood_table_reproduces_training_point_and_scores_longer_sequences(trained):
    root, cfgs = trained
    path, rows = evaluate_experiment(root, "ood", OODConfig(n=(2, 4, 6), k=(2, 3, 5)), log=lambda s: None)
    with open(root / "ood" / "table.csv") as f:
        train_columns = next(csv.reader(f))
    with open(path) as f:
        ood_columns = next(csv.reader(f))
    assert set(train_columns) <= set(ood_columns) and {"eval_n", "eval_k", "eval_status"} <= set(ood_columns)
    by = {(r["pos"], r["eval_n"], r["eval_k"]): r for r in rows}
    # points: n' in 2, 4, 6 at k = 3, and k' = 2 at n = 4 (k' = 5 > m is dropped)
    assert sorted(k for k in by if k[0] == "none") == [("none", 2, 3), ("none", 4, 2), ("none", 4, 3), ("none", 6, 3)]
    for cfg in cfgs:  # the training point is the training evaluation, to the last bit
        record = json.loads((folder_of(cfg) / "record.json").read_text())
        assert by[(cfg.model.pos, 4, 3)]["accuracy"] == record["metrics"]["accuracy"]
    longer = json.loads((folder_of(cfgs[0]) / OOD).read_text())
    point = [p for p in longer["points"] if p["n"] == 6][0]
    per_count = point["metrics"]["accuracy_per_count"]
    assert len(per_count) == 7 and per_count[5] == per_count[6] == 0.0  # counts > n cannot be answered
    support = np.array(point["metrics"]["count_support"])
    assert support.sum() == 256 and support[5:].sum() > 0
    seen = point["metrics"]["accuracy_seen_counts"]
    assert point["metrics"]["accuracy"] < seen <= 1.0
    learned = by[("learned", 6, 3)]
    assert learned["eval_status"] == "unsupported" and "learned" in learned["error"]
    assert by[("learned", 2, 3)]["eval_status"] == "complete"


@pytest.mark.slow
def test_evaluated_points_are_kept_and_new_ones_appended(trained):
    root, cfgs = trained
    evaluate_experiment(root, "ood", OODConfig(n=(4,)), log=lambda s: None)
    path = folder_of(cfgs[0]) / OOD
    before = json.loads(path.read_text())
    stamp = path.stat().st_mtime_ns
    evaluate_experiment(root, "ood", OODConfig(n=(4,)), log=lambda s: None)
    assert path.stat().st_mtime_ns == stamp  # nothing new: not rewritten
    evaluate_experiment(root, "ood", OODConfig(n=(4, 8)), log=lambda s: None)
    after = json.loads(path.read_text())
    assert [p for p in after["points"] if p["n"] == 4] == [p for p in before["points"] if p["n"] == 4]
    assert any(p["n"] == 8 for p in after["points"])


def test_grid_is_validated_before_any_compute(tmp_path, capsys):
    root = tmp_path
    with pytest.raises(ConfigError, match="ood.n"):
        OODConfig(n=(0,))
    assert evaluate_cli(capsys, "ood", "--results-dir", str(root), "--k", "1") == (
        2, "error: ood.k: every value must be >= 2, got 1")


def test_an_experiment_without_a_config_or_grid_says_so(tmp_path, capsys):
    root = tmp_path
    code, err = evaluate_cli(capsys, "ood", "--results-dir", str(root))  # no experiments/ood.yaml
    assert code == 2 and err.startswith("error: experiment: no config ood.yaml in ") and "quick" in err
    code, err = evaluate_cli(capsys, "quick", "--results-dir", str(root))  # quick.yaml has no ood section
    assert code == 2 and err.startswith("error: ood: ") and "quick.yaml has no ood grid" in err
    (root / "experiment").mkdir()
    (root / "experiment" / "mine.yaml").write_text("# @package _global_\nood:\n  n: [8]\n")
    code, err = evaluate_cli(capsys, "mine", "--results-dir", str(root), "--config-dir", str(root))
    assert code == 2 and err.startswith("error: experiment: no runs under")  # the grid was found


def evaluate_cli(capsys, *argv) -> tuple[int, str]:
    """counting-evaluate in this process: (exit status, stderr)."""
    from counting.cli.evaluate import main

    with pytest.raises(SystemExit) as exit_:
        main(list(argv))
    return exit_.value.code, capsys.readouterr().err.strip()
