"""Run records -> one results table: results/<experiment>/table.csv, one row per model.

Every config field is a column (so every swept parameter is one), next to the final
held-out metrics and the run's status; failed runs keep their error.
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


def row_of(record: dict) -> dict:
    cfg = RunConfig.from_dict(record["config"])
    t, mo, tr = cfg.task, cfg.model, cfg.train
    row = {
        "task": t.name, "m": t.m, "n": t.n, "k": t.k_eff, "sampler": t.sampler, "bos": t.bos, "query": t.query,
        "eval_size": t.eval_size, "eval_seed": t.eval_seed,
        "d": mo.d, "L": mo.L, "H": mo.H, "w": mo.w, "pos": mo.pos, "causal": mo.causal, "norm": mo.norm,
        "softmax": mo.softmax,
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


def load_rows(runs_dir: Path) -> list[dict]:
    rows = []
    for path in sorted(Path(runs_dir).glob(f"*/{RECORD}")):
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue  # records are written atomically; this is not one of ours
        rows.append(row_of(record))
    rows.sort(key=lambda r: (r["task"], r["d"], r["n"], r["m"], r["k"], r["seed"], r["lr"], r["hash"]))
    return rows


def aggregate(results_dir: str | Path, experiment: str) -> tuple[Path, list[dict]]:
    """Writes results/<experiment>/table.csv; returns its path and rows."""
    root = Path(results_dir) / experiment
    rows = load_rows(root / "runs")
    columns = LEAD + [c for c in (rows[0] if rows else {}) if c not in LEAD]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = root / "table.csv"
    atomic_write_text(path, buf.getvalue())
    return path, rows


def failures(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["status"] not in ("complete", "diverged")]
