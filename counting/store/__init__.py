"""The results store: the layout of results/<experiment>/ and the format of a run's record.

    results/<experiment>/
        runs/<hash>/          one model: config.json, metrics.jsonl, params/ (Orbax), record.json
                              (written last), ood.json (out-of-distribution points), .lock
        checkpoints/<key>/    mid-training checkpoints of a cohort chunk (deleted when it ends)
        table.csv counts.csv  one row per model / per model and true count (counting-aggregate)
        ood.csv               one row per model and evaluation point (counting-evaluate)
        cells.csv thresholds.csv fit.csv   the analysis (counting-analyze)
        figures/              PNG + PDF (counting-plot)

A run's folder is named by the hash of what defines its model (`RunConfig.identity`). Its
record says which code trained it (`fingerprint`, see counting.store.fingerprint). Pure Python: the
analysis and plotting commands read the store without importing JAX.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Sequence
from pathlib import Path

from counting.store.atomic import atomic_write_text

# Every name of the layout, here and nowhere else (tests/test_hygiene.py checks that no other
# module spells one of these file names).
RUNS, CHECKPOINTS, FIGURES, SEARCH = "runs", "checkpoints", "figures", "search"
# a run folder: runs/<hash>/
RECORD, CONFIG, METRICS, PARAMS, OOD, LOCK = "record.json", "config.json", "metrics.jsonl", "params", "ood.json", ".lock"
FAMILIES = "families.json"  # the worst-case families' accuracies (counting.evaluation.evaluate)
# the experiment folder's tables
TABLE, COUNTS, OOD_TABLE, FAMILY_TABLE = "table.csv", "counts.csv", "ood.csv", "families.csv"
SUPPORT_TABLE, SEARCH_TABLE = "support.csv", "search.csv"  # two-token exposure; the adaptive search's rounds
CELLS, THRESHOLDS, FIT = "cells.csv", "thresholds.csv", "fit.csv"  # counting.analysis.analyze
STOPS, EXACTNESS, EXACT_FIT = "stops.csv", "exactness.csv", "exact_fit.csv"  # counting.analysis.exactness
BUDGET_TABLE, BUDGET_THRESHOLDS, BUDGET_CONVERGENCE = "budget.csv", "budget_thresholds.csv", "budget_convergence.csv"
INSPECT_TABLE, INSPECT_FIT, INSPECT_SEEDS, INSPECT_MAPS = ("inspect.csv", "inspect_fit.csv", "inspect_seeds.csv",
                                                          "inspect_maps.npz")  # counting.inspect.run
PUBLISHED, COMPARE, DIP = "published.csv", "compare.csv", "dip.csv"  # the peer comparison (counting.analysis.peer)
PUBLISHED_DIAGRAM, DIAGRAM = "published_t32.csv", "diagram_t32.csv"  # their T = 32 diagram, digitised; its comparison
OVERLAP = "overlap.csv"  # the share of a held-out set that also occurs in training (counting.analysis.peer)
# a run's status: finished (its metrics are read) or failed (retrained)
COMPLETE, DIVERGED, FAILED = "complete", "diverged", "failed"
FINISHED = (COMPLETE, DIVERGED)


@dataclasses.dataclass(frozen=True)
class Store:
    """The folder of one experiment under a results directory."""

    results_dir: Path
    experiment: str

    def __post_init__(self):
        object.__setattr__(self, "results_dir", Path(self.results_dir))

    @property
    def root(self) -> Path:
        """The experiment's folder, results_dir/experiment."""
        return self.results_dir / self.experiment

    def path(self, name: str) -> Path:
        """A file of the experiment's folder (TABLE, COUNTS, OOD_TABLE, CELLS, ...)."""
        return self.root / name

    def run(self, run_hash: str) -> Path:
        """The folder of one run, runs/<hash>/ (which may not exist yet)."""
        return self.root / RUNS / run_hash

    def checkpoint(self, key: str) -> Path:
        """The folder of a cohort chunk's mid-training checkpoints, checkpoints/<key>/."""
        return self.root / CHECKPOINTS / key

    def run_folders(self) -> list[Path]:
        """Every run folder that holds a record.json (finished, failed or corrupt)."""
        return sorted(p.parent for p in (self.root / RUNS).glob(f"*/{RECORD}"))

    def records(self) -> dict[Path, dict | None]:
        """folder -> its record (None when corrupt) for every run folder with a record.json."""
        return {folder: read_record(folder) for folder in self.run_folders()}

    def finished(self) -> dict[Path, dict]:
        """folder -> record of every run that finished (its status in FINISHED)."""
        return {f: r for f, r in self.records().items() if r is not None and r.get("status") in FINISHED}

    def has_runs(self) -> bool:
        """Whether runs/ exists and holds anything."""
        return (self.root / RUNS).is_dir() and any((self.root / RUNS).iterdir())

    def others(self) -> list[Store]:
        """The other experiments under the same results directory."""
        if not self.results_dir.is_dir():
            return []
        return [Store(self.results_dir, p.name) for p in sorted(self.results_dir.iterdir())
                if p.is_dir() and p.name != self.experiment and (p / RUNS).is_dir()]


class RecordError(ValueError):
    """A record.json that cannot be read: truncated, not JSON, or missing its fields."""


REQUIRED = ("hash", "config", "status")


def load_record(folder: Path) -> dict:
    """The record of a run folder, validated; RecordError if corrupt, FileNotFoundError if none."""
    path = Path(folder) / RECORD
    text = path.read_text()
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise RecordError(f"{path}: not valid JSON ({err.msg} at character {err.pos}); truncated?") from None
    if not isinstance(record, dict) or any(k not in record for k in REQUIRED):
        raise RecordError(f"{path}: missing one of {', '.join(REQUIRED)}")
    return record


def read_record(folder: Path) -> dict | None:
    """The record, or None when there is none or it is corrupt."""
    try:
        return load_record(folder)
    except (FileNotFoundError, RecordError):
        return None


def problem(folder: Path, fingerprint: str | None = None) -> str | None:
    """Why the folder does not hold a usable finished model, or None when it does:
    'no record', 'corrupt record.json', 'failed', 'params/ missing', or 'stale' (a finished
    record whose code fingerprint differs from `fingerprint`, when one is given)."""
    folder = Path(folder)
    try:
        record = load_record(folder)
    except FileNotFoundError:
        return "no record"
    except RecordError:
        return "corrupt record.json"
    if record["status"] not in FINISHED:
        return record["status"]
    if not (folder / PARAMS).is_dir() or not any((folder / PARAMS).iterdir()):
        return "params/ missing"
    if fingerprint is not None and record.get("fingerprint") != fingerprint:
        return "stale"
    return None


def is_finished(folder: Path) -> bool:
    """Whether the folder holds a usable finished model (`problem` finds nothing wrong)."""
    return problem(folder) is None


def write_table(path: Path, rows: list[dict], lead: Sequence[str] = (), digits: int | None = None) -> None:
    """Every table the suite writes (atomically): the `lead` columns first, then every other key
    of the rows in first-seen order (a row without a key leaves its cell empty); with `digits`,
    floats to that many significant digits (the committed tables are read by people)."""
    columns = list(lead)
    for row in rows:
        columns += [c for c in row if c not in columns]
    fmt = (lambda v: f"{v:.{digits}g}" if isinstance(v, float) else v) if digits else (lambda v: v)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: fmt(v) for k, v in row.items()} for row in rows)
    atomic_write_text(path, buf.getvalue())
