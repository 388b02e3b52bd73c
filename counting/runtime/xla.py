"""How the suite compiles its programs: `jit` = `jax.jit` with the suite's XLA options.

On the CPU, XLA hands dots, reductions and elementwise fusions to the YNNPACK library by
default. For this suite's small models that is slow: the backward pass of a LayerNorm over
d = 16 (a reduction over the last axis of a [128, 18, 16] array) took about 0.5 ms per step
as one YNNPACK call under the profiler, ten times the next slowest operation. With the
library fusions off the project's per-run loop (`benchmarks/cohort.py`, medians on a 2-core
CPU) went from 752 to 1200 model-steps/s at (d, n, m) = (16, 16, 16) and from 85 to 124 at
(64, 64, 64). Every program that runs a model (train chunks, evaluation, out-of-distribution
evaluation) is compiled the same way, so a model evaluated later reproduces its
training-time metrics bit for bit. An XLA that does not know an option keeps its defaults
(checked once, by compiling a trivial program).
"""

from __future__ import annotations

import functools

import jax
import numpy as np

CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}  # no YNNPACK library fusions
# Programs that run once (initialisation, held-out sets) are compiled without LLVM's
# optimisations: 2-6x faster to compile on a 2-core CPU (a cohort's init took 15 s at the
# default level). Sampling is integer and comparison work, bit-identical at either level.
ONCE_OPTIONS = {"xla_backend_optimization_level": 0}


@functools.cache
def compiler_options() -> dict | None:
    """The options for the default backend, or None (XLA's defaults)."""
    if jax.default_backend() != "cpu":
        return None
    try:
        jax.jit(lambda x: x + 1, compiler_options=CPU_OPTIONS).lower(np.float32(0)).compile()
    except jax.errors.JaxRuntimeError:  # this XLA has no such option
        return None
    return dict(CPU_OPTIONS)


def jit(fn, **kwargs):
    """jax.jit(fn, **kwargs) with the suite's compiler options."""
    return jax.jit(fn, compiler_options=compiler_options(), **kwargs)


def jit_once(fn, **kwargs):
    """jax.jit for a program that runs once per cohort: the suite's options, LLVM unoptimised."""
    return jax.jit(fn, compiler_options={**(compiler_options() or {}), **ONCE_OPTIONS}, **kwargs)
