"""The worst-case test families (counting.tasks.families): each has the structure it claims (small
cases enumerated exactly, labels checked by the numpy reference labeller), and they are
calibrated on the constructions: the histogram construction at d >= m and CountAttend at
m > d are exact on every family; with m = d + 2 Welch-bound-meeting embeddings the histogram
readout fails on the aligned family exactly past the n the theory module predicts."""

from collections import Counter

import jax.numpy as jnp
import numpy as np
import pytest
from reference import expected

from counting.config import TaskConfig
from counting.evaluation.evaluate import family_batch
from counting.tasks import make_task
from counting.tasks.families import FAMILIES, aligned, counts, family_content, most_aligned, pairs, uniform, worst_of

RNG = lambda i=0: np.random.default_rng(i)


def test_counts_holds_every_count_equally_often():
    for name, c_range in (("qc", range(1, 7)), ("histogram", range(1, 7)), ("mfe", range(2, 7))):
        task = TaskConfig(name=name, m=3, n=6)
        c = counts(task, 60, RNG())
        x = c.x_BxN
        found = [int((row == q).sum()) if name != "mfe" else max(Counter(row).values()) for row, q in zip(x, c.q_B)]
        tally = Counter(found)
        assert set(tally) == set(c_range), (name, tally)
        assert len(set(tally.values())) == 1  # equally often
        if name == "mfe":  # the planted token is the most frequent one: no other exceeds it
            assert all(Counter(row)[q] == max(Counter(row).values()) for row, q in zip(x, c.q_B))


def test_pairs_enumerates_every_ordered_pair_at_every_split_with_two_tokens_only():
    task = TaskConfig(name="qc", m=4, n=5)
    c = pairs(task, 30, RNG())  # enumerated: the size is not a cap
    assert len(c.x_BxN) == 4 * 3 * 4  # m (m - 1) (n - 1)
    seen = set()
    for row, q in zip(c.x_BxN, c.q_B):
        tokens = Counter(row.tolist())
        assert q in tokens and len(tokens) == 2
        other = next(t for t in tokens if t != q)
        seen.add((int(q), other, tokens[q]))
    assert seen == {(a, b, c) for a in range(4) for b in range(4) if a != b for c in range(1, 5)}  # each cell once


def test_aligned_pairs_each_token_with_its_most_aligned_rival():
    E = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-0.1, -0.95]])
    assert most_aligned(E).tolist() == [1, 0, 3, 2]  # |cosine|: an anti-aligned rival counts
    task = TaskConfig(name="qc", m=3, n=4)
    c = aligned(task, 12, RNG(), E[:3])
    for row, q in zip(c.x_BxN, c.q_B):
        assert set(row.tolist()) <= {int(q), int(most_aligned(E[:3])[q])}


def test_uniform_stays_inside_each_rows_k_tokens():
    task = TaskConfig(name="qc", m=10, n=8, k=3)
    c = uniform(task, 50, RNG())
    assert all(len(set(row.tolist())) <= 3 for row in c.x_BxN)
    assert all(q in row for row, q in zip(c.x_BxN, c.q_B))


@pytest.mark.parametrize("name", ["qc", "mfe", "histogram"])
def test_families_are_labelled_by_the_task_as_the_reference_labeller_does(name):
    task_cfg = TaskConfig(name=name, m=4, n=6, bos=True)
    task = make_task(task_cfg)
    content = family_content(task_cfg, np.eye(4, 3), size=64, seed=3)
    assert set(content) == set(FAMILIES) - {"heldout"}  # nothing held out
    for fam in content.values():
        batch, rows = family_batch(task, fam, 64)
        tokens, labels, mask = (np.asarray(a) for a in batch)
        for b in range(rows):
            want, at = expected(tokens[b], name, 6, True, "last")
            assert labels[b, at].tolist() == want and mask[b, at].all()
        assert not mask[rows:].any()  # padding rows never count


def accuracy_on(construction, task_cfg, content, size=512):
    from counting.theory.weights import forward

    task = make_task(task_cfg)
    batch, _rows = family_batch(task, content, size)
    at = task.answer_positions
    _, logits = forward(construction.model, np.asarray(batch.tokens_BxT), at)
    labels = np.asarray(batch.labels_BxT)[:, list(at)]
    mask = np.asarray(batch.mask_BxT)[:, list(at)]
    return float(((logits.argmax(-1) == labels) & mask).sum() / mask.sum())


@pytest.mark.parametrize("d_extra", [0, 2])
def test_the_histogram_construction_at_d_at_least_m_is_exact_on_every_family(d_extra):
    from counting.theory.histogram import histogram_solution

    task = TaskConfig(name="qc", m=5, n=12, bos=True)
    c = histogram_solution(task, d=5 + d_extra)
    embed = np.asarray(c.model.embed.embedding[...])[2:7]
    acc = {name: accuracy_on(c, task, fam) for name, fam in family_content(task, embed, 512).items()}
    assert worst_of(acc) == 1.0, acc


def test_countattend_past_d_equals_m_is_exact_on_every_family():
    from counting.theory.count_attend import count_attend

    task = TaskConfig(name="qc", m=12, n=10, bos=True)
    c = count_attend(task, d=6)
    embed = np.asarray(c.model.embed.embedding[...])[2:14]
    acc = {name: accuracy_on(c, task, fam) for name, fam in family_content(task, embed, 512).items()}
    assert worst_of(acc) == 1.0, acc


def projection_readout_exact(E: np.ndarray, task: TaskConfig, content) -> np.ndarray:
    """The histogram solution's own readout with unit embeddings E (theory.interference, claim 3):
    x = e_q + (e_q + sum_t h_t e_t) / T read on e_q, rounded; per sequence: is it the count?"""
    n = task.n
    T = n + 1
    x_BxN, q_B = content.x_BxN, content.q_B
    e_q = E[q_B]
    hist_sum = E[x_BxN].sum(axis=1)
    read = T * (np.einsum("bd,bd->b", e_q, e_q + (e_q + hist_sum) / T) - 1.0) - 1.0
    return np.rint(read) == (x_BxN == q_B[:, None]).sum(1)


def test_welch_embeddings_past_d_fail_on_the_aligned_family_where_the_theory_says():
    """theory.interference (claim 3): the projection readout reads c + I with I = (n - c) <e_q, e_o>
    in the worst case (n - c copies of q's most coherent rival o); QC's answer is at least 1, so
    it is exact iff (n - 1) mu < 1/2, mu the coherence. The aligned family holds that case."""
    import math

    from counting.theory.coherence import coherence, lower_bound, optimised

    d = 4
    E = optimised(d + 2, d, seed=0, steps=1500)
    mu = coherence(E)
    assert lower_bound(d + 2, d) <= mu <= 1.1 * lower_bound(d + 2, d)  # near the Welch/orthoplex bound
    n_max = math.ceil(0.5 / mu)  # the largest n with (n - 1) mu < 1/2
    assert 2 <= n_max < 12
    for n, exact in ((n_max, True), (n_max + 1, False)):
        task = TaskConfig(name="qc", m=d + 2, n=n, bos=False)
        fam = family_content(task, E, 4096, seed=1)
        ok = {name: projection_readout_exact(E, task, f).mean() for name, f in fam.items()}
        if exact:
            assert min(ok.values()) == 1.0, (n, ok)
        else:
            assert ok["aligned"] < 1.0, (n, ok)  # the theory's hard inputs are in the aligned family
            assert worst_of(ok) < 1.0
    assert jnp.isfinite(jnp.asarray(E)).all()
