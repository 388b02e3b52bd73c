"""counting.inspect as a library: every finished model of an experiment through the
diagnostics, into results/<experiment>/inspect.csv (one row per model: the table's d, m,
n and hash columns to join with table.csv, the diagnostics, the mechanism label, and with
interventions the causal columns), the weight-growth fit into inspect_fit.csv, the seeds
compared into inspect_seeds.csv, and each model's token-space maps into inspect_maps.npz
(arrays named <hash>/<map>: the figures' data)."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from counting.config import AnalysisConfig
from counting.inspect import seeds as seeds_
from counting.inspect.diagnose import CAUSAL, DIAGNOSTICS, read
from counting.inspect.growth import FIT_COLUMNS, growth_fits
from counting.inspect.load import InspectError, SavedModel, load_model, saved_models
from counting.inspect.trace import PROBE_SEQUENCES
from counting.store import INSPECT_FIT as FIT
from counting.store import INSPECT_MAPS as MAPS
from counting.store import INSPECT_SEEDS as SEEDS
from counting.store import INSPECT_TABLE as TABLE
from counting.store import write_table
from counting.store.aggregate import read_families

LEAD = ["task", "d", "m", "n", "k", "w", "pos", "attention", "topk", "seed", "hash", "accuracy",
        "baseline_accuracy", "worst", "mechanism", "causal_mechanism", "inspect_status"]


def base_row(model: SavedModel) -> dict:
    """The start of a model's inspect.csv row: its task, model and train fields, steps, hash, held-out and
    baseline accuracy, and worst-family accuracy (where the families were evaluated)."""
    t, mo, tr = model.cfg.task, model.cfg.model, model.cfg.train
    metrics = model.record.get("metrics", {})
    families = read_families(model.folder) or {}
    return {"task": t.name, "d": mo.d, "m": t.m, "n": t.n, "k": t.k_eff, "w": mo.w, "pos": mo.pos,
            "attention": mo.attention, "topk": mo.topk, "arch": mo.arch, "L": mo.L, "H": mo.H, "norm": mo.norm,
            "seed": tr.seed, "lr": tr.lr, "weight_decay": tr.weight_decay, "steps": model.record.get("steps"),
            "hash": model.record.get("hash", model.folder.name), "accuracy": metrics.get("accuracy"),
            "baseline_accuracy": metrics.get("baseline_accuracy"), "worst": families.get("worst")}


def write_maps(path: Path, maps: dict[str, dict[str, np.ndarray]]) -> None:
    """All maps in one compressed .npz, written atomically (a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **{f"{h}/{name}": a.astype(np.float32) for h, arrays in maps.items()
                                      for name, a in arrays.items()})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def inspect_experiment(results_dir: str | Path, experiment: str, log: Callable[[str], None] = print,
                       sequences: int = PROBE_SEQUENCES, fit_seed: int = 0, interventions: bool = False,
                       tau: float = AnalysisConfig().tau) -> tuple[Path, list[dict]]:
    """Inspects every finished model; one line per model that cannot be, the rest go on.
    Raises InspectError when the experiment has no finished model."""
    from counting.evaluation.evaluate import (
        Evaluator,  # JAX and Orbax: imported only when inspecting
    )

    models = list(saved_models(results_dir, experiment))
    vocab = max((m.cfg.task.m for m in models if isinstance(m, SavedModel)), default=0)
    evaluator = Evaluator(vocab + 2)
    rows, maps, compared, start = [], {}, [], time.time()
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
            reading = read(task_cfg, net, sequences, evaluator.task(task_cfg), evaluator.batch(task_cfg),
                           interventions)
            row = {**row, **reading.row, "inspect_status": "complete", "error": ""}
            maps[row["hash"]] = reading.maps.arrays()
            compared.append(seeds_.SeedModel(seeds_.cell_key(model.cfg), row, reading.E_MxD, reading.resid_NxD,
                                             reading.first_half_N))
            rows.append(row)
        except InspectError as err:
            log(f"inspect {experiment}: {err}")
            rows.append({**row, "inspect_status": "failed", "error": str(err)})
        if (i + 1) % 20 == 0 or i + 1 == len(models):
            log(f"inspect {experiment}: {i + 1}/{len(models)} models ({time.time() - start:.0f} s)")
    order = lambda r: (r["task"], r["n"], r["w"], r["d"], r["m"], str(r["topk"]), r["seed"], r["hash"])
    rows.sort(key=order)
    root = Path(results_dir) / experiment
    path = root / TABLE
    lead = [c for c in LEAD if c != "causal_mechanism" or interventions]
    extra = [c for c in (*DIAGNOSTICS, *CAUSAL) if c not in lead and any(c in r for r in rows)]
    write_table(path, rows, lead + extra)
    fits = growth_fits([r for r in rows if r["inspect_status"] == "complete"], seed=fit_seed)
    write_table(root / FIT, fits, FIT_COLUMNS)
    compared.sort(key=lambda s: order(s.row))
    write_table(root / SEEDS, seeds_.seed_pairs(compared, tau, fit_seed), seeds_.COLUMNS)
    write_maps(root / MAPS, maps)
    return path, rows
