"""Floating-point precision: the largest n at which a construction stays exact in a dtype.

A construction built for n (weights computed in float64 numpy, stored as float32, or as
float64 for the float64 runs) is cast to the dtype (`weights.cast`: parameters and
computation, the same forward code) and run on the adversarial sequences plus random ones
for that n. Two criteria:

- model: the argmax of the logits equals the true count everywhere;
- readout: the count the final residual encodes (`Construction.readout`, evaluated in
  float64 from the residual computed in the dtype) is within 1/2 of the truth everywhere,
  i.e. the counting mechanism is exact and only the head's own rounding could fail.

`largest_exact` searches n by doubling from n0 and then bisection, which assumes exactness
is monotone in n; the result is the largest n found exact, with the smallest n found
inexact above it (None when every n up to the cap was exact). Bisection stops once the
bracket is within 1/16 of n, so n_fail - n_max is the resolution.

Note: XLA on CPU may evaluate float16/bfloat16 elementwise work in float32 and round the
result; the numbers are what this forward produces on this backend.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from counting.theory import sequences
from counting.theory.registry import Spec
from counting.theory.weights import Construction, cast, forward, storing

DTYPES = {"float16": jnp.float16, "bfloat16": jnp.bfloat16, "float32": jnp.float32, "float64": jnp.float64}


def dtype_scope(name: str):
    """float64 needs x64 switched on, only for the duration (the global flag is untouched)."""
    return jax.enable_x64(True) if name == "float64" else contextlib.nullcontext()


def sequences_for(spec: Spec, c: Construction, random_rows: int, seed: int) -> sequences.Sequences:
    """The spec's adversarial sequences for c's task, plus uniform and count-balanced rows."""
    parts = [spec.adversarial(c.task, seed)]
    if random_rows:
        parts += [sequences.uniform(c.task, random_rows, seed), sequences.balanced(c.task, random_rows, seed)]
    return sequences.concat(parts)


def exactness(c: Construction, dtype: str, seqs: sequences.Sequences) -> dict[str, bool]:
    """Whether the construction, run in `dtype`, is exact on `seqs` (model and readout)."""
    with dtype_scope(dtype):
        model = cast(c.model, DTYPES[dtype])
        x, logits = forward(model, seqs.tokens_BxT, c.answer_positions)
    x64 = np.asarray(x, np.float64)
    with np.errstate(all="ignore"):
        readout_ok = np.all(np.abs(c.readout(x64) - seqs.labels_BxA) < 0.5)
    return {"model": bool(np.all(np.asarray(logits).argmax(-1) == seqs.labels_BxA)), "readout": bool(readout_ok)}


def largest_exact(exact: Callable[[int], bool], cap: int, n0: int = 1, resolution: int = 16) -> tuple[int, int | None]:
    """(n_max, n_fail): doubling from n0 while exact (up to cap), then bisection until the
    bracket is within n_max / resolution (or 1)."""
    good, bad = 0, None
    n = n0
    while n <= cap:
        if not exact(n):
            bad = n
            break
        good, n = n, 2 * n
    if bad is None:
        if good < cap and exact(cap):
            good = cap
        elif good < cap:
            bad = cap
    if bad is not None:
        while bad - good > max(1, good // resolution):
            mid = (good + bad) // 2
            good, bad = (mid, bad) if exact(mid) else (good, mid)
    return good, bad


def search(spec: Spec, dtype: str, cap: int | None = None, random_rows: int = 16, seed: int = 0, n0: int = 8) -> dict:
    """Largest exact n in `dtype` for both criteria (one forward per tested n serves both)."""
    cache: dict[int, dict[str, bool]] = {}

    def result(n: int) -> dict[str, bool]:
        if n not in cache:
            with dtype_scope(dtype), storing(jnp.float64 if dtype == "float64" else jnp.float32):
                c = spec.build(n)
            cache[n] = exactness(c, dtype, sequences_for(spec, c, random_rows, seed))
        return cache[n]

    out: dict = {"cap": spec.cap if cap is None else cap}
    for criterion in ("model", "readout"):
        n_max, n_fail = largest_exact(lambda n: result(n)[criterion], out["cap"], min(n0, out["cap"]))
        out[f"n_max_{criterion}"], out[f"n_fail_{criterion}"] = n_max, n_fail
    return out
