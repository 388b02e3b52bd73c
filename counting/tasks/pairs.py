"""Which unordered token pairs may appear together in two-token training sequences, and which
are tested where.

With `task.holdout_pairs = f > 0` every unordered pair {a, b} of content tokens belongs to one
of three sets, fixed by `task.pairs_seed`: held out (a hash of the pair below f: never the two
tokens of a two-token training sequence; scored as the `heldout` family: generalisation),
validation (between f and 2f: trained like the rest, but kept out of every test family and used
only to select and stop, counting.training.support, so that selection on the training support never sees
a test input), or training (the rest: trained, and scored as the test family `pairs`). A pair's set does not depend on m, so it is the same in every cell of
a sweep, and the same arithmetic (32-bit integers) runs in numpy and in jax.numpy: the host's
families and the device's sampler agree bit for bit. Below `MIN_M` content tokens (fewer than
ten pairs) nothing is held out: a vocabulary that small would lose most of its pairs.

Pure numpy/jax.numpy arithmetic on whatever array module `xp` is passed; importable without JAX.
"""

from __future__ import annotations

import numpy as np

TRAIN, VALIDATION, HELDOUT = 0, 1, 2
SETS = {"train": TRAIN, "validation": VALIDATION, "heldout": HELDOUT}
MIN_M = 5


def _mix(h, xp):
    """murmur3's 32-bit finaliser."""
    h = h ^ (h >> 16)
    h = h * xp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * xp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def pair_set(a, b, m, fraction: float, seed: int, xp=np):
    """set_P: TRAIN, VALIDATION or HELDOUT for each pair (a, b) of content tokens (either order)."""
    lo, hi = xp.minimum(a, b).astype(xp.uint32), xp.maximum(a, b).astype(xp.uint32)
    with np.errstate(over="ignore"):
        h = _mix(_mix(lo * xp.uint32(0x9E3779B1) ^ xp.uint32(seed & 0xFFFFFFFF), xp) ^ hi, xp)
    u = (h >> 8).astype(xp.float32) * xp.float32(1.0 / (1 << 24))  # uniform on [0, 1), 24 bits
    out = xp.where(u < fraction, HELDOUT, xp.where(u < 2 * fraction, VALIDATION, TRAIN))
    return xp.where((xp.asarray(m) >= MIN_M) & (fraction > 0), out, TRAIN)


def ordered_pairs(m: int, which: str | None = None, fraction: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(a_P, b_P): every ordered pair of distinct content tokens below m, or those of one set."""
    a_P, b_P = (g.ravel() for g in np.meshgrid(np.arange(m), np.arange(m), indexing="ij"))
    keep = a_P != b_P
    if which is not None:
        keep &= pair_set(a_P, b_P, m, fraction, seed) == SETS[which]
    return a_P[keep], b_P[keep]
