"""Configs to records: train models (alone or as cohorts) and write their folders.

Finished folders are skipped, so running the same command again trains only what is
missing. A failure inside one cohort is written as status "failed" (with its traceback) into
that cohort's own folders and reported at the end; every other cohort still runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from counting.config import RunConfig
from counting.record import (
    CONFIG, RECORD, MetricsLog, atomic_write_json, is_finished, read_record, run_dir, save_params, versions,
)
from counting.train import TrainResult, train


def folder_of(cfg: RunConfig) -> Path:
    return run_dir(cfg.results_dir, cfg.experiment, cfg.hash())


def checkpoint_dir(shared: RunConfig, members: Sequence[RunConfig]) -> Path:
    """Where a cohort chunk keeps its mid-training checkpoints: keyed by its members."""
    key = hashlib.sha256(",".join(c.hash() for c in members).encode()).hexdigest()[:16]
    return Path(shared.results_dir) / shared.experiment / "checkpoints" / key


def write_result(folder: Path, cfg: RunConfig, result: TrainResult, wall_s: float, cohort_size: int = 1) -> dict:
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
        "cohort_size": cohort_size,
        "versions": versions(),
    }
    atomic_write_json(folder / RECORD, record)
    return record


def write_failure(folder: Path, cfg: RunConfig, err: BaseException) -> dict:
    record = {
        "hash": cfg.hash(), "config": cfg.to_dict(), "status": "failed",
        "error": f"{type(err).__name__}: {err}",
        "traceback": "".join(traceback.format_exception(err)), "versions": versions(),
    }
    atomic_write_json(folder / RECORD, record)
    return record


def execute(cfg: RunConfig, skip_finished: bool = True) -> tuple[Path, dict]:
    """Trains one model into its folder unless a finished record is already there."""
    folder = folder_of(cfg)
    if skip_finished and is_finished(folder):
        return folder, read_record(folder)
    atomic_write_json(folder / CONFIG, cfg.to_dict())
    t0 = time.perf_counter()
    try:
        result = train(cfg, log=MetricsLog(folder))
    except Exception as err:
        write_failure(folder, cfg, err)
        raise
    return folder, write_result(folder, cfg, result, time.perf_counter() - t0)


@dataclasses.dataclass
class SweepReport:
    trained: list[Path] = dataclasses.field(default_factory=list)
    skipped: list[Path] = dataclasses.field(default_factory=list)
    failed: list[tuple[Path, str]] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        lines = [f"{len(self.trained)} trained, {len(self.skipped)} already finished, {len(self.failed)} failed"]
        lines += [f"  FAILED {folder}: {error}" for folder, error in self.failed]
        return "\n".join(lines)


def execute_many(cfgs: Sequence[RunConfig], max_models: int | None = None, show_progress: bool = True) -> SweepReport:
    """Trains every unfinished config, grouped into cohorts that share shapes and split to
    fit the device memory. Returns what was trained, skipped and failed."""
    from counting.checkpoint import CohortCheckpoint
    from counting.cohort import group, split_to_fit, train_cohort
    from counting.progress import Progress

    report = SweepReport()
    todo = []
    for cfg in dict.fromkeys(cfgs):  # duplicates train once
        if is_finished(folder_of(cfg)):
            report.skipped.append(folder_of(cfg))
        else:
            todo.append(cfg)
    chunks = [chunk for cohort in group(todo) for chunk in split_to_fit(cohort, max_models)]
    for index, chunk in enumerate(chunks):
        folders = [folder_of(c) for c in chunk]
        shared = chunk[0]
        label = (f"cohort {index + 1}/{len(chunks)} {shared.task.name} d={shared.model.d} n={shared.task.n}")
        progress = Progress(len(chunk), shared.train.steps, label) if show_progress else None
        checkpoint = CohortCheckpoint(checkpoint_dir(shared, chunk))
        resume_at = checkpoint.latest_step()
        t0 = time.perf_counter()
        try:
            for cfg, folder in zip(chunk, folders):
                atomic_write_json(folder / CONFIG, cfg.to_dict())
            results = train_cohort(chunk, [MetricsLog(f, resume_at) for f in folders], progress, checkpoint)
            for cfg, folder, result in zip(chunk, folders, results):
                write_result(folder, cfg, result, time.perf_counter() - t0, cohort_size=len(chunk))
                report.trained.append(folder)
            checkpoint.clear()
        except Exception as err:  # this cohort failed; the others still run
            print(f"cohort {index + 1}/{len(chunks)} failed: {type(err).__name__}: {err}", file=sys.stderr)
            traceback.print_exc()
            for cfg, folder in zip(chunk, folders):
                if not is_finished(folder):
                    write_failure(folder, cfg, err)
                    report.failed.append((folder, f"{type(err).__name__}: {err}"))
    return report
