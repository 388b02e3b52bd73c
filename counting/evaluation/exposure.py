"""How much of each family's class of sequences the training distribution draws: the share of
training sequences that are two-token sequences (the class of `pairs`, `aligned` and
`heldout`), that hold a held-out pair (zero by construction: a check), and the exposures per
two-token (pair, split) test cell over a model's whole budget, all estimated from training
batches drawn by the task's own sampler (the same program the training steps run).

`support_table` writes <experiment>/support.csv after a sweep: one row per distinct training
distribution (series, d, m) and family, with its in-support label (counting.tasks.families.support_of)
and the estimated share, beside the mean and smallest exposures per (pair, split) cell.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import jax
import numpy as np

from counting.config import RunConfig
from counting.store import SUPPORT_TABLE, write_table
from counting.tasks import NUM_SPECIAL, make_task
from counting.tasks.families import FAMILIES, pair_set_of, support_of
from counting.tasks.pairs import HELDOUT, pair_set

SEED = 9_000_011  # the estimate's own data stream, never a training one
BATCHES, BATCH = 16, 1024


def shares(cfg: RunConfig, batches: int = BATCHES, batch: int = BATCH) -> dict:
    """{"two_token", "heldout_pairs", "cells", "mean_exposure", "min_exposure"} of one run's
    training distribution; exposures are per test (pair, split) cell over train.total_steps
    steps of train.batch sequences."""
    t = cfg.task
    task = make_task(t)
    sample = task.sample_jit
    cells: Counter = Counter()
    two = bad = total = 0
    for i in range(batches):
        tokens_BxT = np.asarray(sample(jax.random.PRNGKey(SEED + i), batch).tokens_BxT)
        x_BxN = tokens_BxT[:, task.content_slice()] - NUM_SPECIAL
        lo_B, hi_B = x_BxN.min(1), x_BxN.max(1)
        two_B = (lo_B != hi_B) & ((x_BxN == lo_B[:, None]) | (x_BxN == hi_B[:, None])).all(1)
        c_B = (x_BxN == lo_B[:, None]).sum(1)
        two += int(two_B.sum())
        bad += int((two_B & (pair_set(lo_B, hi_B, t.m, t.holdout_pairs, t.pairs_seed) == HELDOUT)).sum())
        cells.update(zip(lo_B[two_B].tolist(), hi_B[two_B].tolist(), c_B[two_B].tolist()))  # (lower, higher, copies of lower)
        total += len(x_BxN)
    a_P, b_P = pair_set_of(t, "train")
    test = {(min(a, b), max(a, b), c if a < b else t.n - c) for a, b in zip(a_P, b_P) for c in range(1, t.n)}
    scale = cfg.train.total_steps * cfg.train.batch / total
    seen = np.array([cells.get(cell, 0) for cell in sorted(test)], float) * scale
    return {"two_token": two / total, "heldout_pairs": bad / total, "cells": len(test),
            "mean_exposure": float(seen.mean()) if len(seen) else float("nan"),
            "min_exposure": float(seen.min()) if len(seen) else float("nan")}


def support_table(root: Path, cfgs: list[RunConfig]) -> Path | None:
    """support.csv for the distinct training distributions among `cfgs` (None: no runs)."""
    from counting.store.columns import identity_row, series_columns, series_of

    if not cfgs:
        return None
    rows = [identity_row(cfg) for cfg in cfgs]
    columns = series_columns(rows)
    by: dict[tuple, RunConfig] = {}
    for cfg, row in zip(cfgs, rows):
        by.setdefault((series_of(row, columns), cfg.model.d, cfg.task.m), cfg)
    out, estimates = [], {}
    for (series, d, m), cfg in sorted(by.items(), key=lambda kv: (str(kv[0][0]), kv[0][1], kv[0][2])):
        key = (repr(cfg.task), cfg.train.total_steps, cfg.train.batch)  # all `shares` reads: one estimate for every d
        if key not in estimates:
            estimates[key] = shares(cfg)
        est = estimates[key]
        for family in FAMILIES:
            two = FAMILIES[family].two_token
            out.append({**dict(zip(columns, series)), "d": d, "m": m, "family": family,
                        "in_support": support_of(cfg.task, family),
                        "share": (est["heldout_pairs"] if FAMILIES[family].held_out else est["two_token"]) if two else 1.0,
                        **({k: est[k] for k in ("cells", "mean_exposure", "min_exposure")} if family == "pairs" else {})})
    path = Path(root) / SUPPORT_TABLE
    write_table(path, out, [*columns, "d", "m", "family", "in_support", "share"], digits=6)
    return path
