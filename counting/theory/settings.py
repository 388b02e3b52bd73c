"""The grids of `counting-theory`: FULL regenerates results/theory/ (about 8 minutes on a
2-core CPU), QUICK is the same pipeline shrunk for tests (seconds). These are the suite's
own choices; the paper publishes no grids."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Settings:
    """One grid of every `counting-theory` part (FULL or QUICK): the n, d, m, dtypes and seeds each table is
    computed at."""

    exact_ns: tuple[int, ...]  # n at which each construction's exactness is tabulated
    construction_names: tuple[str, ...] | None  # None: every construction
    sampler_up_to: int  # also check on the suite's own sampler up to this n
    positional_models: int  # random no-position models in the repeat test
    width_ns: tuple[int, ...]  # CountAttend widths (float64) at these n
    verify_n: int  # ... and, up to this n, exactness and beta_min through the model
    precision_names: tuple[str, ...]  # registry entries searched for precision
    precision_caps: tuple[tuple[str, int], ...]  # dtype -> largest n searched
    coherence_ds: tuple[int, ...]
    coherence_ratios: tuple[float, ...]  # m / d
    coherence_seeds: int  # random embeddings per (d, m)
    coherence_steps: int
    readout_pairs: tuple[tuple[int, int], ...]  # (d, m) for the projection/linear readouts
    margin_cases: tuple[tuple[int, int, int], ...]  # (d, m, largest n) for the lattice margin
    coherent_ds: tuple[int, ...]  # CountAttend with m > d - 2 directions
    coherent_ms: tuple[int, ...]
    coherent_ns: tuple[int, ...]


FULL = Settings(
    exact_ns=(8, 64, 1000),
    construction_names=None,
    sampler_up_to=64,
    positional_models=16,
    width_ns=tuple(2**k for k in range(3, 21)),
    verify_n=512,
    precision_names=("histogram_qc", "count_attend_interp", "count_attend_head", "count_attend_head_m64_d4", "mfe"),
    precision_caps=(("float16", 2**12), ("bfloat16", 2**12), ("float32", 2**16), ("float64", 2**12)),
    coherence_ds=(2, 3, 4, 6, 8, 12, 16),
    coherence_ratios=(1.25, 1.5, 2.0, 3.0, 4.0, 8.0),
    coherence_seeds=8,
    coherence_steps=2000,
    readout_pairs=((2, 3), (2, 4), (3, 4), (3, 6), (4, 8), (8, 10), (8, 16), (16, 32), (32, 64)),
    margin_cases=((2, 3, 1024), (2, 4, 1024), (2, 5, 128), (3, 4, 1024), (3, 5, 128), (3, 6, 32)),
    coherent_ds=(4, 6),
    coherent_ms=(2, 4, 8, 16, 64),
    coherent_ns=(8, 64, 512),
)

QUICK = Settings(
    exact_ns=(12,),
    construction_names=("histogram_qc", "count_attend_interp", "mfe"),
    sampler_up_to=0,
    positional_models=1,
    width_ns=(8, 16, 64, 256),
    verify_n=8,
    precision_names=("histogram_qc",),
    precision_caps=(("bfloat16", 32),),
    coherence_ds=(2, 3),
    coherence_ratios=(1.5, 2.0),
    coherence_seeds=2,
    coherence_steps=200,
    readout_pairs=((2, 3), (2, 4)),
    margin_cases=((2, 3, 16), (2, 4, 16)),
    coherent_ds=(4,),
    coherent_ms=(2, 8),
    coherent_ns=(8, 16),
)

SETTINGS = {"full": FULL, "quick": QUICK}
