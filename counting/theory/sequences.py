"""Test sequences for the constructions: adversarial families and cheap random draws, with
their true counts, in the token layout of `counting.tasks` (BOS = 0, SEP = 1, content
token i -> id i + 2).

Built in numpy rather than by the task samplers so that n can reach 10^6 (the samplers
compare all pairs of positions). `from_sampler` draws from the suite's own samplers for
small n, so the constructions are also checked on exactly the data models are trained on.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np

from counting.config import TaskConfig
from counting.tasks import BOS_ID, NUM_SPECIAL, SEP_ID, class_of, make_task

ALL_COUNTS_UP_TO = 160  # below this n every count 0..n gets its own adversarial sequence


class Sequences(NamedTuple):
    """Test sequences of a construction: their token ids and the true counts at the task's answer positions."""

    tokens_BxT: np.ndarray  # int32 ids
    labels_BxA: np.ndarray  # int64 true counts at the task's answer positions


def counts_to_test(n: int, rng: np.random.Generator) -> np.ndarray:
    """Every c in 0..n for small n; otherwise both ends, an even grid and random values."""
    if n + 1 <= ALL_COUNTS_UP_TO:
        return np.arange(n + 1)
    ends = np.r_[np.arange(9), np.arange(n - 8, n + 1)]
    return np.unique(np.r_[ends, np.linspace(0, n, 33).round(), rng.integers(0, n + 1, 16)]).astype(np.int64)


def frame(content_BxN: np.ndarray, task: TaskConfig) -> np.ndarray:
    """Content indices -> token ids with BOS in front and, for QC, nothing behind (the
    query is appended by the caller)."""
    B = content_BxN.shape[0]
    parts = [np.full((B, 1), BOS_ID)] if task.bos else []
    parts.append(content_BxN + NUM_SPECIAL)
    return np.concatenate(parts, axis=1).astype(np.int32)


def qc(content_BxN: np.ndarray, q_B: np.ndarray, task: TaskConfig) -> Sequences:
    """QC sequences: the count of q among the content (0 allowed: q need not occur)."""
    B = len(q_B)
    tail = [np.full((B, 1), SEP_ID)] if task.query == "sep" else []
    tokens = np.concatenate([frame(content_BxN, task), *tail, (q_B + NUM_SPECIAL)[:, None]], axis=1)
    labels = (content_BxN == q_B[:, None]).sum(1)[:, None]
    return Sequences(tokens.astype(np.int32), labels.astype(np.int64))


def own_counts(content_BxN: np.ndarray) -> np.ndarray:
    """count_BxN: how often each position's token occurs in its row (sort-based, O(n log n))."""
    out = np.empty_like(content_BxN, dtype=np.int64)
    for b, row in enumerate(content_BxN):
        _, inverse, counts = np.unique(row, return_inverse=True, return_counts=True)
        out[b] = counts[inverse]
    return out


def content_task(content_BxN: np.ndarray, task: TaskConfig) -> Sequences:
    """Histogram (a count at every content position) or MFE (the largest count, at the end)."""
    counts_BxN = own_counts(content_BxN)
    labels = class_of(task.name).content_labels(counts_BxN)  # the task's own labels
    return Sequences(frame(content_BxN, task), labels)


def two_token_rows(n: int, a_B: np.ndarray, b_B: np.ndarray, c_B: np.ndarray, rng) -> np.ndarray:
    """content_BxN: c copies of a and n - c copies of b, in a random order per row."""
    B = len(c_B)
    is_a_BxN = rng.random((B, n)).argsort(1) < c_B[:, None]
    return np.where(is_a_BxN, a_B[:, None], b_B[:, None]).astype(np.int64)


def cycling_rows(n: int, m: int, B: int, rng) -> np.ndarray:
    """content_BxN: tokens 0, 1, .., m-1, 0, 1, .. (as distinct as m allows), shuffled."""
    base_N = np.arange(n) % m
    return np.stack([rng.permutation(base_N) for _ in range(B)]).astype(np.int64)


def adversarial(task: TaskConfig, rival: np.ndarray | None = None, seed: int = 0, worst: int = 0) -> Sequences:
    """The hard cases: for each tested c, c copies of one token and n - c copies of its
    `rival` (for QC the query's most coherent other token, default the next token), once
    with the token varying with c and once with the token `worst` (for QC: the query whose
    rival leaks most); all one token; one token n - 1 times plus another; as many distinct
    tokens as m allows."""
    n, m = task.n, task.m
    rng = np.random.default_rng(seed)
    c = counts_to_test(n, rng)
    c_B = np.r_[c, c]
    a_B = np.r_[c % m, np.full(len(c), worst)]
    rival = (np.arange(m) + 1) % m if rival is None else np.asarray(rival)
    content = two_token_rows(n, a_B, rival[a_B], c_B, rng)
    spread = cycling_rows(n, m, 2, rng)
    if class_of(task.name).asks_query():
        absent_q = np.array([m - 1])  # a token the cycling row may lack (when n < m)
        return concat([qc(content, a_B, task), qc(spread, np.array([0, 0]), task),
                       qc(spread[:1], absent_q, task)])
    return content_task(np.concatenate([content, spread]), task)


def uniform(task: TaskConfig, batch: int, seed: int = 0) -> Sequences:
    """Tokens i.i.d. uniform over [m]; for QC the query is uniform over [m] too (it may be
    absent, count 0) in half the rows and copied from the sequence in the other half."""
    rng = np.random.default_rng(seed)
    content = rng.integers(0, task.m, (batch, task.n))
    if not class_of(task.name).asks_query():
        return content_task(content, task)
    copied = content[np.arange(batch), rng.integers(0, task.n, batch)]
    q = np.where(np.arange(batch) % 2 == 0, rng.integers(0, task.m, batch), copied)
    return qc(content, q, task)


def balanced(task: TaskConfig, batch: int, seed: int = 0) -> Sequences:
    """Count-balanced: c uniform on 0..n copies of one token, the rest uniform over [m]
    (so the true count may exceed c when the others hit the same token)."""
    rng = np.random.default_rng(seed)
    n, m = task.n, task.m
    q = rng.integers(0, m, batch)
    c = rng.integers(0, n + 1, batch)
    content = np.where(rng.random((batch, n)).argsort(1) < c[:, None], q[:, None], rng.integers(0, m, (batch, n)))
    return qc(content, q, task) if class_of(task.name).asks_query() else content_task(content, task)


def from_sampler(task: TaskConfig, batch: int, seed: int = 0) -> Sequences:
    """The suite's own sampler (small n only): the data trained models see."""
    t = make_task(task)
    b = t.sample_jit(jax.random.PRNGKey(seed), batch, None, None)
    mask = np.asarray(b.mask_BxT)
    labels = np.asarray(b.labels_BxT)[:, mask[0]]
    return Sequences(np.asarray(b.tokens_BxT), labels.astype(np.int64))


def concat(parts: list[Sequences]) -> Sequences:
    """The sequences of every part, one after the other."""
    return Sequences(np.concatenate([p.tokens_BxT for p in parts]), np.concatenate([p.labels_BxA for p in parts]))


def repeat_twice(tokens_BxT: np.ndarray) -> np.ndarray:
    """x -> x x: the whole token sequence written twice."""
    return np.concatenate([tokens_BxT, tokens_BxT], axis=1)
