"""counting.inspect.interventions: the causal tests calibrated on the hand-built constructions
(the matching intervention succeeds on every pair, the other one fails) and on untrained
models (unconfirmed), and the counting layer's pieces (`anatomy`) against the models' own
forward pass."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from counting.config import ModelConfig, TaskConfig
from counting.inspect import diagnose
from counting.inspect.anatomy import anatomy
from counting.inspect.label import CAUSAL_MARGIN, causal_label
from counting.models.behrens import BehrensModel
from counting.models.transformer import Transformer
from counting.tasks import BOS_ID, NUM_SPECIAL, make_task
from counting.theory.count_attend import count_attend
from counting.theory.histogram import histogram_solution
from counting.theory.mfe import mfe_solution

N, EVAL = 8, 128


def task(name, m, **kw):
    return TaskConfig(name=name, m=m, n=N, eval_size=EVAL, **kw)


def untrained(t: TaskConfig, d: int, seed: int = 0, **kw) -> Transformer:
    spec = make_task(t)
    return Transformer(ModelConfig(d=d, w=32, **kw), spec.vocab_size(), spec.length, spec.num_classes,
                       nnx.Rngs(params=seed))


# (name, task, builder, expected causal label, the test that must succeed on every pair or None)
CALIBRATION = [
    ("histogram qc d=m", task("qc", 6), lambda t: histogram_solution(t).model, "histogram", "histogram"),
    ("histogram qc d>m", task("qc", 4), lambda t: histogram_solution(t, d=8).model, "histogram", "histogram"),
    ("histogram task", task("histogram", 6), lambda t: histogram_solution(t).model, "histogram", "histogram"),
    ("mfe two layers", task("mfe", 4), lambda t: mfe_solution(t).model, "histogram", "histogram"),
    ("count_attend m>d", task("qc", 12), lambda t: count_attend(t, 5).model, "count_attend", "count_attend"),
    ("count_attend m<d", task("qc", 4), lambda t: count_attend(t, 8).model, "count_attend", "count_attend"),
    ("count_attend head", task("qc", 12), lambda t: count_attend(t, 6, inverse="head").model, "count_attend",
     "count_attend"),
    ("untrained qc d>m", task("qc", 4), lambda t: untrained(t, 16), "unconfirmed", None),
    ("untrained qc d<m", task("qc", 16), lambda t: untrained(t, 4), "unconfirmed", None),
    ("untrained histogram", task("histogram", 4), lambda t: untrained(t, 8, seed=1), "unconfirmed", None),
    ("untrained mfe", task("mfe", 8), lambda t: untrained(t, 8, seed=2), "unconfirmed", None),
]
FAST = {"histogram qc d=m", "count_attend m>d", "untrained qc d<m"}
OTHER = {"histogram": "count_attend", "count_attend": "histogram"}


@pytest.mark.parametrize("name,t,build,expected,matching", [
    pytest.param(*c, id=c[0], marks=[] if c[0] in FAST else [pytest.mark.slow]) for c in CALIBRATION])
def test_interventions_confirm_each_construction_and_no_untrained_model(name, t, build, expected, matching):
    row = diagnose(t, build(t), interventions=True)
    rates = {k: row[k] for k in row if k.startswith("causal_")}
    assert row["causal_mechanism"] == expected, rates
    assert row["causal_pairs_histogram"] > 50 and row["causal_pairs_count_attend"] > 50, rates
    if matching is not None:
        assert row[f"causal_{matching}"] == 1.0, rates  # every pair
        assert row[f"causal_{OTHER[matching]}"] <= 0.05, rates  # the other mechanism's test fails
        assert row[f"causal_{matching}_control"] <= 1.0 - CAUSAL_MARGIN, rates
        assert abs(row["causal_K"] - 1.0) < 0.01, rates  # BOS weighs as one match in both constructions
    else:
        for test in ("count_attend", "histogram"):
            assert row[f"causal_{test}"] < 0.2, rates


def test_causal_label_needs_the_rate_and_its_lead_over_the_control():
    base = {"causal_count_attend": 0.9, "causal_count_attend_control": 0.1, "causal_histogram": 0.2,
            "causal_histogram_control": 0.1}
    assert causal_label(base) == "count_attend"
    assert causal_label({**base, "causal_count_attend_control": 0.8}) == "unconfirmed"  # no lead over chance
    assert causal_label({**base, "causal_count_attend": 0.4}) == "unconfirmed"
    assert causal_label({**base, "causal_histogram": 0.95}) == "histogram"  # both pass: the higher rate
    assert causal_label({**base, "causal_count_attend": math.nan}) == "unconfirmed"


@pytest.mark.slow  # one of the fast tier's slowest (21-33 s beside a training run; issue 32)
def test_count_attend_test_does_not_apply_without_bos_and_says_so():
    t = task("qc", 4, bos=False)
    row = diagnose(t, untrained(t, 8), interventions=True)
    assert math.isnan(row["causal_count_attend"]) and row["causal_pairs_count_attend"] == 0
    assert "no BOS" in row["causal_note"]
    assert row["causal_pairs_histogram"] > 0 and np.isfinite(row["causal_histogram"])


# --- the counting layer's pieces reproduce each model's own forward pass -------------------

PIECES = [
    ("transformer pre-LN learned", task("qc", 5), {"d": 8, "H": 2, "L": 1}),
    ("transformer two layers causal", task("histogram", 5), {"d": 8, "H": 2, "L": 2, "causal": True,
                                                             "pos": "sinusoidal"}),
    ("transformer linear rope", task("mfe", 5), {"d": 8, "attention": "linear", "pos": "rope", "L": 2}),
]
BEHRENS = ["dot+softmax", "linear", "dotBOS"]


@pytest.mark.parametrize("name,t,kw", [pytest.param(*c, id=c[0]) for c in PIECES])
def test_pieces_reproduce_the_transformer(name, t, kw):
    model = untrained(t, kw.pop("d"), **kw)
    _check_pieces(model, t)


@pytest.mark.parametrize("arch", BEHRENS)
def test_pieces_reproduce_the_behrens_models(arch):
    t = task("histogram", 6, bos=arch.startswith("dotBOS"))
    spec = make_task(t)
    model = BehrensModel(ModelConfig(arch=arch, d=8, w=16, pos="none", norm="none"), spec.vocab_size(), spec.length,
                         spec.num_classes, nnx.Rngs(params=0))
    _check_pieces(model, t)
    row = diagnose(t, model, interventions=True)  # runs what applies, leaves the rest empty
    assert math.isnan(row["norm_ov"]) and math.isnan(row["norm_head"]) and np.isfinite(row["norm_mlp"])
    assert np.isfinite(row["causal_histogram"]) and row["mechanism"] in ("histogram", "count_attend", "neither")


def _check_pieces(model, t: TaskConfig) -> None:
    spec = make_task(t)
    rng = np.random.default_rng(0)
    tokens_BxT = rng.integers(NUM_SPECIAL, NUM_SPECIAL + t.m, (16, spec.length))
    tokens_BxT[:, 0] = BOS_ID if t.bos else tokens_BxT[:, 0]
    at_R = spec.answer_positions
    graphdef, state = nnx.split(model)

    @jax.jit
    def both(state, tokens_BxT):
        net = nnx.merge(graphdef, state)
        parts = anatomy(net)
        x, att, v = parts.layer0(net, tokens_BxT)
        return parts.finish(net, x, parts.mix(net, att, v), at_R), net(tokens_BxT, at_R)

    pieces, own = both(state, jnp.asarray(tokens_BxT))
    np.testing.assert_allclose(np.asarray(pieces), np.asarray(own), rtol=1e-5, atol=1e-5)
