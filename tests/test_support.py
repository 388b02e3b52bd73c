"""Exact counting on the training support (issue 30): the mixture's component frequencies, held-out
and validation pairs kept out of every training sequence, the enumerated two-token families,
the support labels, and selection and stopping on the worst in-support family."""

from __future__ import annotations

import math
from collections import Counter

import jax
import numpy as np
import pytest
from reference import expected

from counting.config import ConfigError, RunConfig, StopConfig, TaskConfig
from counting.tasks import NUM_SPECIAL, make_task
from counting.tasks.families import family_content, holds_out, pair_set_of, support_of, worst_split
from counting.tasks.pairs import HELDOUT, MIN_M, TRAIN, VALIDATION, ordered_pairs, pair_set
from counting.training.support import RULES, SupportHalving, SupportRule, validation_content

MIX = dict(sampler="mixture", mixture=("balanced", "pairs"), weights=(0.3, 0.7))


def content_of(task_cfg: TaskConfig, seeds=range(4), batch=2048) -> np.ndarray:
    task = make_task(task_cfg)
    rows = [np.asarray(task.sample_jit(jax.random.PRNGKey(s), batch).tokens_BxT) for s in seeds]
    return np.concatenate(rows)[:, task.content_slice()] - NUM_SPECIAL


def test_mixture_component_frequencies_within_binomial_tolerance():
    m, n = 16, 16
    x = content_of(TaskConfig(name="qc", m=m, n=n, **MIX))
    two = np.array([len(set(row.tolist())) == 2 for row in x])
    # balanced draws a two-token sequence when its n - c other positions share a token
    balanced_two = sum((m - 1) ** -(n - c - 1) for c in range(1, n)) / n
    p = 0.7 + 0.3 * balanced_two
    assert abs(two.mean() - p) < 4 * math.sqrt(p * (1 - p) / len(x)), (two.mean(), p)


@pytest.mark.parametrize("name", ["qc", "mfe", "histogram"])
def test_held_out_pairs_never_occur_together_in_training(name):
    """Held-out pairs are in no two-token training sequence of any component; training and
    validation pairs all are (validation pairs are trained, but kept out of the test families)."""
    m, n, f = 8, 6, 0.25
    cfg = TaskConfig(name=name, m=m, n=n, holdout_pairs=f, **MIX)
    task = make_task(cfg)
    seen = set()
    for s in range(2):  # the balanced component draws two-token rows too: all are kept out
        batch = task.sample_jit(jax.random.PRNGKey(s), 2048)
        for row_T, lab_T in zip(np.asarray(batch.tokens_BxT), np.asarray(batch.labels_BxT)):
            tokens_set = set((row_T[task.content_slice()] - NUM_SPECIAL).tolist())
            if len(tokens_set) == 2:
                a, b = sorted(tokens_set)
                seen.add((a, b))
                assert pair_set(a, b, m, f, 0) != HELDOUT, (a, b)
            want, at = expected(row_T, name, n, True, "last")
            assert lab_T[at].tolist() == want  # relabelled where a token was renamed
    unordered = lambda which: {(min(a, b), max(a, b)) for a, b in zip(*pair_set_of(cfg, which))}
    assert seen == unordered("train") | unordered("validation")
    assert unordered("heldout") and unordered("validation")


def test_pair_sets_partition_the_pairs_and_do_not_depend_on_m():
    for m in (MIN_M, 8, 16):
        cfg = TaskConfig(m=m, holdout_pairs=0.2)
        sets = [set(zip(*pair_set_of(cfg, w))) for w in ("train", "validation", "heldout")]
        assert sum(map(len, sets)) == m * (m - 1) and not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    a, b = ordered_pairs(8)
    assert (pair_set(a, b, 8, 0.2, 0) == pair_set(a, b, 16, 0.2, 0)).all()  # a pair's set is fixed for every m
    assert (pair_set(a, b, MIN_M - 1, 0.2, 0) == TRAIN).all()  # too few pairs: nothing held out
    assert not holds_out(TaskConfig(m=MIN_M - 1, holdout_pairs=0.2))
    assert {int(v) for v in pair_set(a, b, 8, 0.3, 1)} == {TRAIN, VALIDATION, HELDOUT}


def test_the_enumerated_two_token_families_cover_every_pair_and_split_once():
    m, n = 6, 5
    cfg = TaskConfig(name="qc", m=m, n=n, holdout_pairs=0.2, **MIX)
    fams = family_content(cfg, np.eye(m, 4), size=64)
    cells = Counter()
    for name in ("pairs", "heldout"):
        for row, q in zip(fams[name].x_BxN, fams[name].q_B):
            tokens = Counter(row.tolist())
            other = next(t for t in tokens if t != q)
            cells[(int(q), other, tokens[q], name)] += 1
    assert set(cells.values()) == {1}
    by_pair = {(a, b): w for a, b, _, w in cells}
    assert len(by_pair) == len(pair_set_of(cfg, "train")[0]) + len(pair_set_of(cfg, "heldout")[0])
    assert len(cells) == len(by_pair) * (n - 1)
    val = set(zip(*pair_set_of(cfg, "validation")))
    assert not val & set(by_pair)  # validation pairs are for selection, never tested
    val_cells = validation_content(cfg)["pairs"]
    assert {(int(q), int(next(t for t in row if t != q))) for row, q in zip(val_cells.x_BxN, val_cells.q_B)} <= val


@pytest.mark.parametrize(("task", "inside"), [
    (TaskConfig(m=8), {"counts", "uniform"}),  # balanced only: the two-token inputs are off-support
    (TaskConfig(m=8, k=2), {"counts", "uniform", "pairs", "aligned"}),  # balanced over k = 2 draws them
    (TaskConfig(m=8, sampler="uniform"), {"uniform"}),
    (TaskConfig(m=8, holdout_pairs=0.2, **MIX), {"counts", "uniform", "pairs", "aligned"}),
    (TaskConfig(m=8, sampler="pairs"), {"pairs", "aligned"}),
])
def test_support_labels_come_from_the_training_distribution(task, inside):
    labels = {f: support_of(task, f) for f in ("counts", "pairs", "aligned", "uniform", "heldout")}
    assert {f for f, v in labels.items() if v} == inside
    split = worst_split(task, {"counts": 1.0, "pairs": 0.5, "aligned": 0.4, "uniform": 0.9, "heldout": 0.2})
    assert split["worst"] == min(v for f, v in {"counts": 1.0, "pairs": 0.5, "aligned": 0.4, "uniform": 0.9}.items()
                                 if f in inside)


def test_the_mixture_is_validated_in_one_line():
    for raw, field in (({"sampler": "mixture"}, "task.mixture"),
                       ({"sampler": "mixture", "mixture": ["balanced"], "weights": [1, 2]}, "task.weights"),
                       ({"sampler": "mixture", "mixture": ["balanced", "mixture"], "weights": [1, 1]}, "task.mixture"),
                       ({"sampler": "mixture", "mixture": ["pairs"], "weights": [0]}, "task.weights"),
                       ({"holdout_pairs": 0.5}, "task.holdout_pairs")):
        with pytest.raises(ConfigError, match=field.replace(".", r"\.")) as err:
            TaskConfig.from_dict(raw)
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="train.stop.watch"):
        StopConfig.from_dict({"watch": "loss"})


def test_a_new_fields_default_keeps_every_old_identity():
    assert RunConfig().hash() == RunConfig.from_dict({"task": {"holdout_pairs": 0.0, "mixture": []},
                                                      "train": {"stop": {"watch": "heldout"}}}).hash()


class Book:
    def __init__(self, last):
        self.last = last
        self.rules = [SupportRule(StopConfig(target=1.0, watch="support")) for _ in last]


def test_selection_by_the_worst_in_support_family_on_a_planted_case():
    """Setting A has the lower held-out loss and the higher i.i.d. accuracy but fails a family;
    setting B is exact on every in-support family: halving on support keeps B."""
    cfgs = [RunConfig.from_dict({"train": {"lr": lr, "seed": s, "steps": 900, "eval_every": 100},
                                 "halving": {"lr": [0.01, 0.001], "metric": "support", "rungs": [0.5]}})
            for lr in (0.01, 0.001) for s in (0, 1)]
    halving = SupportHalving.of(cfgs)
    a = {"loss": 0.01, "accuracy": 0.999, "support_worst": 0.80}
    b = {"loss": 0.20, "accuracy": 0.97, "support_worst": 1.00}
    book = Book([a, a, b, b])
    pruned = halving.after(halving.rung_steps[0], book)
    assert pruned == [0, 1]
    from counting.training.halving import Halving

    assert Halving.of(cfgs).after(halving.rung_steps[0], book) == [2, 3]  # by held-out loss: the other way


def test_the_support_rule_stops_on_the_worst_family_not_on_held_out_accuracy():
    rule = RULES["support"](StopConfig(target=1.0, patience=2, min_delta=0.001, watch="support"))
    rule.update(100, {"accuracy": 1.0, "loss": 0.0, "support_worst": 0.9})  # i.i.d. perfect: goes on
    assert rule.active
    rule.update(200, {"accuracy": 1.0, "loss": 0.0, "support_worst": 0.95})
    rule.update(300, {"accuracy": 1.0, "loss": 0.0, "support_worst": 0.95})
    assert rule.active  # one evaluation without a rise: patience 2
    rule.update(400, {"accuracy": 1.0, "loss": 0.0, "support_worst": 0.9504})
    assert (rule.reason, rule.stopped_at) == ("plateau", 400)
    done = RULES["support"](StopConfig(target=1.0, watch="support"))
    done.update(100, {"accuracy": 0.5, "loss": 3.0, "support_worst": 1.0})
    assert done.reason == "target"


def test_models_exact_during_training_but_not_at_their_stop_are_counted_as_lost():
    """exactness.csv's lost_models on a planted cell: one model exact at its stop, one exact on
    its validation families at step 500 but below analysis.exact on the test families at its
    stop, one never exact (censored): 2 exact during training, 1 of them lost."""
    from counting.analysis.exactness import survival_rows

    base = {"task": "qc", "d": 8, "m": 4}
    rows = [{**base, "seed": 0, "steps_to_exact": 300, "exact_censored": False, "worst": 1.0},
            {**base, "seed": 1, "steps_to_exact": 500, "exact_censored": False, "worst": 0.95},
            {**base, "seed": 2, "steps_to_exact": 1000, "exact_censored": True, "worst": 0.90}]
    (cell,) = survival_rows(rows)
    assert (cell["models"], cell["exact_models"], cell["lost_models"]) == (3, 2, 1)
