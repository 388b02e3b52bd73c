"""One run, config to record: train a model and write its folder."""

from __future__ import annotations

import time
import traceback
from pathlib import Path

from counting.config import RunConfig
from counting.record import (
    CONFIG, RECORD, MetricsLog, atomic_write_json, is_finished, read_record, run_dir, save_params, versions,
)
from counting.train import TrainResult, train


def folder_of(cfg: RunConfig) -> Path:
    return run_dir(cfg.results_dir, cfg.experiment, cfg.hash())


def write_result(folder: Path, cfg: RunConfig, result: TrainResult, wall_s: float) -> dict:
    """Parameters first, then record.json: a record only ever describes saved parameters."""
    save_params(folder, result.params)
    record = {
        "hash": cfg.hash(),
        "config": cfg.to_dict(),
        "status": result.status,
        "steps": result.steps,
        "diverged_at": result.diverged_at,
        "seed": cfg.train.seed,
        "metrics": result.metrics,
        "compile_s": result.compile_s,
        "train_s": result.train_s,
        "wall_s": wall_s,
        "versions": versions(),
    }
    atomic_write_json(folder / RECORD, record)
    return record


def execute(cfg: RunConfig, skip_finished: bool = True) -> tuple[Path, dict]:
    """Trains `cfg` into its folder unless a finished record is already there.

    An exception inside training is recorded as status "failed" (with its traceback) and
    re-raised; other runs' folders are never touched.
    """
    folder = folder_of(cfg)
    if skip_finished and is_finished(folder):
        return folder, read_record(folder)
    atomic_write_json(folder / CONFIG, cfg.to_dict())
    t0 = time.perf_counter()
    try:
        result = train(cfg, log=MetricsLog(folder))
    except Exception as err:
        atomic_write_json(folder / RECORD, {
            "hash": cfg.hash(), "config": cfg.to_dict(), "status": "failed",
            "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc(), "versions": versions(),
        })
        raise
    return folder, write_result(folder, cfg, result, time.perf_counter() - t0)
