"""Run records -> one results table: results/<experiment>/table.csv, one row per model.

Every config field is a column (so every swept parameter is one), next to the final
held-out metrics and the run's status; failed runs keep their error. Beside it, counts.csv
holds each model's accuracy per true count (long format) for the per-count figure.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from counting.config import RunConfig
from counting.store import CONFIG, COUNTS, RUNS, TABLE, Store, problem, read_record, write_table

LEAD = ["task", "d", "m", "n", "k", "L", "H", "w", "pos", "seed", "lr", "steps",
        "accuracy", "baseline_accuracy", "status"]
METRICS = ["accuracy", "baseline_accuracy", "seq_accuracy", "loss"]
COUNT_LEAD = ["task", "d", "m", "n", "k", "seed", "count", "support", "accuracy"]


def count_rows(record: dict, row: dict) -> list[dict]:
    """Long format of one run's per-count accuracy: one row per true count c in 0..n."""
    metrics = record.get("metrics", {})
    config = {k: v for k, v in row.items() if k not in METRICS and k not in ("error", "wall_s", "diverged_at")}
    return [{**config, "count": c, "support": support, "accuracy": acc}
            for c, (support, acc) in enumerate(zip(metrics.get("count_support", []), metrics.get("accuracy_per_count", [])))]


def row_of(record: dict) -> dict:
    cfg = RunConfig.from_dict(record["config"])
    t, mo, tr = cfg.task, cfg.model, cfg.train
    row = {
        "task": t.name, "m": t.m, "n": t.n, "k": t.k_eff, "sampler": t.sampler, "bos": t.bos, "query": t.query,
        "eval_size": t.eval_size, "eval_seed": t.eval_seed,
        "d": mo.d, "L": mo.L, "H": mo.H, "w": mo.w, "pos": mo.pos, "causal": mo.causal, "norm": mo.norm,
        "attention": mo.attention, "topk": mo.topk,
        "seed": tr.seed, "lr": tr.lr, "train_steps": tr.steps, "batch": tr.batch, "warmup": tr.warmup,
        "schedule": tr.schedule, "weight_decay": tr.weight_decay, "clip": tr.clip,
        "steps": record.get("steps"), "stop_reason": record.get("stop_reason", ""), "status": record["status"],
        "hash": record["hash"], "fingerprint": record.get("fingerprint", ""),
        "diverged_at": record.get("diverged_at"), "wall_s": record.get("wall_s"),
        "error": record.get("error", ""),
    }
    metrics = record.get("metrics", {})
    for name in METRICS:
        row[name] = metrics.get(name)
    return row


def load_records(store: Store) -> list[dict]:
    """Every run folder's record. A corrupt record.json (or a finished one whose params/ are
    gone) becomes a record with status "corrupt" and the problem as its error, built from the
    folder's config.json, so the table lists it like a failed run; a folder whose config is
    unreadable too is reported on stderr and left out."""
    records = []
    for folder in store.run_folders():
        why = problem(folder)
        if why not in ("corrupt record.json", "params/ missing"):
            records.append(read_record(folder))
            continue
        try:
            config = json.loads((folder / CONFIG).read_text())
            RunConfig.from_dict(config)
        except (OSError, ValueError) as err:
            print(f"aggregate: {folder}: {why}, and its config.json is unreadable ({err}); left out", file=sys.stderr)
            continue
        records.append({"hash": folder.name, "config": config, "status": "corrupt",
                        "error": f"{why} (retrained by the next run of the sweep)"})
    return records


def sort_key(row: dict) -> tuple:
    return (row["task"], row["d"], row["n"], row["m"], row["k"], row["seed"], row["lr"], row["hash"])


class AggregateError(ValueError):
    """No runs to aggregate: one line naming the experiment's folder."""


def aggregate(results_dir: str | Path, experiment: str) -> tuple[Path, list[dict]]:
    """Writes results/<experiment>/table.csv (one row per model) and counts.csv (one row per
    model and true count); returns the table's path and rows."""
    store = Store(results_dir, experiment)
    if not store.has_runs():
        raise AggregateError(f"experiment: no runs under {store.root / RUNS} (train it first, or check --results-dir)")
    records = load_records(store)
    pairs = sorted(((row_of(r), r) for r in records), key=lambda pr: sort_key(pr[0]))
    rows = [row for row, _ in pairs]
    path = store.path(TABLE)
    write_table(path, rows, LEAD)
    counts = [c for row, record in pairs for c in count_rows(record, row)]
    write_table(store.path(COUNTS), counts, COUNT_LEAD)
    return path, rows


def failures(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["status"] not in ("complete", "diverged")]
