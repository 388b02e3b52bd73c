"""A results table grouped into cells: one (series, d, m) with one accuracy per seed.

The table's schema and reader are `counting.store.columns` (a series is every model that shares
every identity field but d, m and the seed).
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict

import numpy as np

from counting.config import TaskConfig
from counting.store.columns import identity_columns, series_of
from counting.tasks.families import worst_split


@dataclasses.dataclass(frozen=True)
class Cell:
    """The models of one (series, d, m). Without a search they are one per seed; under a
    successive-halving search one per (setting, seed), and `chosen_S` holds the seeds of the
    chosen setting: the best mean accuracy among the settings promoted to the end of the race
    (the learnability of a cell is read there, its capacity from every model)."""

    series: tuple  # values of the series columns
    d: int
    m: int
    acc_S: np.ndarray  # every model's accuracy (all settings, all seeds)
    baseline: float  # mean trivial (majority-class) accuracy of the same held-out data
    chosen_S: np.ndarray | None = None  # the chosen setting's seeds (None: no search, = acc_S)
    setting: tuple | None = None  # the chosen (lr, weight_decay), under a search
    worst_S: np.ndarray | None = None  # worst in-support family accuracy per model (exact counting), where evaluated
    worst_chosen_S: np.ndarray | None = None  # the same for the chosen setting's seeds (None: no search)
    off_S: np.ndarray | None = None  # worst off-support family accuracy per model, where there is one
    off_chosen_S: np.ndarray | None = None  # the same for the chosen setting's seeds (None: no search)

    @property
    def mean(self) -> float:
        """The cell's mean accuracy over seeds (of the chosen setting, under a search)."""
        return float(self.seeds_S.mean())

    @property
    def seeds_S(self) -> np.ndarray:
        """The accuracies a mean over seeds is taken of: the chosen setting's."""
        return self.acc_S if self.chosen_S is None else self.chosen_S

    @property
    def worst_seeds_S(self) -> np.ndarray | None:
        """The worst-family accuracies a mean over seeds is taken of: the chosen setting's."""
        return self.worst_S if self.worst_chosen_S is None else self.worst_chosen_S

    @property
    def off_seeds_S(self) -> np.ndarray | None:
        """The worst off-support accuracies a mean over seeds is taken of: the chosen setting's."""
        return self.off_S if self.off_chosen_S is None else self.off_chosen_S


def _order(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (r["seed"], r.get("lr") or 0.0, r.get("weight_decay") or 0.0, str(r.get("hash"))))


def chosen_setting(rows: list[dict]) -> tuple[tuple, list[dict]]:
    """(setting, its rows): the (lr, weight_decay) with the best mean accuracy among those
    promoted to the end of their halving race (all settings when none is marked); ties to
    the smaller lr, then the smaller weight decay."""
    by: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        by[(r.get("lr"), r.get("weight_decay"))].append(r)
    promoted = {s: rs for s, rs in by.items() if all(r.get("promoted") in (True, None) for r in rs)} or by
    best = max(sorted(promoted), key=lambda s: float(np.mean([r["accuracy"] for r in promoted[s]])))
    return best, _order(promoted[best])


def cells(rows: list[dict], columns: list[str], searched: tuple[str, ...] = ()) -> list[Cell]:
    """One Cell per (series, d, m), sorted; `searched`: the hyperparameters a halving search
    optimised over (then each cell holds every setting, and its chosen one)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(series_of(r, columns), r["d"], r["m"])].append(r)
    out = []
    for (series, d, m), rs in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), kv[0][1], kv[0][2])):
        rs = _order(rs)
        acc_S = np.array([r["accuracy"] for r in rs], np.float64)
        baseline = float(np.nanmean([r.get("baseline_accuracy", math.nan) for r in rs]))
        chosen = setting = None
        split = lambda rows, key: np.array([row_worst(r)[key] for r in rows], np.float64)
        worst, off = split(rs, "worst"), split(rs, "worst_off")  # the worst in- and off-support families
        worst = None if np.isnan(worst).all() else worst
        off = None if np.isnan(off).all() else off
        worst_chosen = off_chosen = None
        if searched:
            setting, best = chosen_setting(rs)
            chosen = np.array([r["accuracy"] for r in best], np.float64)
            worst_chosen = None if worst is None else split(best, "worst")
            off_chosen = None if off is None else split(best, "worst_off")
        out.append(Cell(series, d, m, acc_S, baseline, chosen, setting, worst, worst_chosen, off, off_chosen))
    return out


def series_label(columns: list[str], series: tuple) -> str:
    """'task=qc n=16 pos=rope': names a series in file names, legends and titles."""
    return " ".join(f"{c}={v}" for c, v in zip(columns, series))


def task_of_row(row: dict) -> TaskConfig:
    """The task config a table row was trained with (its task columns; a column an older table
    lacks keeps its default)."""
    values, defaults = {}, {f.name: f.default for f in dataclasses.fields(TaskConfig)}
    for col in identity_columns():
        section, _, field = col.path.partition(".")
        if section != "task" or "." in field or row.get(col.name) in (None, ""):
            continue
        value = row[col.name]
        if isinstance(defaults[field], tuple):  # written space-separated (counting.store.columns.identity_row)
            value = tuple(str(value).split()) if not isinstance(value, (tuple, list)) else tuple(value)
            value = tuple(float(v) for v in value) if field == "weights" else value
        elif isinstance(value, float) and math.isnan(value):  # an empty cell read as float
            continue
        values[field] = value
    if values.get("k") == values.get("m"):
        values["k"] = None
    return TaskConfig.from_dict(values)


def row_worst(row: dict) -> dict[str, float]:
    """{"worst", "worst_off"} of a table row from its `family.<name>` columns and its config,
    so that tables written before the support labels are read by today's rule; a row without
    family columns keeps its `worst` (NaN when it has none)."""
    accuracy = {k.split(".", 1)[1]: v for k, v in row.items()
                if k.startswith("family.") and v is not None and not math.isnan(v)}
    if not accuracy:
        return {"worst": row.get("worst", float("nan")), "worst_off": row.get("worst_off", float("nan"))}
    return worst_split(task_of_row(row), accuracy)
