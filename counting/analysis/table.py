"""Reading a results table (the format `counting.aggregate` writes) and grouping it into cells.

A *series* is every model that shares all config values but d, m and the seed (for example
one task, n and positional scheme); a *cell* is one (series, d, m) with one accuracy per seed.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

INT_COLUMNS = ("d", "m", "n", "k", "L", "H", "w", "seed", "train_steps", "batch", "warmup", "eval_size", "eval_seed",
               "budget")
FLOAT_COLUMNS = ("accuracy", "baseline_accuracy", "seq_accuracy", "loss", "lr", "weight_decay", "clip")
# Config columns that may distinguish series; task and n always name one.
SERIES_COLUMNS = ("task", "n", "k", "L", "H", "w", "pos", "causal", "norm", "softmax", "attention", "topk", "budget",
                  "sampler", "bos", "query",
                  "lr", "weight_decay", "train_steps", "batch", "warmup", "schedule", "clip", "eval_size", "eval_seed")
USABLE = ("complete", "diverged")  # a diverged model's metrics are its last finite evaluation


class TableError(ValueError):
    """A table this module cannot analyse: one line naming the problem."""


def _parse(value: str, kind):
    if value in ("", "None", None):
        return None if kind is int else math.nan
    return kind(float(value)) if kind is int else kind(value)


def read_table(path: str | Path, numeric: tuple[str, ...] = ()) -> list[dict]:
    """Rows of a table.csv (or counts.csv, ood.csv) with numbers parsed (plus the extra
    `numeric` columns, as floats); failed runs dropped."""
    path = Path(path)
    if not path.exists():
        raise TableError(f"table: {path} does not exist (run the sweep, or counting-aggregate, first)")
    with path.open(newline="") as f:
        raw = list(csv.DictReader(f))
    rows = []
    for r in raw:
        missing = [c for c in ("d", "m", "seed", "accuracy") if c not in r]
        if missing:
            raise TableError(f"table: {path} lacks the column(s) {', '.join(missing)}")
        if r.get("status", "complete") not in USABLE:
            continue
        row = dict(r)
        for c in INT_COLUMNS:
            if c in row:
                row[c] = _parse(row[c], int)
        for c in FLOAT_COLUMNS + numeric:
            if c in row:
                row[c] = _parse(row[c], float)
        if not math.isnan(row["accuracy"]):
            rows.append(row)
    return rows


def series_columns(rows: list[dict]) -> list[str]:
    """task and n, plus every other config column whose value varies between rows
    (k only where some sequence is limited to fewer than m distinct tokens)."""
    cols = []
    for c in SERIES_COLUMNS:
        if not rows or c not in rows[0]:
            continue
        if c == "k" and all(r["k"] in (None, r["m"]) for r in rows):
            continue
        if c in ("task", "n") or len({r[c] for r in rows}) > 1:
            cols.append(c)
    return cols


@dataclasses.dataclass(frozen=True)
class Cell:
    series: tuple  # values of the series columns
    d: int
    m: int
    acc_S: np.ndarray  # one accuracy per seed
    baseline: float  # mean trivial (majority-class) accuracy of the same held-out data

    @property
    def mean(self) -> float:
        return float(self.acc_S.mean())


def cells(rows: list[dict], columns: list[str]) -> list[Cell]:
    """One Cell per (series, d, m), sorted."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(tuple(r[c] for c in columns), r["d"], r["m"])].append(r)
    out = []
    for (series, d, m), rs in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), kv[0][1], kv[0][2])):
        acc_S = np.array([r["accuracy"] for r in sorted(rs, key=lambda r: r["seed"])], np.float64)
        baseline = float(np.nanmean([r.get("baseline_accuracy", math.nan) for r in rs]))
        out.append(Cell(series, d, m, acc_S, baseline))
    return out


def series_label(columns: list[str], series: tuple) -> str:
    """'task=qc n=16 pos=rope': names a series in file names, legends and titles."""
    return " ".join(f"{c}={v}" for c, v in zip(columns, series))
