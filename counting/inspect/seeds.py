"""Seeds compared: within a cell (every identity field of the config equal but the seed and
the searched learning rate and weight decay), how well a linear map carries one model's
geometry onto another's (after mini-vec2vec, Dar et al.). One row per pair of models.

- Token embeddings (the m content rows, centred): orthogonal Procrustes with one global
  scale, `emb_procrustes_r2` = 1 - min_{s,R} |s A R - B|^2 / |B|^2 with A and B scaled to
  unit norm, = (the nuclear norm of A^T B)^2: symmetric in the pair, 1 when the two tables
  differ by a rotation and a scale. `emb_procrustes_null`: the same with B's rows permuted
  (mean over NULL_PERMUTATIONS permutations), what the alignment gives without the token
  correspondence. Least squares is not reported for embeddings: with m <= d + 1 it fits
  any pair exactly.
- Residual streams on the same held-out inputs (the counting layer's residual before its
  MLP, at the analysed positions, `trace.resid_BxAxD`, on a fixed sample of SEED_POINTS
  (sequence, position) points): `resid_lstsq_r2`, the held-out R^2 of an affine least-squares
  map fitted on the first half of the sequences and scored on the second, the mean of both
  directions (A -> B and B -> A); `resid_procrustes_r2` and `resid_procrustes_null` (rows
  of B permuted) as for the embeddings, on all points.

`pair`: `both_succeed`, `one_succeeds` or `both_fail`, a model succeeding when its held-out
accuracy is >= tau (the analysis threshold); each model's accuracy, worst-family accuracy
(`worst`, where families were evaluated) and mechanism labels stand beside it.
"""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np

from counting.config import RunConfig

SEED_POINTS = 1024
NULL_PERMUTATIONS = 20
SEARCHED = (("train", "seed"), ("train", "lr"), ("train", "weight_decay"))
PER_MODEL = ("seed", "hash", "lr", "weight_decay", "accuracy", "worst", "mechanism", "causal_mechanism")
CELL = ("task", "arch", "d", "m", "n", "k", "w", "L", "H", "pos", "attention", "topk", "norm")
SCORES = ("emb_procrustes_r2", "emb_procrustes_null", "resid_lstsq_r2", "resid_procrustes_r2",
          "resid_procrustes_null")


def cell_key(cfg: RunConfig) -> str:
    """The cell of a model: its identity without the seed and the searched lr and weight decay, as sorted JSON."""
    identity = cfg.identity()
    for section, field in SEARCHED:
        identity.get(section, {}).pop(field, None)
    return json.dumps(identity, sort_keys=True)


@dataclasses.dataclass(frozen=True)
class SeedModel:
    """What the seed comparison reads of one model: its cell key, its inspect.csv row, its token embeddings
    E_MxD, its residual streams at the sampled points, and which points are in the first half of the sequences."""

    key: str
    row: dict  # the model's inspect.csv row
    E_MxD: np.ndarray
    resid_NxD: np.ndarray
    first_half_N: np.ndarray  # bool: the point's sequence is in the first half


def sample_points(B: int, A: int, seed: int = 0) -> np.ndarray:
    """Fixed indices into the B*A (sequence, position) points: the same for every model of
    a cell (same task, hence same held-out set and analysed positions)."""
    if B * A <= SEED_POINTS:
        return np.arange(B * A)
    return np.sort(np.random.default_rng(seed).choice(B * A, SEED_POINTS, replace=False))


def procrustes_r2(A_NxD: np.ndarray, B_NxD: np.ndarray) -> float:
    """The Procrustes R^2 of two point sets (centred, scaled to unit norm): the squared nuclear norm of A^T B, 1
    when they differ by a rotation and a scale; nan when either is all zero."""
    A, B = A_NxD - A_NxD.mean(0), B_NxD - B_NxD.mean(0)
    na, nb = np.linalg.norm(A), np.linalg.norm(B)
    if na == 0 or nb == 0:
        return float("nan")
    return float(np.linalg.svd((A / na).T @ (B / nb), compute_uv=False).sum() ** 2)


def procrustes_null(A_NxD: np.ndarray, B_NxD: np.ndarray, rng: np.random.Generator) -> float:
    """The mean Procrustes R^2 over NULL_PERMUTATIONS random permutations of B's rows: the alignment without the
    correspondence."""
    return float(np.mean([procrustes_r2(A_NxD, B_NxD[rng.permutation(len(B_NxD))]) for _ in range(NULL_PERMUTATIONS)]))


def lstsq_r2(A_NxD: np.ndarray, B_NxD: np.ndarray, train_N: np.ndarray) -> float:
    """Held-out R^2 of the affine least-squares map A -> B (fitted on train_N)."""
    Aa = np.concatenate([A_NxD, np.ones((len(A_NxD), 1))], axis=1)
    W, *_ = np.linalg.lstsq(Aa[train_N], B_NxD[train_N], rcond=None)
    Bv = B_NxD[~train_N]
    sst = float(((Bv - B_NxD[train_N].mean(0)) ** 2).sum())
    return 1.0 - float(((Bv - Aa[~train_N] @ W) ** 2).sum()) / sst if sst > 0 else float("nan")


def pair_kind(a: dict, b: dict, tau: float) -> str:
    """both_succeed, one_succeeds or both_fail: how many of the two rows reach accuracy tau."""
    wins = sum(bool(r.get("accuracy") is not None and r["accuracy"] >= tau) for r in (a, b))
    return ("both_fail", "one_succeeds", "both_succeed")[wins]


def compare(a: SeedModel, b: SeedModel, rng: np.random.Generator) -> dict[str, float]:
    """The scores of one pair (SCORES): Procrustes R^2 and its null of the embeddings and of the residual
    streams, and the residual streams' held-out least-squares R^2, averaged over both directions."""
    train = a.first_half_N
    both = 0.5 * (lstsq_r2(a.resid_NxD, b.resid_NxD, train) + lstsq_r2(b.resid_NxD, a.resid_NxD, train))
    return {
        "emb_procrustes_r2": procrustes_r2(a.E_MxD, b.E_MxD),
        "emb_procrustes_null": procrustes_null(a.E_MxD, b.E_MxD, rng),
        "resid_lstsq_r2": both if train.any() and (~train).any() else float("nan"),
        "resid_procrustes_r2": procrustes_r2(a.resid_NxD, b.resid_NxD),
        "resid_procrustes_null": procrustes_null(a.resid_NxD, b.resid_NxD, rng),
    }


def seed_pairs(models: list[SeedModel], tau: float, seed: int = 0) -> list[dict]:
    """One row per pair of models of the same cell (in the order of `models`)."""
    rng = np.random.default_rng(seed)
    cells: dict[str, list[SeedModel]] = {}
    for model in models:
        cells.setdefault(model.key, []).append(model)
    rows = []
    for members in cells.values():
        for a, b in itertools.combinations(members, 2):
            row = {c: a.row.get(c) for c in CELL}
            row["pair"] = pair_kind(a.row, b.row, tau)
            for side, model in (("a", a), ("b", b)):
                row.update({f"{c}_{side}": model.row.get(c) for c in PER_MODEL})
            rows.append({**row, **compare(a, b, rng)})
    return rows


COLUMNS = [*CELL, "pair", *(f"{c}_{s}" for s in "ab" for c in PER_MODEL), *SCORES]
