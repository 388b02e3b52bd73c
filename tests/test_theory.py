"""The constructions of counting.theory are exact: weights of the suite's own Transformer,
run through its own forward, checked on adversarial, random and sampler-drawn sequences."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from counting.config import ModelConfig, TaskConfig
from counting.theory import sequences
from counting.theory.count_attend import INVERSES, count_attend, default_directions, rivals, worst_query
from counting.theory.histogram import histogram_solution
from counting.theory.mfe import mfe_solution
from counting.theory.positional import histogram_on_repeat, random_configs, random_model, repeat_gap
from counting.theory.precision import exactness
from counting.theory.weights import forward

# The suite's own samplers compile for every task config (seconds each): a few configs only.
SAMPLED = {TaskConfig("qc", m=5, n=7), TaskConfig("histogram", m=4, n=20), TaskConfig("mfe", m=4, n=30)}


@functools.cache
def sampled(task: TaskConfig) -> sequences.Sequences:
    return sequences.from_sampler(task, 48, seed=3)


def families(task: TaskConfig, adversarial: sequences.Sequences) -> sequences.Sequences:
    """Adversarial, uniform and count-balanced rows, and the suite's sampler for SAMPLED."""
    parts = [adversarial, sequences.uniform(task, 48, seed=1), sequences.balanced(task, 48, seed=2)]
    if task in SAMPLED:
        parts.append(sampled(task))
    return sequences.concat(parts)


def assert_exact(c, seqs: sequences.Sequences) -> None:
    x, logits = forward(c.model, seqs.tokens_BxT, c.answer_positions)
    wrong = np.argwhere(logits.argmax(-1) != seqs.labels_BxA)
    assert not len(wrong), f"{c.name}: {len(wrong)} wrong, first row {wrong[0][0]}, label {seqs.labels_BxA[tuple(wrong[0])]}"
    assert np.all(np.abs(c.readout(x) - seqs.labels_BxA) < 0.5)


@pytest.mark.parametrize("task,d", [
    (TaskConfig("qc", m=5, n=7), 5),
    (TaskConfig("qc", m=3, n=33, bos=False, query="sep"), 7),
    pytest.param(TaskConfig("histogram", m=4, n=20), 4, marks=pytest.mark.slow),
    (TaskConfig("histogram", m=2, n=9, bos=False), 3),
])
def test_histogram_solution_is_exact(task, d):
    c = histogram_solution(task, d)
    seqs = families(task, sequences.adversarial(task))
    if task.name == "qc":
        assert {0, task.n}.issubset(set(seqs.labels_BxA.ravel()))  # query absent; all one token
    assert_exact(c, seqs)


@pytest.mark.slow
def test_histogram_solution_is_exact_at_n_1000_in_float32_and_4096_in_float64():
    """d = m = 4, the tight construction, on a few hundred sequences per length. At n = 4096
    float32 still holds the count in the residual, but the head's logits (values ~ n,
    margin 1/n) need float64 (see precision.csv)."""
    for n in (1000, 4096):
        task = TaskConfig("qc", m=4, n=n)
        c = histogram_solution(task)
        assert c.model.cfg.d == 4 and c.model.cfg.w == 4
        seqs = sequences.concat([sequences.adversarial(task), sequences.uniform(task, 128), sequences.balanced(task, 128)])
        assert len(seqs.tokens_BxT) >= 300
        f32 = exactness(c, "float32", seqs)
        assert f32 == {"model": n == 1000, "readout": True}
        if n == 4096:
            assert exactness(c, "float64", seqs)["model"]
            assert not jax.config.jax_enable_x64  # the float64 scope is undone


def test_histogram_solution_refuses_d_below_m():
    with pytest.raises(ValueError, match="d >= m"):
        histogram_solution(TaskConfig("qc", m=5, n=4), d=4)


@pytest.mark.parametrize("inverse,task", [(inv, TaskConfig("qc", m=4, n=40)) for inv in INVERSES if inv != "quarter"]
                         + [pytest.param("quarter", TaskConfig("qc", m=4, n=40), marks=pytest.mark.slow),
                            pytest.param("interp", TaskConfig("qc", m=5, n=7), marks=pytest.mark.slow)])
def test_count_attend_is_exact_with_orthogonal_directions(inverse, task):
    u = default_directions(task.m, 4)
    c = count_attend(task, 6, inverse, u=u)
    assert_exact(c, families(task, sequences.adversarial(task, rivals(u), worst=worst_query(u))))


@pytest.mark.parametrize("m,d,inverse,query", [(64, 4, "head", "last"),
                                               pytest.param(64, 4, "interp", "sep", marks=pytest.mark.slow),
                                               pytest.param(40, 5, "min", "last", marks=pytest.mark.slow)])
def test_count_attend_is_exact_with_m_above_d(m, d, inverse, query):
    task = TaskConfig("qc", m=m, n=24, query=query)
    u = default_directions(m, d - 2)
    c = count_attend(task, d, inverse, u=u)
    assert_exact(c, families(task, sequences.adversarial(task, rivals(u), worst=worst_query(u))))


def test_count_attend_needs_bos_and_three_dimensions():
    with pytest.raises(ValueError, match="BOS"):
        count_attend(TaskConfig("qc", m=4, n=8, bos=False), 6)
    with pytest.raises(ValueError, match="d >= 3"):
        count_attend(TaskConfig("qc", m=4, n=8), 2)


@pytest.mark.parametrize("task", [pytest.param(TaskConfig("mfe", m=4, n=30), marks=pytest.mark.slow),
                                  TaskConfig("mfe", m=6, n=13, bos=False),
                                  TaskConfig("mfe", m=2, n=1)])
def test_mfe_solution_is_exact(task):
    c = mfe_solution(task)
    assert c.model.cfg.d == task.m + 1
    assert_exact(c, families(task, sequences.adversarial(task)))


def test_forward_is_the_models_own_call():
    """`forward` (answer positions, any dtype) returns exactly what Transformer.__call__ does."""
    task = TaskConfig("mfe", m=3, n=6)
    c = mfe_solution(task)
    seqs = sequences.uniform(task, 4)
    _, logits = forward(c.model, seqs.tokens_BxT, c.answer_positions)
    np.testing.assert_array_equal(logits, np.asarray(c.model(jnp.asarray(seqs.tokens_BxT), c.answer_positions)))


@pytest.mark.slow
def test_without_positions_or_mask_x_and_xx_look_the_same():
    """Property over random models (d, L, H, w, norm, softmax vary; three seeds each) and
    random sequences: identical logits at p, p and p + T of x x. A causal mask breaks it,
    so the check can fail."""
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 6, (4, 9)).astype(np.int32)
    for cfg in random_configs(4, seed=1):
        for seed in range(3):
            gap, agree = repeat_gap(random_model(cfg, 6, 64, 10, seed=seed), tokens)
            assert gap < 1e-5 and agree, (cfg, seed)
    causal = ModelConfig(d=8, L=1, H=1, w=16, pos="none", causal=True, norm="none")
    gap, _ = repeat_gap(random_model(causal, 6, 64, 10, seed=0), tokens)
    assert gap > 1e-2


def test_an_exact_counter_without_positions_is_wrong_on_x_x():
    """The histogram construction (no BOS, no positions) is exact on x and predicts the same
    counts on x x, where every count doubled."""
    r = histogram_on_repeat(m=3, n=10, batch=8, seed=0)
    assert r["accuracy_x"] == 1.0 and r["agreement"] == 1.0 and r["accuracy_xx"] == 0.0
