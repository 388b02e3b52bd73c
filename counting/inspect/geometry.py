"""Embedding geometry: how close the content tokens' embeddings come to orthogonal.

coherence mu = max over distinct content tokens of |cos(e_s, e_t)|; the Welch bound
sqrt((m - d) / (d (m - 1))) (0 when m <= d) is the least mu any m unit vectors in R^d can
have. Effective rank: exp of the entropy of the normalised singular values (Roy and
Vetterli 2007) of the m x d table of unit embeddings; m orthogonal tokens give min(m, d).
"""

from __future__ import annotations

import math

import numpy as np

from counting.tasks import NUM_SPECIAL


def content_embeddings(model, m: int) -> np.ndarray:
    """E_MxD: the embedding rows of the m content tokens (BOS and SEP left out)."""
    return np.asarray(model.embed.embedding[...], np.float64)[NUM_SPECIAL : NUM_SPECIAL + m]


def welch_bound(d: int, m: int) -> float:
    """The Welch bound sqrt((m - d) / (d (m - 1))) on the coherence of m unit vectors in R^d; 0 when m <= d."""
    return math.sqrt((m - d) / (d * (m - 1))) if m > d else 0.0


def coherence(E_MxD: np.ndarray) -> float:
    """mu: the largest |cos(e_s, e_t)| over distinct rows of E_MxD (0 for a single row)."""
    U_MxD = E_MxD / np.maximum(np.linalg.norm(E_MxD, axis=1, keepdims=True), 1e-30)
    G_MxM = np.abs(U_MxD @ U_MxD.T)
    np.fill_diagonal(G_MxM, 0.0)
    return float(G_MxM.max()) if len(E_MxD) > 1 else 0.0


def effective_rank(E_MxD: np.ndarray) -> float:
    """The effective rank of the unit-normalised rows of E_MxD: exp of the entropy of their normalised singular
    values."""
    U_MxD = E_MxD / np.maximum(np.linalg.norm(E_MxD, axis=1, keepdims=True), 1e-30)
    s = np.linalg.svd(U_MxD, compute_uv=False)
    p = s / max(s.sum(), 1e-30)
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def geometry(model, d: int, m: int) -> dict[str, float]:
    """The model's content embeddings measured: coherence, Welch bound, their ratio (nan when the bound is 0),
    effective rank and effective rank over min(d, m)."""
    E_MxD = content_embeddings(model, m)
    mu, welch = coherence(E_MxD), welch_bound(d, m)
    return {"coherence": mu, "welch_bound": welch, "coherence_over_welch": mu / welch if welch > 0 else float("nan"),
            "effective_rank": effective_rank(E_MxD), "effective_rank_over_min_dm": effective_rank(E_MxD) / min(d, m)}
