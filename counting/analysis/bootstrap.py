"""Percentile bootstrap over seeds: each cell's seeds are resampled with replacement,
independently of every other cell (each model has its own seed)."""

from __future__ import annotations

import numpy as np


def resampled_means(acc_S: np.ndarray, boot: int, rng: np.random.Generator) -> np.ndarray:
    """mean_R: the cell mean under `boot` resamplings of its seeds."""
    return resampled(acc_S, boot, rng).mean(axis=1)


def resampled(acc_S: np.ndarray, boot: int, rng: np.random.Generator) -> np.ndarray:
    """acc_RxS: the cell's seeds resampled `boot` times with replacement."""
    S = len(acc_S)
    return acc_S[rng.integers(0, S, size=(boot, S))]


def interval(samples_R: np.ndarray, ci: float) -> tuple[float, float]:
    """The central `ci` percentile interval of the finite samples (NaN if fewer than half are)."""
    finite_R = samples_R[np.isfinite(samples_R)]
    if len(finite_R) < max(1, len(samples_R) // 2):
        return float("nan"), float("nan")
    a = (1.0 - ci) / 2.0
    lo, hi = np.quantile(finite_R, [a, 1.0 - a])
    return float(lo), float(hi)
