"""counting.inspect as a library: every finished model of an experiment through the
diagnostics, into results/<experiment>/inspect.csv (one row per model: the table's d, m,
n and hash columns to join with table.csv, the diagnostics, the mechanism label), and the
weight-growth fit into inspect_fit.csv."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from counting.store import write_table
from counting.inspect.diagnose import DIAGNOSTICS, diagnose
from counting.inspect.growth import FIT_COLUMNS, growth_fits
from counting.inspect.load import InspectError, SavedModel, load_model, saved_models
from counting.inspect.trace import PROBE_SEQUENCES

TABLE, FIT = "inspect.csv", "inspect_fit.csv"
LEAD = ["task", "d", "m", "n", "k", "w", "pos", "attention", "topk", "seed", "hash", "accuracy",
        "baseline_accuracy", "mechanism", "inspect_status"]


def base_row(model: SavedModel) -> dict:
    t, mo, tr = model.cfg.task, model.cfg.model, model.cfg.train
    metrics = model.record.get("metrics", {})
    return {"task": t.name, "d": mo.d, "m": t.m, "n": t.n, "k": t.k_eff, "w": mo.w, "pos": mo.pos,
            "attention": mo.attention, "topk": mo.topk, "L": mo.L, "H": mo.H, "norm": mo.norm, "seed": tr.seed,
            "steps": model.record.get("steps"), "hash": model.record.get("hash", model.folder.name),
            "accuracy": metrics.get("accuracy"), "baseline_accuracy": metrics.get("baseline_accuracy")}


def inspect_experiment(results_dir: str | Path, experiment: str, log: Callable[[str], None] = print,
                       sequences: int = PROBE_SEQUENCES, fit_seed: int = 0) -> tuple[Path, list[dict]]:
    """Inspects every finished model; one line per model that cannot be, the rest go on.
    Raises InspectError when the experiment has no finished model."""
    from counting.evaluate import Evaluator  # JAX and Orbax: imported only when inspecting

    models = list(saved_models(results_dir, experiment))
    vocab = max((m.cfg.task.m for m in models if isinstance(m, SavedModel)), default=0)
    evaluator = Evaluator(vocab + 2)
    rows, start = [], time.time()
    for i, model in enumerate(models):
        if isinstance(model, InspectError):
            log(f"inspect {experiment}: {model}")
            continue
        row = base_row(model)
        try:
            graphdef, params = load_model(evaluator, model)
            from flax import nnx

            net = nnx.merge(graphdef, params)
            task_cfg = model.cfg.task
            numbers = diagnose(task_cfg, net, sequences, evaluator.task(task_cfg), evaluator.batch(task_cfg))
            rows.append({**row, **numbers, "inspect_status": "complete", "error": ""})
        except InspectError as err:
            log(f"inspect {experiment}: {err}")
            rows.append({**row, "inspect_status": "failed", "error": str(err)})
        if (i + 1) % 20 == 0 or i + 1 == len(models):
            log(f"inspect {experiment}: {i + 1}/{len(models)} models ({time.time() - start:.0f} s)")
    rows.sort(key=lambda r: (r["task"], r["n"], r["w"], r["d"], r["m"], str(r["topk"]), r["seed"], r["hash"]))
    root = Path(results_dir) / experiment
    path = root / TABLE
    write_table(path, rows, LEAD + [c for c in DIAGNOSTICS if c in (rows[0] if rows else {})])
    fits = growth_fits([r for r in rows if r["inspect_status"] == "complete"], seed=fit_seed)
    write_table(root / FIT, fits, FIT_COLUMNS)
    return path, rows
