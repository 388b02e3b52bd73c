"""Count-balanced and uniform sequences over a pool of m items (numpy only, seeded), the
same samplers as the training tasks (counting.tasks.qc, counting.tasks.mfe):

QC `uniform`: items i.i.d. over the pool, the query copied from a random position (answer in
1..n). QC `balanced`: the answer c is drawn from 1..n first, c random positions get the query
and the rest are drawn from the other m - 1 items (m = 1 forces c = n).
MFE `uniform`: items i.i.d. MFE `balanced`: c is drawn from ceil(n/m)..n; one item gets c
copies and the other n - c positions are drawn without replacement from c copies of each
of the other m - 1 items, so no item exceeds c.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Sample = tuple[np.ndarray, int | None, int]  # (item indices into the pool, query index or None, answer)


def qc(rng: np.random.Generator, m: int, n: int, sampler: str) -> Sample:
    if sampler == "uniform" or m == 1:
        x_N = rng.integers(0, m, n)
        q = int(x_N[rng.integers(0, n)])
    else:
        q = int(rng.integers(0, m))
        c = int(rng.integers(1, n + 1))
        others_O = np.delete(np.arange(m), q)
        x_N = others_O[rng.integers(0, m - 1, n)]
        x_N[rng.permutation(n)[:c]] = q
    return x_N, q, int((x_N == q).sum())


def mfe(rng: np.random.Generator, m: int, n: int, sampler: str) -> Sample:
    if sampler == "uniform" or m == 1:
        x_N = rng.integers(0, m, n)
    else:
        c = int(rng.integers(-(-n // m), n + 1))
        top = int(rng.integers(0, m))
        others_O = np.delete(np.arange(m), top)
        pool_P = np.repeat(others_O, c)  # c copies of each other item
        x_N = np.concatenate([np.full(c, top), rng.choice(pool_P, n - c, replace=False)])
        x_N = x_N[rng.permutation(n)]
    return x_N, None, int(np.bincount(x_N, minlength=m).max())


SAMPLERS: dict[str, Callable[[np.random.Generator, int, int, str], Sample]] = {"qc": qc, "mfe": mfe}
