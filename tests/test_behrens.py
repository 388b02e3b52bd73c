"""Behrens et al.'s setting (counting.models.behrens, the partition sampler, their optimiser): every
variant's forward pass against a dense numpy reference, the random-partition sampler's counts
enumerated on small cases, and the options that make no sense for a variant as one line."""

from collections import Counter
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx
from tiny import tiny

from counting.config import ConfigError, ModelConfig, TaskConfig
from counting.models.behrens import VARIANTS, BehrensModel
from counting.tasks import NUM_SPECIAL, make_task
from counting.tasks.base import partition_counts


def peer(arch: str, **model):
    return ModelConfig(arch=arch, pos="none", norm="none", **{"d": 6, "w": 5, **model})


def numpy_forward(model: BehrensModel, tokens_BxT: np.ndarray, at_A) -> np.ndarray:
    """The forward pass written out densely: X = E[x]; S = (XQ)(XK)^T / sqrt(d) or A; weights =
    softmax(S) or S; Y = weights X + X; logits = relu(Y W1 + b1) W2 + b2."""
    p = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    E = np.asarray(p["embed"]["embedding"], np.float64)
    X = E[tokens_BxT]  # BxTxD
    mixing, softmax, _ = VARIANTS[model.cfg.arch]
    if mixing == "dot":
        Q, K = np.asarray(p["query"]["kernel"], np.float64), np.asarray(p["key"]["kernel"], np.float64)
        S = np.einsum("btd,bsd->bts", X @ Q, X @ K) / np.sqrt(X.shape[-1])
    else:
        S = np.broadcast_to(np.asarray(p["mix"], np.float64), (X.shape[0],) + p["mix"].shape)
    if softmax:
        S = np.exp(S - S.max(-1, keepdims=True))
        S = S / S.sum(-1, keepdims=True)
    Y = np.einsum("bts,bsd->btd", S, X) + X
    h = np.maximum(Y @ np.asarray(p["hidden"]["kernel"]) + np.asarray(p["hidden"]["bias"]), 0.0)
    logits = h @ np.asarray(p["out"]["kernel"]) + np.asarray(p["out"]["bias"])
    return logits[:, list(at_A)]


@pytest.mark.parametrize("arch", list(VARIANTS))
def test_every_variant_matches_a_dense_numpy_reference(arch):
    bos = arch.startswith("dotBOS")
    task = make_task(TaskConfig(name="histogram", m=7, n=5, bos=bos, sampler="partition"))
    model = BehrensModel(peer(arch), task.vocab_size(), task.length, task.num_classes, nnx.Rngs(params=jax.random.PRNGKey(3)))
    batch = task.sample_jit(jax.random.PRNGKey(0), 16, None, None)
    at = task.answer_positions
    ours = np.asarray(model(batch.tokens_BxT, at))
    np.testing.assert_allclose(ours, numpy_forward(model, np.asarray(batch.tokens_BxT), at), rtol=1e-4, atol=1e-5)
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    assert "value" not in params and "head" not in params  # the value is the embedding, the MLP the classifier
    assert ("mix" in params) == arch.startswith("linear")


def test_the_peer_initialisation_follows_pytorch_defaults():
    model = BehrensModel(peer("dot+softmax", d=64, w=64), 66, 10, 11, nnx.Rngs(params=jax.random.PRNGKey(0)))
    p = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    assert abs(float(np.std(p["embed"]["embedding"])) - 1.0) < 0.05  # N(0, 1)
    for w, fan_in in ((p["query"]["kernel"], 64), (p["hidden"]["bias"], 64), (p["out"]["kernel"], 64)):
        assert float(np.abs(w).max()) <= 1 / np.sqrt(fan_in) + 1e-6  # U(+-1/sqrt(fan_in))


@pytest.mark.parametrize("n", [2, 3, 5, 8])
def test_partition_counts_are_partitions_of_n_with_two_or_more_parts(n):
    parts = np.asarray(partition_counts(jax.random.PRNGKey(n), 4000, n))
    assert (parts.sum(1) == n).all()
    assert ((parts > 0).sum(1) >= 2).all()  # the first part is at most n - 1: never one part
    firsts = Counter(parts[:, 0].tolist())
    assert set(firsts) == set(range(1, n))  # uniform on 1..n-1
    assert max(firsts.values()) / min(firsts.values()) < 1.3


def test_partition_sequences_give_each_part_its_own_token():
    cfg = TaskConfig(name="histogram", m=20, n=6, bos=False, sampler="partition")
    task = make_task(cfg)
    batch = task.sample_jit(jax.random.PRNGKey(1), 2000, None, None)
    x = np.asarray(batch.tokens_BxT) - NUM_SPECIAL
    labels = np.asarray(batch.labels_BxT)
    seen_shapes = set()
    for row, lab in zip(x, labels):
        counts = Counter(row.tolist())
        assert all(lab[i] == counts[t] for i, t in enumerate(row))  # the histogram of the row
        assert len(counts) >= 2 and max(counts.values()) < 6
        seen_shapes.add(tuple(sorted(counts.values(), reverse=True)))
    # the recursion never takes the whole rest, so it ends on a rest of 1: the shapes are exactly
    # the partitions of 6 that have a part 1 (5+1, 4+1+1, 3+2+1, ..., 1*6), and each occurs
    assert seen_shapes == {s for s in partitions(6) if 1 in s}
    assert len(seen_shapes) == 7


def partitions(n: int, most: int | None = None) -> set[tuple[int, ...]]:
    """Every partition of n into parts of at most `most`, as descending tuples."""
    most = n if most is None else most
    if n == 0:
        return {()}
    return {(k,) + rest for k in range(min(n, most), 0, -1) for rest in partitions(n - k, k)}


@pytest.mark.parametrize("model, task, words", [
    ({"arch": "dot"}, {}, ["model.pos", "pos = none"]),
    ({"arch": "dot", "pos": "none", "norm": "none", "L": 2}, {"bos": False}, ["model.L", "L = 1"]),
    ({"arch": "linear", "pos": "none", "norm": "none", "attention": "linear"}, {"bos": False}, ["model.attention"]),
    ({"arch": "dot+softmax", "pos": "none", "norm": "none"}, {"bos": True}, ["task.bos", "no BOS"]),
    ({"arch": "dotBOS", "pos": "none", "norm": "none"}, {"bos": False}, ["task.bos", "a BOS token"]),
    ({"arch": "attention"}, {}, ["model.arch", "dotBOS+softmax"]),
])
def test_options_a_variant_does_not_have_are_one_line(model, task, words):
    with pytest.raises(ConfigError) as err:
        tiny(model=model, task=task)
    msg = str(err.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


def test_their_optimiser_options():
    cfg = tiny(train={"b2": 0.98, "eps": 1e-9, "clip": None, "weight_decay": 0.0, "warmup": 0})
    from counting.training.optimizer import make_optimizer

    state = make_optimizer(cfg.train).init({"w": np.zeros(3, np.float32)})
    assert "clip" not in str(type(state[0])).lower()  # no clipping transform first
    with pytest.raises(ConfigError, match="train.b2: must be in"):
        tiny(train={"b2": 1.0})


def test_the_peer_comparison_joins_their_mean_with_ours_per_cell():
    from counting.analysis.peer import compare, ours_by_budget, ours_by_cell

    published = [{"figure": "Fig07.a", "variant": "dot+sftm", "T": "64", "L": "10", "d": "8", "p": "64",
                  "statistic": "mean_over_seeds", "accuracy": "88.0", "n_seeds": "5", "source_file": "nb.ipynb",
                  "source_cell": "cell 2"},
                 {"figure": "Fig07.a", "variant": "dot+sftm", "T": "64", "L": "10", "d": "16", "p": "64",
                  "statistic": "mean_over_seeds", "accuracy": "96.0", "n_seeds": "5", "source_file": "nb.ipynb",
                  "source_cell": "cell 2"},
                 {"figure": "Fig07.a", "variant": "dot+sftm", "T": "64", "L": "10", "d": "8", "p": "64",
                  "statistic": "single_run_final_val_acc", "accuracy": "50.0", "n_seeds": "1", "source_file": "nb.ipynb",
                  "source_cell": "cell 2"}]
    cell = {"arch": "dot+softmax", "m": 64, "n": 10, "d": 8, "w": 64}
    ours = [{**cell, "accuracy": a} for a in (0.86, 0.87, 0.90)]
    budgets = [{**cell, "budget": b, "accuracy": a} for b, a in ((100, 0.5), (100, 0.7), (200, 0.9))]
    rows = compare(published, ours_by_cell(ours), 0.02, ours_by_budget(budgets))
    assert len(rows) == 2  # the per-run row is not a mean
    d8, d16 = rows
    assert d8["source"] == "nb.ipynb, cell 2" and d8["theirs"] == pytest.approx(0.88)
    assert d8["ours"] == pytest.approx(0.876666, 1e-5) and d8["our_seeds"] == 3
    assert d8["difference"] == pytest.approx(0.876666 - 0.88, abs=1e-5) and d8["agrees"] is True
    assert d8["ours_at_100"] == pytest.approx(0.6) and d8["ours_at_200"] == pytest.approx(0.9)
    assert d16["agrees"] == "" and np.isnan(d16["ours"])  # not trained here
    # the same cells at their full length join beside, with the suffix _full; cells without them stay empty
    full = [{**cell, "accuracy": a} for a in (0.70, 0.72)]
    d8, d16 = compare(published, ours_by_cell(ours), 0.02, None, ours_by_cell(full))
    assert d8["ours"] == pytest.approx(0.876666, 1e-5) and d8["ours_full"] == pytest.approx(0.71)
    assert d8["our_seeds_full"] == 2 and d8["ours_full_max"] == pytest.approx(0.72)
    assert d8["difference_full"] == pytest.approx(0.71 - 0.88) and d8["agrees_full"] is False
    assert d16["agrees_full"] == "" and np.isnan(d16["ours_full"])


def test_counting_peer_writes_the_comparison_with_the_full_length_cells(tmp_path, capsys):
    """`counting-peer behrens` from tables: the 150-epoch cells and, where a run at their full
    length exists, its columns beside them (and the approach to it, budget by budget)."""
    import csv
    import shutil

    from counting.cli.peer import main
    from counting.store import write_table

    (tmp_path / "peer_behrens").mkdir()
    shutil.copy(Path(__file__).parents[1] / "results" / "peer_behrens" / "published.csv", tmp_path / "peer_behrens")
    cell = {"arch": "dot+softmax", "m": 64, "n": 10, "d": 16, "w": 64, "task": "histogram"}
    for name, accs, budgets in (("peer_behrens_t64_d", (0.80, 0.90), (46950,)),
                                ("peer_behrens_t64_full", (0.94, 0.96), (46950, 156500))):
        (tmp_path / name).mkdir()
        write_table(tmp_path / name / "table.csv", [{**cell, "seed": s, "accuracy": a} for s, a in enumerate(accs)])
        write_table(tmp_path / name / "budget.csv", [{"budget": b, **cell, "seed": s, "accuracy": a * b / budgets[-1]}
                                                     for b in budgets for s, a in enumerate(accs)])
    t32 = {"arch": "dot+softmax", "m": 32, "n": 10, "d": 16, "w": 16, "task": "histogram"}  # their Fig. 1/2, reduced
    shutil.copy(Path(__file__).parents[1] / "results" / "peer_behrens" / "published_t32.csv", tmp_path / "peer_behrens")
    for name, accs in (("peer_behrens_t32", (0.70, 0.72)), ("peer_behrens_t32_full", (0.80, 0.84))):
        (tmp_path / name).mkdir()
        write_table(tmp_path / name / "table.csv", [{**t32, "seed": s, "accuracy": a} for s, a in enumerate(accs)])
    main(["behrens", "--results-dir", str(tmp_path)])
    with (tmp_path / "peer_behrens" / "diagram_t32.csv").open() as f:
        (diagram,) = list(csv.DictReader(f))
    assert float(diagram["ours"]) == pytest.approx(0.71) and float(diagram["ours_full"]) == pytest.approx(0.82)
    assert diagram["our_seeds_full"] == "2" and diagram["verdict"] != "" and diagram["verdict_full"] != ""
    assert (tmp_path / "peer_behrens" / "figures" / "diagram_t32.png").exists()
    with (tmp_path / "peer_behrens" / "compare.csv").open() as f:
        table = list(csv.DictReader(f))
    rows = [r for r in table if r["figure"] == "Fig07.a" and r["d"] == "16"]
    (row,) = rows
    assert float(row["ours"]) == pytest.approx(0.85) and float(row["ours_full"]) == pytest.approx(0.95)
    assert float(row["ours_full_at_156500"]) == pytest.approx(0.95) and row["our_seeds_full"] == "2"
    assert float(row["difference_full"]) == pytest.approx(0.95 - float(row["theirs"]), abs=1e-5)
    # the agreement rule: one row per distinct cell (d = 64, p = 64 is in both figures), tests and verdicts
    assert len(table) == 13 and [r["figures"] for r in table if r["d"] == r["p"] == "64"] == ["Fig07.a Fig07.b"]
    assert (row["margin"], row["alpha"]) == ("0.02", "0.05") and row["verdict"] == row["verdict_full"] == "undecided"
    assert 0 < float(row["welch_p"]) <= float(row["holm_p"]) and float(row["min_detectable"]) > 0
    assert {r["verdict"] for r in table if r is not row} == {""}  # not trained here
    out = capsys.readouterr().out
    assert "at their full length 1 cells" in out and "0 of 1 distinct cells equivalent" in out
    assert "T = 32 diagram (reduced), 50 epochs, 1 cells" in out and "T = 32 diagram (reduced), 500 epochs, 1 cells" in out
    assert not (tmp_path / "peer_behrens" / "dip.csv").exists()  # no runs at d = 64 and 128


def test_the_registry_names_every_variant_and_only_those():
    """counting.models.registry lists the variants without importing JAX; behrens defines them."""
    from counting.models.registry import MODELS, PEER

    assert PEER == tuple(VARIANTS) and set(MODELS) == {"transformer", *VARIANTS}
