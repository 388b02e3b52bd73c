"""Run records -> one results table: results/<experiment>/table.csv, one row per model.

Every config field is a column (so every swept parameter is one), next to the final
held-out metrics and the run's status; failed runs keep their error. Beside it, counts.csv
holds each model's accuracy per true count (long format) for the per-count figure.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from counting.config import RunConfig
from counting.record import RECORD, atomic_write_text

LEAD = ["task", "d", "m", "n", "k", "L", "H", "w", "pos", "seed", "lr", "steps",
        "accuracy", "baseline_accuracy", "status"]
METRICS = ["accuracy", "baseline_accuracy", "seq_accuracy", "loss"]
COUNT_LEAD = ["task", "d", "m", "n", "k", "seed", "count", "support", "accuracy"]
TABLE, COUNTS = "table.csv", "counts.csv"


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
        "steps": record.get("steps"), "status": record["status"], "hash": record["hash"],
        "diverged_at": record.get("diverged_at"), "wall_s": record.get("wall_s"),
        "error": record.get("error", ""),
    }
    metrics = record.get("metrics", {})
    for name in METRICS:
        row[name] = metrics.get(name)
    return row


def load_records(runs_dir: Path) -> list[dict]:
    records = []
    for path in sorted(Path(runs_dir).glob(f"*/{RECORD}")):
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue  # records are written atomically; this is not one of ours
        records.append(record)
    return records


def sort_key(row: dict) -> tuple:
    return (row["task"], row["d"], row["n"], row["m"], row["k"], row["seed"], row["lr"], row["hash"])


def load_rows(runs_dir: Path) -> list[dict]:
    return sorted((row_of(r) for r in load_records(runs_dir)), key=sort_key)


def write_table(path: Path, rows: list[dict], lead: list[str]) -> None:
    columns = lead + [c for c in (rows[0] if rows else {}) if c not in lead]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def aggregate(results_dir: str | Path, experiment: str) -> tuple[Path, list[dict]]:
    """Writes results/<experiment>/table.csv (one row per model) and counts.csv (one row per
    model and true count); returns the table's path and rows."""
    root = Path(results_dir) / experiment
    records = load_records(root / "runs")
    pairs = sorted(((row_of(r), r) for r in records), key=lambda pr: sort_key(pr[0]))
    rows = [row for row, _ in pairs]
    path = root / TABLE
    write_table(path, rows, LEAD)
    counts = [c for row, record in pairs for c in count_rows(record, row)]
    write_table(root / COUNTS, counts, COUNT_LEAD)
    return path, rows


def failures(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["status"] not in ("complete", "diverged")]
