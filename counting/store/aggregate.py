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
from counting.runtime import machine
from counting.store import CONFIG, COUNTS, FAMILIES, FINISHED, RUNS, TABLE, Store, problem, read_record, write_table
from counting.store import METRICS as LOG
from counting.store.columns import identity_row

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


def layout_label(layout: dict | None) -> str:
    """'2 devices, 18 members, 9 per call': the program a record's arithmetic came from."""
    if not layout:
        return ""
    text = f"{layout.get('devices', 1)} devices, {layout.get('members', 1)} members, {layout.get('members_per_call', 1)} per call"
    segments = layout.get("segments")
    if segments:
        text += "; then " + ", ".join(f"{s['members']} from step {s['from_step']}" for s in segments[1:])
    return text


def read_families(folder: Path | None) -> dict | None:
    """A run folder's families.json (counting.tasks.families), when it has one."""
    if folder is None:
        return None
    try:
        return json.loads((Path(folder) / FAMILIES).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def exactness(record: dict, folder: Path | None, exact: float | None = None) -> dict:
    """Steps to exactness of a run that watched its validation families (counting.training.support): the
    first evaluation whose worst in-support validation family reached `exact` (default
    analysis.exact), the total weight norm then, and whether it never did (right-censored at its
    last step). Empty for other runs."""
    if folder is None or "support_worst" not in record.get("metrics", {}) or not (Path(folder) / LOG).exists():
        return {}
    from counting.config import AnalysisConfig

    exact = AnalysisConfig().exact if exact is None else exact
    last = None
    for line in (Path(folder) / LOG).read_text().splitlines():
        row = json.loads(line)
        if row.get("support_worst") is None:
            continue
        last = row
        if row["support_worst"] >= exact:
            norm = sum(v * v for v in row.get("param_norms", {}).values()) ** 0.5
            return {"steps_to_exact": row["step"], "exact_norm": norm, "exact_censored": False}
    return {"steps_to_exact": record.get("steps") if last is None else max(last["step"], record.get("steps") or 0),
            "exact_norm": None, "exact_censored": True}


def row_of(record: dict, folder: Path | None = None) -> dict:
    """One table row: every identity field of the run (counting.store.columns), then what the
    record says of its training, provenance and final held-out metrics (and, from its folder,
    its worst-case family accuracies where they were evaluated)."""
    cfg = RunConfig.from_record(record["config"])
    row = identity_row(cfg)
    row.update({
        "steps": record.get("steps"), "stop_reason": record.get("stop_reason", ""), "status": record["status"],
        "hash": record["hash"], "fingerprint": record.get("fingerprint", ""),
        "arithmetic": machine.label(record.get("arithmetic")), "jaxlib": record.get("versions", {}).get("jaxlib", ""),
        "layout": layout_label(record.get("layout")),
        "diverged_at": record.get("diverged_at"), "wall_s": record.get("wall_s"),
        "error": record.get("error", ""),
    })
    families = read_families(folder)
    if families:  # the worst-case families (counting.tasks.families): exact counting is read from `worst`
        row["worst"] = families["worst"]  # in-support (families.json version 2; earlier: of all families)
        row["worst_off"] = families.get("worst_off")
        row.update({f"family.{k}": v["accuracy"] for k, v in families["families"].items()})
    if "halving" in record:  # trained under successive halving: its rung and whether its setting won them all
        row.update({"rung": record["halving"].get("rung"), "promoted": record["halving"].get("promoted")})
    metrics = record.get("metrics", {})
    for name in METRICS:
        row[name] = metrics.get(name)
    if "support_worst" in metrics:  # watched its validation families (counting.training.support)
        row["support_worst"] = metrics["support_worst"]
        row.update(exactness(record, folder))
    return row


def load_records(store: Store) -> list[tuple[Path, dict]]:
    """(folder, record) of every run folder. A corrupt record.json (or a finished one whose params/ are
    gone) becomes a record with status "corrupt" and the problem as its error, built from the
    folder's config.json, so the table lists it like a failed run; a folder whose config is
    unreadable too is reported on stderr and left out."""
    records = []
    for folder in store.run_folders():
        why = problem(folder)
        if why not in ("corrupt record.json", "params/ missing"):
            records.append((folder, read_record(folder)))
            continue
        try:
            config = json.loads((folder / CONFIG).read_text())
            RunConfig.from_record(config)
        except (OSError, ValueError) as err:
            print(f"aggregate: {folder}: {why}, and its config.json is unreadable ({err}); left out", file=sys.stderr)
            continue
        records.append((folder, {"hash": folder.name, "config": config, "status": "corrupt",
                                 "error": f"{why} (retrained by the next run of the sweep)"}))
    return records


def sort_key(row: dict) -> tuple:
    """The table's row order: task, d, n, m, k, seed, lr, hash."""
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
    pairs = sorted(((row_of(r, folder), r) for folder, r in records), key=lambda pr: sort_key(pr[0]))
    rows = [row for row, _ in pairs]
    path = store.path(TABLE)
    write_table(path, rows, LEAD)
    counts = [c for row, record in pairs for c in count_rows(record, row)]
    write_table(store.path(COUNTS), counts, COUNT_LEAD)
    return path, rows


def failures(rows: list[dict]) -> list[dict]:
    """The rows of models that did not finish (status neither complete nor diverged)."""
    return [r for r in rows if r["status"] not in FINISHED]
