"""Worst-case test families: beside the i.i.d. held-out set, the structured inputs the theory
says are hard, for every task. A model counts *exactly* when its accuracy on the worst family
reaches `analysis.exact` (0.99 by default).

    counts    every count equally often: QC and histogram c = 1..n (c copies of the query or of
              a planted token, the other positions from the other tokens); MFE the largest count
              c = ceil(n/m)..n (the other tokens from a pool holding c copies of each)
    pairs     two tokens only, for every ordered pair (a, b) of content tokens (a sample of them
              where there are too many) at every split: c copies of a and n - c of b (QC asks for
              a; MFE's answer max(c, n - c) puts the near-ties at c = n/2; the histogram labels c
              and n - c)
    aligned   the same two-token sequences with, for each token a, the one other token whose
              learned embedding is most aligned with a's (largest |cosine|; chosen per model):
              where the Welch bound forces interference, here it is largest
    uniform   i.i.d. uniform tokens over the model's k (QC's query copied from a random position)

Families are built in numpy from `families.seed` (deterministic, the same for every model of
a shape but `aligned`), framed and labelled by the task's own `batch_of`, and evaluated like
the held-out set. Results: runs/<hash>/families.json per model, `families.csv` (one row per
model and family) and the columns `worst` and `family.<name>` of table.csv.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from counting.config import TaskConfig

FAMILIES = ("counts", "pairs", "aligned", "uniform")
FILE, TABLE = "families.json", "families.csv"


@dataclasses.dataclass(frozen=True)
class Content:
    """A family's sequences as content token indices (x_BxN) and QC queries (q_B)."""

    x_BxN: np.ndarray
    q_B: np.ndarray


def _shuffled(rng: np.random.Generator, x_BxN: np.ndarray) -> np.ndarray:
    order_BxN = np.argsort(rng.random(x_BxN.shape), axis=1)
    return np.take_along_axis(x_BxN, order_BxN, axis=1)


def _other(rng: np.random.Generator, a_B: np.ndarray, m: int, n: int) -> np.ndarray:
    """x_BxN i.i.d. uniform over [0, m) without each row's a."""
    x_BxN = rng.integers(0, m - 1, size=(len(a_B), n))
    return x_BxN + (x_BxN >= a_B[:, None])


def counts(task: TaskConfig, size: int, rng: np.random.Generator) -> Content:
    n, m = task.n, task.m
    if task.name == "mfe":
        c_values = np.arange(-(-n // m), n + 1)
    else:
        c_values = np.arange(1, n + 1)
    c_B = np.resize(c_values, max(size, len(c_values)))
    a_B = rng.integers(0, m, size=len(c_B))
    if task.name == "mfe":  # others from a pool of c copies of each other token: none exceeds c
        rows = []
        for a, c in zip(a_B, c_B):
            pool = np.repeat(np.delete(np.arange(m), a), c)
            rows.append(np.concatenate([np.full(c, a), rng.choice(pool, n - c, replace=False)]))
        x_BxN = np.stack(rows)
    else:
        x_BxN = np.where(np.arange(n)[None, :] < c_B[:, None], a_B[:, None], _other(rng, a_B, m, n))
    return Content(_shuffled(rng, x_BxN), a_B)


def two_tokens(a_P: np.ndarray, b_P: np.ndarray, n: int, rng: np.random.Generator) -> Content:
    """Every pair (a, b) at every split: c copies of a and n - c of b, c = 1..n - 1, and all a."""
    c_C = np.arange(1, n + 1)
    a_B, b_B = np.repeat(a_P, len(c_C)), np.repeat(b_P, len(c_C))
    c_B = np.tile(c_C, len(a_P))
    x_BxN = np.where(np.arange(n)[None, :] < c_B[:, None], a_B[:, None], b_B[:, None])
    return Content(_shuffled(rng, x_BxN), a_B)


def pairs(task: TaskConfig, size: int, rng: np.random.Generator) -> Content:
    m, n = task.m, task.n
    a_P, b_P = (g.ravel() for g in np.meshgrid(np.arange(m), np.arange(m), indexing="ij"))
    keep = a_P != b_P
    a_P, b_P = a_P[keep], b_P[keep]
    if len(a_P) * n > size:  # too many pairs: a sample of them, each at every split
        pick = np.sort(rng.choice(len(a_P), max(size // n, 1), replace=False))
        a_P, b_P = a_P[pick], b_P[pick]
    return two_tokens(a_P, b_P, n, rng)


def most_aligned(embed_MxD: np.ndarray) -> np.ndarray:
    """b_M: for each content token, the other token whose embedding has the largest |cosine|
    with it (an anti-aligned rival interferes as much as an aligned one)."""
    e = embed_MxD / np.maximum(np.linalg.norm(embed_MxD, axis=1, keepdims=True), 1e-12)
    cos_MxM = np.abs(e @ e.T)
    np.fill_diagonal(cos_MxM, -np.inf)
    return np.argmax(cos_MxM, axis=1)


def aligned(task: TaskConfig, size: int, rng: np.random.Generator, embed_MxD: np.ndarray) -> Content:
    a_M = np.arange(task.m)
    b_M = most_aligned(embed_MxD)
    reps = max(1, size // (task.m * task.n))
    return two_tokens(np.tile(a_M, reps), np.tile(b_M, reps), task.n, rng)


def uniform(task: TaskConfig, size: int, rng: np.random.Generator) -> Content:
    m, k, n = task.m, task.k_eff, task.n
    tok_BxK = np.argsort(rng.random((size, m)), axis=1)[:, :k]  # each row's k allowed tokens
    x_BxN = np.take_along_axis(tok_BxK, rng.integers(0, k, size=(size, n)), axis=1)
    return Content(x_BxN, x_BxN[np.arange(size), rng.integers(0, n, size=size)])


BUILDERS: dict[str, Callable] = {"counts": counts, "pairs": pairs, "uniform": uniform}  # aligned needs the model


def family_content(task: TaskConfig, embed_MxD: np.ndarray | None, size: int = 1024, seed: int = 0) -> dict[str, Content]:
    """Every family's content for one model (`aligned` only with its content embedding)."""
    out = {}
    for i, name in enumerate(FAMILIES):
        rng = np.random.default_rng([seed, i])
        if name == "aligned":
            if embed_MxD is not None:
                out[name] = aligned(task, size, rng, embed_MxD)
        else:
            out[name] = BUILDERS[name](task, size, rng)
    return out


def worst_of(accuracy: dict[str, float]) -> float:
    """The worst family's accuracy: what exact counting is read from."""
    return float(min(accuracy.values())) if accuracy else float("nan")
