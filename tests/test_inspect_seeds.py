"""counting.inspect.seeds: the alignment scores against known maps, the cells (seed, lr and
weight decay set aside), and the experiment-wide run: interventions, inspect_seeds.csv,
inspect_maps.npz and the figures, on saved untrained models (no training needed)."""

import json
import math

import numpy as np
import pytest
from flax import nnx

from counting.config import RunConfig
from counting.inspect.seeds import (
    cell_key,
    lstsq_r2,
    pair_kind,
    procrustes_null,
    procrustes_r2,
)
from counting.tasks import make_task


def test_procrustes_is_one_for_a_rotation_and_a_scale_and_low_for_unrelated_tables():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(40, 8))
    Q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    assert math.isclose(procrustes_r2(A, 3.0 * A @ Q + 1.0), 1.0, rel_tol=1e-9)
    assert math.isclose(procrustes_r2(A, A @ Q), procrustes_r2(A @ Q, A), rel_tol=1e-9)  # symmetric
    B = rng.normal(size=(40, 8))
    assert procrustes_r2(A, B) < 0.6
    assert procrustes_null(A, A @ Q, rng) < 0.6  # the token correspondence is what aligns them


def test_least_squares_is_held_out():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(200, 6))
    train = np.arange(200) < 100
    assert lstsq_r2(A, A @ rng.normal(size=(6, 4)) - 2.0, train) > 0.999
    assert lstsq_r2(A, rng.normal(size=(200, 4)), train) < 0.1


def test_cells_ignore_seed_and_searched_optimiser_but_nothing_else():
    base = RunConfig.from_dict({"task": {"m": 4}, "train": {"seed": 0}})
    other = RunConfig.from_dict({"task": {"m": 4}, "train": {"seed": 3, "lr": 0.01, "weight_decay": 0.1}})
    assert cell_key(base) == cell_key(other)
    assert cell_key(base) != cell_key(RunConfig.from_dict({"task": {"m": 8}, "train": {"seed": 0}}))
    assert pair_kind({"accuracy": 0.95}, {"accuracy": 0.3}, 0.9) == "one_succeeds"
    assert pair_kind({"accuracy": 0.95}, {"accuracy": 0.91}, 0.9) == "both_succeed"


def save_untrained(root, cfg_dict: dict, seed: int):
    from counting.models.registry import model_class
    from counting.store.record import save_params

    cfg = RunConfig.from_dict({**cfg_dict, "train": {"seed": seed}, "experiment": "tiny"})
    spec = make_task(cfg.task)
    model = model_class(cfg.model)(cfg.model, spec.vocab_size(), spec.length, spec.num_classes,
                                   nnx.Rngs(params=seed))
    folder = root / "tiny" / "runs" / cfg.hash()
    folder.mkdir(parents=True)
    save_params(folder, nnx.to_pure_dict(nnx.state(model, nnx.Param)))
    record = {"config": cfg.to_dict(), "status": "complete", "hash": cfg.hash(), "steps": 0,
              "metrics": {"accuracy": 0.1 + 0.1 * seed, "baseline_accuracy": 0.1}}
    (folder / "record.json").write_text(json.dumps(record))
    return folder


QC = {"task": {"name": "qc", "m": 4, "n": 8, "eval_size": 64}, "model": {"d": 8, "w": 16}}
PEER = {"task": {"name": "histogram", "m": 4, "n": 6, "eval_size": 64, "bos": False, "sampler": "partition"},
        "model": {"arch": "dot+softmax", "d": 8, "w": 16, "pos": "none", "norm": "none"}}


@pytest.mark.slow
def test_experiment_writes_causal_columns_seed_pairs_maps_and_figures(tmp_path, capsys):
    from counting.cli.inspect import main
    from counting.store.columns import read_rows

    for seed in (0, 1, 2):
        save_untrained(tmp_path, QC, seed)
    for seed in (0, 1):
        save_untrained(tmp_path, PEER, seed)
    main(["tiny", "--results-dir", str(tmp_path), "--sequences", "64", "--interventions", "--no-figures"])
    assert "interventions: histogram 0, count_attend 0, unconfirmed 5" in capsys.readouterr().out
    rows = read_rows(tmp_path / "tiny" / "inspect.csv")
    assert all(r["inspect_status"] == "complete" for r in rows) and len(rows) == 5
    assert all(r["causal_mechanism"] == "unconfirmed" for r in rows)
    peer = [r for r in rows if r["arch"] == "dot+softmax"]
    assert all(math.isnan(r["causal_count_attend"]) and "no BOS" in r["causal_note"] for r in peer)
    assert all(np.isfinite(r["causal_histogram"]) for r in peer)

    pairs = read_rows(tmp_path / "tiny" / "inspect_seeds.csv")
    assert sorted((p["arch"], p["seed_a"], p["seed_b"]) for p in pairs) == [
        ("dot+softmax", 0, 1), ("transformer", 0, 1), ("transformer", 0, 2), ("transformer", 1, 2)]
    assert all(0.0 <= p["emb_procrustes_r2"] <= 1.0 + 1e-9 for p in pairs)
    header = (tmp_path / "tiny" / "inspect.csv").read_text().splitlines()[0].split(",")
    assert {"causal_mechanism", "causal_count_attend_control", "tok_ov_diag_share", "worst"} <= set(header)
    assert len(header) == len(set(header))
    maps = np.load(tmp_path / "tiny" / "inspect_maps.npz")
    assert f"{rows[0]['hash']}/ov_VxM" in maps.files

    from counting.config import AnalysisConfig
    from counting.plots.data import PlotData
    from counting.plots.inspect import seeds_figure, token_maps_figure

    data = PlotData("tiny", tmp_path / "tiny" / "figures", AnalysisConfig(tau=0.15), None, [], [])
    assert [p.name for p in seeds_figure(data)] == ["inspect_seeds.png", "inspect_seeds.pdf"]
    # accuracy 0.1 fails and 0.2, 0.3 count at tau 0.15, but untrained models carry no
    # mechanism label: one kind only, so no map figure
    assert token_maps_figure(data) == []


@pytest.mark.slow
def test_token_maps_figure_draws_one_model_per_kind_of_the_richest_cell(tmp_path):
    from counting.config import AnalysisConfig
    from counting.inspect.run import write_maps
    from counting.plots.data import PlotData
    from counting.plots.inspect import chosen_cell, token_maps_figure
    from counting.store import write_table

    cell = {"task": "qc", "arch": "transformer", "d": 8, "m": 4, "n": 8, "k": 4, "w": 16, "L": 1, "H": 1,
            "pos": "learned", "attention": "softmax", "topk": None, "norm": "pre_ln", "inspect_status": "complete",
            "tok_ov_diag_share": 0.5}
    labels = [(0, "h0", 0.99, "histogram", "histogram"), (1, "h1", 0.98, "count_attend", "unconfirmed"),
              (2, "h2", 0.30, "neither", "unconfirmed")]
    rows = [{**cell, "seed": s, "hash": h, "accuracy": a, "mechanism": mech, "causal_mechanism": causal}
            for s, h, a, mech, causal in labels]
    rows.append({**rows[0], "m": 8, "hash": "h3"})  # another cell, one kind only
    root = tmp_path / "tiny"
    write_table(root / "inspect.csv", rows)
    rng = np.random.default_rng(0)
    shapes = {"ov_VxM": (5, 4), "qk_MxV": (4, 5), "qk_pos_MxP": (4, 10), "mlp_VxW": (5, 16)}
    write_maps(root / "inspect_maps.npz", {r["hash"]: {k: rng.normal(size=v) for k, v in shapes.items()} for r in rows})
    assert [(k, r["hash"]) for k, r in chosen_cell(rows, 0.9)] == [("histogram", "h0"), ("count_attend", "h1"),
                                                                    ("failed", "h2")]
    data = PlotData("tiny", root / "figures", AnalysisConfig(), None, [], [])
    assert [p.name for p in token_maps_figure(data)] == ["inspect_token_maps.png", "inspect_token_maps.pdf"]
