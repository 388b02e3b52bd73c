import itertools

import jax
import numpy as np
import pytest
from reference import expected, parse

from counting.config import TaskConfig
from counting.tasks import NUM_SPECIAL, REGISTRY, make_task

CASES = [
    dict(name=name, sampler=sampler, bos=bos, query=query)
    for name, sampler, bos in itertools.product(REGISTRY, ("uniform", "balanced"), (True, False))
    for query in (("last", "sep") if name == "qc" else ("last",))
]


def sample(cfg: TaskConfig, batch: int, seed: int = 0, **kw):
    task = make_task(cfg)
    b = task.sample_jit(jax.random.PRNGKey(seed), batch, kw.get("m"), kw.get("k"))
    return task, np.asarray(b.tokens_BxT), np.asarray(b.labels_BxT), np.asarray(b.mask_BxT)


# The fast tier keeps one size and one case per task (QC also with its separator query); the
# rest of the product runs in the full suite.
FAST_CASES = [dict(name="qc", sampler="balanced", bos=True, query="last"), dict(name="qc", sampler="uniform", bos=False, query="sep"),
              dict(name="mfe", sampler="uniform", bos=True, query="last"), dict(name="histogram", sampler="balanced", bos=True, query="last")]


def sampler_params():
    for m, n, k in [(5, 7, None), (40, 12, 6), (2, 1, None)]:
        for case in CASES:
            fast = (m, n, k) == (5, 7, None) and case in FAST_CASES
            yield pytest.param(case, m, n, k, id="-".join(str(v) for v in (m, n, k, *case.values())),
                               marks=() if fast else pytest.mark.slow)


@pytest.mark.parametrize("case,m,n,k", list(sampler_params()))
def test_sampler_matches_numpy_reference(case, m, n, k):
    cfg = TaskConfig(m=m, n=n, k=k, **case)
    task, tokens, labels, mask = sample(cfg, 2000, seed=m * 100 + n)
    assert tokens.shape == (2000, task.length) and tokens.dtype == np.int32
    for b in range(len(tokens)):
        want_labels, want_pos = expected(tokens[b], cfg.name, n, cfg.bos, cfg.query)
        assert list(np.flatnonzero(mask[b])) == want_pos
        assert list(labels[b, want_pos]) == want_labels
        content, q = parse(tokens[b], cfg.name, n, cfg.bos, cfg.query)
        assert all(0 <= x < m for x in content)
        assert len(set(content)) <= cfg.k_eff
        if q is not None:
            assert q in content  # QC queries a token of the sequence: answers in 1..n
    assert labels[mask].min() >= 0 and labels[mask].max() <= n


@pytest.mark.parametrize("name", ["qc", "mfe", "histogram"])
def test_balanced_sampler_balances_the_answer(name):
    """QC: answers uniform on 1..n. MFE: uniform on ceil(n/k)..n. Histogram: the planted
    count is uniform on 1..n (seen as the max count when k >> n makes other repeats rare)."""
    n, N = 8, 8000
    m, k = (400, None) if name == "histogram" else (12, 4)
    cfg = TaskConfig(name=name, m=m, n=n, k=k, sampler="balanced")
    _task, _tokens, labels, mask = sample(cfg, N, seed=3)
    if name == "histogram":
        answers = labels.max(-1)
    else:
        answers = labels[mask]
    lo = -(-n // k) if name == "mfe" else 1
    support = np.arange(lo, n + 1)
    freq = np.bincount(answers, minlength=n + 1)
    assert freq[:lo].sum() == 0
    expect = N / len(support)
    tol = 5 * np.sqrt(expect) + (0.03 * N if name == "histogram" else 0)  # rare repeats of others
    assert np.all(np.abs(freq[support] - expect) < tol), freq


def test_uniform_qc_is_unbalanced_when_m_exceeds_n():
    """The reason the balanced sampler exists: with m >> n almost every answer is 1."""
    _task, _tokens, labels, mask = sample(TaskConfig(name="qc", m=256, n=8, sampler="uniform"), 4000)
    assert np.mean(labels[mask] == 1) > 0.9


def test_tokens_stay_below_a_traced_m_inside_a_larger_vocabulary():
    cfg = TaskConfig(name="qc", m=64, n=16, sampler="balanced")
    _task, tokens, _labels, _mask = sample(cfg, 2000, m=np.int32(5), k=np.int32(5))
    assert tokens[:, 1:].max() - NUM_SPECIAL < 5


def test_eval_set_is_fixed_and_not_the_training_stream():
    cfg = TaskConfig(name="qc", m=8, n=8, eval_size=256)
    task = make_task(cfg)
    a, b = task.eval_set(), task.eval_set()
    np.testing.assert_array_equal(a.tokens_BxT, b.tokens_BxT)
    train = task.sample_jit(jax.random.PRNGKey(0), 256, None, None)
    assert not np.array_equal(a.tokens_BxT, train.tokens_BxT)
    other = make_task(TaskConfig(name="qc", m=8, n=8, eval_size=256, eval_seed=7)).eval_set()
    assert not np.array_equal(a.tokens_BxT, other.tokens_BxT)


@pytest.mark.parametrize("name,sampler", [
    ("qc", "balanced"),
    *(pytest.param(*c, marks=pytest.mark.slow)
      for c in [("qc", "uniform"), ("mfe", "uniform"), ("mfe", "balanced"), ("histogram", "uniform"), ("histogram", "balanced")]),
])
def test_padding_the_vocabulary_leaves_the_data_unchanged(name, sampler):
    """A cohort samples every member from one task (its first member's, padded to the largest
    m) with the member's m and k traced; a member must see the data it would see alone."""
    _, alone, la, _ = sample(TaskConfig(name=name, m=5, n=9, sampler=sampler), 500, seed=4)
    cohort = TaskConfig(name=name, m=37, n=9, sampler=sampler)
    _, padded, lp, _ = sample(cohort, 500, seed=4, m=np.int32(5), k=np.int32(5))
    np.testing.assert_array_equal(alone, padded)
    np.testing.assert_array_equal(la, lp)
