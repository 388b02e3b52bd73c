"""Configs to records: decide what needs training, train it as cohorts, write the folders.

Every config is looked up in the results store first. A folder with a usable finished record
from the same code is skipped; a record from other code is `stale` (retrained under the
default `rerun=stale`, kept under `rerun=never`; `rerun=all` retrains everything); a corrupt
record.json or a missing params/ folder is reported and retrained. A model finished under
another experiment of the same results directory is copied instead of trained again.

Each run folder is locked (`flock` on runs/<hash>/.lock) while its model trains, so two
sweeps started at once never train the same model twice nor write one folder together; the
operating system drops the lock of a killed process, so a stale lock is simply free again.
A failure inside one cohort is written as status "failed" (with its traceback) into that
cohort's own folders and reported at the end; every other cohort still runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from counting.config import ConfigError, RunConfig
from counting.fingerprint import code_fingerprint, suite_version
from counting.record import CONFIG, MetricsLog, atomic_write_json, save_params, versions
from counting.store import LOCK, RECORD, Store, problem
from counting.train import TrainResult

RERUN = ("stale", "never", "all")


def folder_of(cfg: RunConfig) -> Path:
    return Store(cfg.results_dir, cfg.experiment).run(cfg.hash())


def checkpoint_dir(shared: RunConfig, members: Sequence[RunConfig]) -> Path:
    """Where a cohort chunk keeps its mid-training checkpoints: keyed by its members."""
    key = hashlib.sha256(",".join(c.hash() for c in members).encode()).hexdigest()[:16]
    return Store(shared.results_dir, shared.experiment).checkpoint(key)


def provenance() -> dict:
    return {"fingerprint": code_fingerprint(), "suite_version": suite_version(), "versions": versions()}


def write_result(folder: Path, cfg: RunConfig, result: TrainResult, wall_s: float) -> dict:
    """Parameters first, then record.json: a record only ever describes saved parameters."""
    save_params(folder, result.params)
    record = {
        "hash": cfg.hash(),
        "config": cfg.to_dict(),
        "status": result.status,
        "steps": result.steps,
        "stop_reason": result.stop_reason,
        "diverged_at": result.diverged_at,
        "seed": cfg.train.seed,
        "metrics": result.metrics,
        "compile_s": result.compile_s,
        "train_s": result.train_s,
        "wall_s": wall_s,
        "cohort_size": result.layout.get("members", 1),
        "layout": result.layout,
        **provenance(),
    }
    atomic_write_json(folder / RECORD, record)
    return record


def write_failure(folder: Path, cfg: RunConfig, err: BaseException) -> dict:
    record = {
        "hash": cfg.hash(), "config": cfg.to_dict(), "status": "failed",
        "error": f"{type(err).__name__}: {err}",
        "traceback": "".join(traceback.format_exception(err)), **provenance(),
    }
    atomic_write_json(folder / RECORD, record)
    return record


@contextlib.contextmanager
def locked(folders: Sequence[Path], wait: bool):
    """Holds the lock of every folder, or (wait=False) of those free now; yields the set of
    folders whose lock is held."""
    held: dict[Path, int] = {}
    try:
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                continue
            held[folder] = fd
        yield set(held)
    finally:
        for fd in held.values():
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


@dataclasses.dataclass
class SweepReport:
    trained: list[Path] = dataclasses.field(default_factory=list)
    skipped: list[Path] = dataclasses.field(default_factory=list)
    copied: list[Path] = dataclasses.field(default_factory=list)
    failed: list[tuple[Path, str]] = dataclasses.field(default_factory=list)
    retrained: dict[str, int] = dataclasses.field(default_factory=dict)  # why -> how many

    def summary(self) -> str:
        lines = [f"{len(self.trained)} trained, {len(self.skipped)} already finished (not retrained), "
                 f"{len(self.copied)} copied from other experiments, {len(self.failed)} failed"]
        lines += [f"  FAILED {folder}: {error}" for folder, error in self.failed]
        return "\n".join(lines)


def copy_from_elsewhere(cfg: RunConfig, folder: Path, fingerprint: str | None) -> bool:
    """Copies a usable finished record of the same model from another experiment (its
    record.json last, naming this experiment and where it came from). What the folder held
    before (a stale, failed or corrupt record) is removed first, its lock excepted."""
    for store in Store(cfg.results_dir, cfg.experiment).others():
        source = store.run(cfg.hash())
        if source.is_dir() and problem(source, fingerprint) is None:
            record = json.loads((source / RECORD).read_text())
            for old in (folder.iterdir() if folder.is_dir() else ()):
                if old.name != LOCK:
                    shutil.rmtree(old) if old.is_dir() else old.unlink()
            shutil.copytree(source, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns(LOCK, RECORD, ".*.tmp"))
            record["config"]["experiment"] = cfg.experiment
            record["copied_from"] = store.experiment
            atomic_write_json(folder / CONFIG, record["config"])
            atomic_write_json(folder / RECORD, record)
            return True
    return False


def triage(cfgs: Sequence[RunConfig], rerun: str, report: SweepReport) -> list[RunConfig]:
    """The configs that need training; the rest are recorded as skipped or copied."""
    if rerun not in RERUN:
        raise ConfigError(f"rerun: unknown value {rerun!r}; allowed: {', '.join(RERUN)}")
    fingerprint = code_fingerprint() if rerun == "stale" else None
    todo = []
    for cfg in dict.fromkeys(cfgs):  # duplicates train once
        folder = folder_of(cfg)
        why = "all" if rerun == "all" else problem(folder, fingerprint)
        if why is None:
            report.skipped.append(folder)
        elif why != "all" and copy_from_elsewhere(cfg, folder, fingerprint):
            report.copied.append(folder)  # the same model, finished by this code elsewhere
        else:
            if why not in ("no record", "all"):
                report.retrained[why] = report.retrained.get(why, 0) + 1
            todo.append(cfg)
    return todo


def train_chunk(chunk: list[RunConfig], label: str, report: SweepReport, show_progress: bool) -> None:
    """Trains one chunk of a cohort into its folders (the caller holds their locks)."""
    from counting.checkpoint import CohortCheckpoint
    from counting.cohort import train_cohort
    from counting.progress import Progress

    folders = [folder_of(c) for c in chunk]
    shared = chunk[0]
    progress = Progress(len(chunk), shared.train.total_steps, label) if show_progress else None
    checkpoint = CohortCheckpoint(checkpoint_dir(shared, chunk))
    resume_at = checkpoint.latest_step()
    t0 = time.perf_counter()
    try:
        for cfg, folder in zip(chunk, folders):
            atomic_write_json(folder / CONFIG, cfg.to_dict())
        results = train_cohort(chunk, [MetricsLog(f, resume_at) for f in folders], progress, checkpoint)
        for cfg, folder, result in zip(chunk, folders, results):
            write_result(folder, cfg, result, time.perf_counter() - t0)
            report.trained.append(folder)
        checkpoint.clear()
    except Exception as err:  # this cohort failed; the others still run
        print(f"{label} failed: {type(err).__name__}: {err}", file=sys.stderr)
        traceback.print_exc()
        for cfg, folder in zip(chunk, folders):
            if problem(folder) is not None:
                write_failure(folder, cfg, err)
                report.failed.append((folder, f"{type(err).__name__}: {err}"))


def execute_many(cfgs: Sequence[RunConfig], max_models: int | None = None, show_progress: bool = True,
                 rerun: str = "stale") -> SweepReport:
    """Trains every config that needs it, grouped into cohorts that share shapes and split to
    fit the device memory. Models another process is training right now are waited for
    and then taken as they are. Returns what was trained, skipped, copied and failed."""
    from counting.plan import group, split_to_fit

    report = SweepReport()
    todo = triage(cfgs, rerun, report)
    for why, count in sorted(report.retrained.items()):
        print(f"{cfgs[0].experiment}: {count} record(s) {why}: retraining"
              + (" (rerun=never keeps stale records)" if why == "stale" else ""), file=sys.stderr)
    chunks = [chunk for cohort in group(todo) for chunk in split_to_fit(cohort, max_models)]
    for index, chunk in enumerate(chunks):
        label = f"cohort {index + 1}/{len(chunks)} {chunk[0].task.name} d={chunk[0].model.d} n={chunk[0].task.n}"
        with locked([folder_of(c) for c in chunk], wait=False) as held:
            mine = [c for c in chunk if folder_of(c) in held]
            if mine:
                train_chunk(mine, label, report, show_progress)
        busy = [c for c in chunk if c not in mine]
        if busy:  # trained by another process right now: wait for it, then look again
            with locked([folder_of(c) for c in busy], wait=True):
                again = triage(busy, "never" if rerun == "all" else rerun, report)
                if again:
                    train_chunk(again, label + " (after another process)", report, show_progress)
    return report
