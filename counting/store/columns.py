"""The one schema of the suite's tables, derived from the config dataclasses, and its reader.

Every field of a run's identity (`RunConfig.identity`) is a column of table.csv and of every
table built from it (counts, budget, ood, inspect, cells, thresholds): the fields of task,
model and train under their own names (`d`, `m`, `sampler`, `lr`, ...; `task.name` is
`task` and `train.steps` is `train_steps`, the resolved step budget, beside `steps`, the
steps taken), nested ones dotted (`train.stop.patience`). Column types come from the
dataclass fields; the result columns are declared below. `read_rows` parses every table the
suite writes with these types (a column it does not know is a number where every value is
one), and a value that does not parse is a one-line `TableError` naming file, row and column.

A *series* is every model that shares every identity field but d, m and the seed (and the
hyperparameters a search optimises over): two models that differ only in their stop rule
are two series, never one cell.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from counting.config import HalvingConfig, ModelConfig, RunConfig, TaskConfig, TrainConfig
from counting.spec import flat_fields
from counting.store import FINISHED

LEGACY = {"task.name": "task", "train.steps": "train_steps"}  # names kept from the first tables
SECTIONS = (("task", TaskConfig), ("model", ModelConfig), ("train", TrainConfig), ("halving", HalvingConfig))
SHORT = ("task", "model", "train")  # sections whose fields are columns under their own names
CELL_AXES = ("d", "m", "seed")  # what varies inside a series

# The result columns of the tables the suite writes, with their types.
RESULTS: dict[str, type] = {
    "steps": int, "accuracy": float, "baseline_accuracy": float, "seq_accuracy": float, "loss": float,
    "status": str, "stop_reason": str, "hash": str, "fingerprint": str, "diverged_at": int, "wall_s": float,
    "error": str, "arithmetic": str, "jaxlib": str, "layout": str,
    # counts.csv, budget.csv, ood.csv
    "count": int, "support": int, "budget": int, "eval_n": int, "eval_k": int, "eval_status": str,
    "accuracy_seen_counts": float,
    # cells.csv, thresholds.csv, fit.csv
    "seeds": int, "accuracy_low": float, "accuracy_high": float, "best_accuracy": float, "share_above_tau": float,
    "share_out_of_budget": float, "m_thr": float, "m_thr_low": float, "m_thr_high": float, "method": str,
    "censored": str, "tau": float, "grid_m": str, "points": int, "d_values": str, "slope": float,
    "slope_low": float, "slope_high": float, "intercept": float, "intercept_low": float, "intercept_high": float,
    "slope_one_inside": bool, "over": str, "level": float, "seed_min": float, "seed_max": float, "share_low": float,
    "share_high": float, "interval_note": str, "models": int, "chosen_lr": float, "chosen_weight_decay": float,
    "exact_accuracy": float, "exact_share": float, "offsupport_accuracy": float,
    # successive halving (counting.training.halving) and the worst-case families (counting.tasks.families)
    "rung": int, "promoted": bool, "worst": float, "worst_off": float, "worst_all": float, "in_support": bool,
    "wrong": int, "support_worst": float, "steps_to_exact": int, "exact_norm": float, "exact_censored": bool,
}
EXTRA_SERIES = ("budget",)  # result columns that name a series where a table has them (budget.csv)
USABLE = FINISHED  # a diverged model's metrics are its last finite evaluation


class TableError(ValueError):
    """A table that cannot be read or analysed: one line naming the file and the problem."""


@dataclasses.dataclass(frozen=True)
class Column:
    """One identity column: its name in the tables, the dotted config field it holds, its type and the field's
    default."""

    name: str  # the column's name in the tables
    path: str  # the dotted config field ("task.m")
    kind: type  # bool, int, float or str
    default: Any


@functools.cache
def identity_columns() -> tuple[Column, ...]:
    """Every identity field of a run, as a column, in the dataclasses' order."""
    out = []
    for section, cls in SECTIONS:
        for dotted, field, kind in flat_fields(cls, f"{section}."):
            short = section in SHORT and dotted.count(".") == 1
            name = LEGACY.get(dotted, dotted.split(".", 1)[1] if short else dotted)
            out.append(Column(name, dotted, str if kind.many else kind.base, field.default))
    return tuple(out)


def column_types() -> dict[str, type]:
    """The type of every column the suite's tables may have: the identity columns' and the result columns'
    (RESULTS)."""
    return {**{c.name: c.kind for c in identity_columns()}, **RESULTS}


def identity_row(cfg: RunConfig) -> dict[str, Any]:
    """The identity columns of one run: its identity (k resolved, the budget resolved into
    train_steps, the stop rule and eval_every empty without a rule) with every field named."""
    ident = cfg.identity()
    row = {}
    for col in identity_columns():
        section, *rest = col.path.split(".")
        node, value = ident.get(section, {}), None
        for part in rest:
            node = node.get(part) if isinstance(node, dict) else None
        value = node
        if value is None and _is_new_default(cfg, col):
            value = _value_at(cfg, col.path)
        if isinstance(value, (tuple, list)):
            value = " ".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in value)
        row[col.name] = value
    return row


def _value_at(cfg: RunConfig, dotted: str):
    obj = cfg
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _is_new_default(cfg: RunConfig, col: Column) -> bool:
    """A field a later version added (or one inside a section a later version added), left out
    of the identity while at its default."""
    section, *rest = col.path.split(".")
    top = {f.name: f for f in dataclasses.fields(RunConfig)}[section]
    if top.metadata.get("since"):
        return True
    fields = {f.name: f for f in dataclasses.fields(dict(SECTIONS)[section])}
    field = fields.get(rest[0])
    return field is not None and bool(field.metadata.get("since")) and len(rest) == 1


def searched(rows: list[dict]) -> tuple[str, ...]:
    """The hyperparameters a successive-halving search optimised over in these rows (lr,
    weight_decay): they never split a cell."""
    return tuple(name for name in ("lr", "weight_decay") if any(r.get(f"halving.{name}") for r in rows))


def series_columns(rows: list[dict], exclude: Sequence[str] | None = None) -> list[str]:
    """The columns that name a series: task and n always, plus every identity column (and
    budget where there is one) whose value varies between the rows, but d, m, the seed and
    `exclude` (default: the hyperparameters a search optimised over, `searched`); k only where
    some sequence is limited to fewer than m distinct tokens."""
    exclude = searched(rows) if exclude is None else exclude
    names = [c.name for c in identity_columns()] + list(EXTRA_SERIES)
    cols = []
    for c in names:
        if c in CELL_AXES or c in exclude or not rows or not any(c in r for r in rows):
            continue
        if c == "k" and all(r.get("k") in (None, r["m"]) for r in rows):
            continue
        if c in ("task", "n") or len({_key(r.get(c)) for r in rows}) > 1:
            cols.append(c)
    return cols


def _key(value):
    return "nan" if isinstance(value, float) and math.isnan(value) else value


def series_of(row: dict, columns: Sequence[str]) -> tuple:
    """The row's series: its values of the series columns (nan as one value, so that rows without a value group
    together)."""
    return tuple(_key(row.get(c)) for c in columns)


def _parse(path: Path, line: int, column: str, value: str, kind: type):
    if value in ("", "None", "none", "null"):
        return math.nan if kind is float else None
    try:
        if kind is bool:
            if value.lower() not in ("true", "false"):
                raise ValueError(value)
            return value.lower() == "true"
        if kind is int:
            number = float(value)
            if not number.is_integer():
                raise ValueError(value)
            return int(number)
        if kind is float:
            return float(value)
        return value
    except ValueError:
        what = {bool: "true or false", int: "an integer", float: "a number"}[kind]
        raise TableError(f"{path}: row {line}, column {column}: expected {what}, got {value!r}") from None


def _upgrade(row: dict) -> dict:
    """Columns written by earlier versions, in today's names (softmax -> attention)."""
    if "softmax" in row and "attention" not in row:
        flag = row.pop("softmax")
        row["attention"] = "softmax" if flag in ("True", "true", True) else "linear"
    return row


def read_rows(path: str | Path) -> list[dict]:
    """Every row of a table the suite wrote, each value in its column's type."""
    path = Path(path)
    if not path.exists():
        raise TableError(f"table: {path} does not exist (run the sweep, or counting-aggregate, first)")
    try:
        with path.open(newline="") as f:
            raw = [_upgrade(r) for r in csv.DictReader(f)]
    except (csv.Error, UnicodeDecodeError) as err:
        raise TableError(f"{path}: not a CSV table ({err})") from None
    types = column_types()
    header = list(raw[0]) if raw else []
    unknown = {c: _inferred(raw, c) for c in header if c not in types}
    rows = []
    for line, r in enumerate(raw, start=2):
        if None in r:
            raise TableError(f"{path}: row {line} has more values than the header has columns")
        rows.append({c: _parse(path, line, c, v if v is not None else "", types.get(c) or unknown[c])
                     for c, v in r.items()})
    return rows


def _inferred(raw: list[dict], column: str) -> type:
    """float where every value of an undeclared column is a number (or empty), else str."""
    for r in raw:
        v = r.get(column)
        if v in (None, "", "None", "nan"):
            continue
        try:
            float(v)
        except ValueError:
            return str
    return float


def read_table(path: str | Path) -> list[dict]:
    """The usable rows of a results table (table.csv, budget.csv, ood.csv, counts.csv): typed,
    failed runs and rows without an accuracy dropped."""
    path = Path(path)
    rows = read_rows(path)
    if rows:
        missing = [c for c in ("d", "m", "seed", "accuracy") if c not in rows[0]]
        if missing:
            raise TableError(f"table: {path} lacks the column(s) {', '.join(missing)}")
    return [r for r in rows if (r.get("status") or "complete") in USABLE and not math.isnan(r["accuracy"])]
