"""Configs to records: decide what needs training, train it as cohorts, write the folders.

Every config is looked up in the results store. A folder with a usable finished record from
the same code is skipped; a record from other code is `stale` (retrained under the default
`rerun=stale`, kept under `rerun=never`; `rerun=all` retrains every record older than the
sweep); a corrupt record.json or a missing params/ folder is reported and retrained. A model
finished under another experiment of the same results directory is copied instead of trained.

Decisions are taken under the lock. Each run folder has a lock (`flock` on runs/<hash>/.lock):
a process first takes the locks of a chunk's members, then looks at each folder (`problem`),
copies from elsewhere or trains; members whose lock another process holds are waited for and
looked at again afterwards. Nothing is deleted or copied into a folder without its lock, and
a copy holds the source folder's lock (shared) while it reads. The operating system drops
the lock of a killed process, so a stale lock is simply free again. A failure inside one
chunk is written as status "failed" (with its traceback) into that chunk's own folders and
reported at the end; every other chunk still runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
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

from counting.config import CohortConfig, RunConfig
from counting.runtime.machine import arithmetic, versions
from counting.store import CONFIG, LOCK, RECORD, Store, problem
from counting.store.atomic import atomic_write_json
from counting.store.fingerprint import code_fingerprint, suite_version
from counting.store.record import MetricsLog, save_params
from counting.store.trackers import Trackers, require


class DiskError(ValueError):
    """Not enough room for the results: one line naming the folder and the free space."""


def folder_of(cfg: RunConfig) -> Path:
    """The run folder of cfg: runs/<hash>/ of its experiment."""
    return Store(cfg.results_dir, cfg.experiment).run(cfg.hash())


def checkpoint_dir(shared: RunConfig, members: Sequence[RunConfig]) -> Path:
    """Where a cohort chunk keeps its mid-training checkpoints: keyed by its members."""
    key = hashlib.sha256(",".join(c.hash() for c in members).encode()).hexdigest()[:16]
    return Store(shared.results_dir, shared.experiment).checkpoint(key)


def provenance(cfg: RunConfig) -> dict:
    """What a record says of the code and machine that wrote it: the code fingerprint, the suite's version, the
    package versions and the arithmetic."""
    return {"fingerprint": code_fingerprint(cfg), "suite_version": suite_version(), "versions": versions(),
            "arithmetic": arithmetic()}


def write_result(folder: Path, cfg: RunConfig, result, wall_s: float) -> dict:
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
        **provenance(cfg),
    }
    if result.halving is not None:
        record["halving"] = result.halving
    atomic_write_json(folder / RECORD, record)
    return record


def write_failure(folder: Path, cfg: RunConfig, err: BaseException) -> dict:
    """Writes (atomically) a record of status failed with the error and its traceback; returns it."""
    record = {
        "hash": cfg.hash(), "config": cfg.to_dict(), "status": "failed",
        "error": f"{type(err).__name__}: {err}",
        "traceback": "".join(traceback.format_exception(err)), **provenance(cfg),
    }
    atomic_write_json(folder / RECORD, record)
    return record


@contextlib.contextmanager
def locked(folders: Sequence[Path], wait: bool, shared: bool = False):
    """Holds the lock of every folder, or (wait=False) of those free now; yields the set of
    folders whose lock is held. `shared`: a reader's lock (several may hold it at once, never
    beside a writer's)."""
    held: dict[Path, int] = {}
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    try:
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, mode | (0 if wait else fcntl.LOCK_NB))
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
    """What a sweep did: the folders it trained, skipped, copied and failed (with the error), and how many it
    retrained for each reason."""

    trained: list[Path] = dataclasses.field(default_factory=list)
    skipped: list[Path] = dataclasses.field(default_factory=list)
    copied: list[Path] = dataclasses.field(default_factory=list)
    failed: list[tuple[Path, str]] = dataclasses.field(default_factory=list)
    retrained: dict[str, int] = dataclasses.field(default_factory=dict)  # why -> how many

    def summary(self) -> str:
        """The report in a few lines: the counts, then each failure (one line for more than two models that
        failed with the same error)."""
        lines = [(f"{len(self.trained)} trained, {len(self.skipped)} already finished (not retrained), "
                 f"{len(self.copied)} copied from other experiments, {len(self.failed)} failed")]
        by_error: dict[str, list[Path]] = {}
        for folder, error in self.failed:
            by_error.setdefault(error, []).append(folder)
        for error, folders in by_error.items():
            if len(folders) > 2:  # one line for many models that failed alike (a full disk)
                lines.append(f"  FAILED {len(folders)} models under {folders[0].parent}: {error}")
            else:
                lines += [f"  FAILED {folder}: {error}" for folder in folders]
        return "\n".join(lines)


def copy_from_elsewhere(cfg: RunConfig, folder: Path) -> str | None:
    """Copies a usable finished record of the same model from another experiment (its
    record.json last, naming this experiment and where it came from); returns the source
    experiment, or None. The caller holds `folder`'s lock; the source's lock is taken shared
    (a source another process is writing is passed over). What the folder held before (a
    stale, failed or corrupt record) is removed first, its lock excepted."""
    for store in Store(cfg.results_dir, cfg.experiment).others():
        source = store.run(cfg.hash())
        if not (source / RECORD).is_file():
            continue
        with locked([source], wait=False, shared=True) as held:
            if source not in held or problem(source, code_fingerprint(cfg)) is not None:
                continue
            record = json.loads((source / RECORD).read_text())
            for old in (folder.iterdir() if folder.is_dir() else ()):
                if old.name != LOCK:
                    shutil.rmtree(old) if old.is_dir() else old.unlink()
            shutil.copytree(source, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns(LOCK, RECORD, ".*.tmp"))
        record["config"]["experiment"] = cfg.experiment
        record["copied_from"] = store.experiment
        atomic_write_json(folder / CONFIG, record["config"])
        atomic_write_json(folder / RECORD, record)
        return store.experiment
    return None


def why_train(cfg: RunConfig, rerun: str, since: float) -> str | None:
    """Why the model needs training (None: its folder is usable as it is). Under rerun=all a
    record written after `since` (the sweep's start: by another process of the same sweep)
    counts as usable."""
    folder = folder_of(cfg)
    why = problem(folder, code_fingerprint(cfg) if rerun == "stale" else None)
    if rerun == "all" and (why is None or why == "stale"):
        fresh = why is None and (folder / RECORD).stat().st_mtime >= since
        return None if fresh else "all"
    return why


def decide(cfgs: Sequence[RunConfig], rerun: str, since: float, report: SweepReport,
           force: set | None = None) -> list[RunConfig]:
    """Under the lock of every cfg's folder: the configs to train; the others are recorded as
    skipped (usable as they are) or copied (from another experiment). `force`: configs to
    train whatever their folder holds (the rest of a halving race one of whose members needs
    training: a race is decided among all its members)."""
    todo = []
    for cfg in cfgs:
        folder = folder_of(cfg)
        why = "halving race" if force and cfg in force else why_train(cfg, rerun, since)
        if why is None:
            report.skipped.append(folder)
        elif why not in ("all", "halving race") and copy_from_elsewhere(cfg, folder):
            report.copied.append(folder)
        else:
            if why not in ("no record", "all"):
                report.retrained[why] = report.retrained.get(why, 0) + 1
            todo.append(cfg)
    return todo


def whole_races(cfgs: Sequence[RunConfig], todo: Sequence[RunConfig]) -> set[RunConfig]:
    """The members of halving races that are partly done: they train again with the rest."""
    from counting.training.halving import cell_key

    open_races = {cell_key(c) for c in todo if c.halving.active}
    return {c for c in cfgs if c.halving.active and cell_key(c) in open_races and c not in set(todo)}


def check_disk(cfgs: Sequence[RunConfig], rerun: str = "stale") -> None:
    """DiskError before any compute when the results folder's file system has less room than
    the models that need training will write (`plan.disk_bytes`)."""
    from counting.sweep.plan import disk_bytes

    since = time.time()
    cfgs = [c for c in dict.fromkeys(cfgs) if why_train(c, rerun, since) is not None]
    if not cfgs:
        return
    root = Path(cfgs[0].results_dir)
    probe = next((p for p in [root, *root.resolve().parents] if p.exists()), Path("."))
    free = shutil.disk_usage(probe).free
    need = disk_bytes(cfgs)
    if need > free:
        raise DiskError(f"results_dir {root}: {free / 2**20:.1f} MiB free on its file system, the sweep writes "
                        f"about {need / 2**20:.1f} MiB ({len(cfgs)} models); free some space or give another results_dir")


def is_disk_full(err: BaseException) -> bool:
    """Whether err (or what caused it) is a full disk or quota."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(err):
            return True
        err = err.__cause__ or err.__context__
    return False


def train_chunk(chunk: list[RunConfig], label: str, report: SweepReport, show_progress: bool,
                settings: CohortConfig = CohortConfig()) -> None:
    """Trains one chunk of a cohort into its folders (the caller holds their locks)."""
    from counting.store.checkpoint import CohortCheckpoint
    from counting.sweep.cohort import train_cohort
    from counting.sweep.progress import Progress

    folders = [folder_of(c) for c in chunk]
    shared = chunk[0]
    progress = Progress(len(chunk), shared.train.total_steps, label) if show_progress else None
    checkpoint = CohortCheckpoint(checkpoint_dir(shared, chunk))
    resume_at = checkpoint.latest_step()
    t0 = time.perf_counter()
    trackers = Trackers(chunk, resume_at)  # logger: metrics.jsonl's rows also go there (counting.store.trackers)
    try:
        for cfg, folder in zip(chunk, folders):
            atomic_write_json(folder / CONFIG, cfg.to_dict())
        logs = [trackers.wrap(i, MetricsLog(f, resume_at)) for i, f in enumerate(folders)]
        results = train_cohort(chunk, logs, progress, checkpoint, settings)
        for cfg, folder, result in zip(chunk, folders, results):
            write_result(folder, cfg, result, time.perf_counter() - t0)
            report.trained.append(folder)
        checkpoint.clear()
    except Exception as err:  # this chunk failed; the others still run
        full = is_disk_full(err)
        error = f"no space left on device under {shared.results_dir}" if full else f"{type(err).__name__}: {err}"
        print(f"{label} failed: {error}", file=sys.stderr)
        if not full:
            traceback.print_exc()
        for cfg, folder in zip(chunk, folders):
            if problem(folder) is not None:
                with contextlib.suppress(OSError):  # on a full disk even the failure may not fit
                    write_failure(folder, cfg, err)
                report.failed.append((folder, error))
    finally:
        trackers.close()


def execute_many(cfgs: Sequence[RunConfig], settings: CohortConfig = CohortConfig(), show_progress: bool = True,
                 rerun: str = "stale") -> SweepReport:
    """Trains every config that needs it, grouped into cohorts that share shapes and split to
    fit the device memory. Models another process is training right now are waited for and
    then looked at again. `settings`: the job's cohort section (max_models, compact,
    compact_sizes, per_call; its axes are already in `cfgs`). Returns what was trained, skipped, copied and failed. DiskError
    (before any compute) when the results folder's file system has too little room."""
    from counting.config import check_rerun
    from counting.sweep.plan import group, split_to_fit

    rerun = check_rerun(rerun)  # a one-line ConfigError naming rerun and its values
    since = time.time()
    report = SweepReport()
    cfgs = list(dict.fromkeys(cfgs))  # duplicates train once
    first_look = [c for c in cfgs if why_train(c, rerun, since) is not None]  # read only: decided under the lock
    force = whole_races(cfgs, first_look)
    first_look += [c for c in cfgs if c in force]
    for logger in dict.fromkeys(c.logger for c in first_look):
        require(logger)  # a one-line ConfigError before any compute when the logger's package is missing
    check_disk(first_look, rerun)
    chunks = [chunk for cohort in group(first_look) for chunk in split_to_fit(cohort, settings.max_models)]
    report.skipped += [folder_of(c) for c in cfgs if c not in set(first_look)]
    for index, chunk in enumerate(chunks):
        label = f"cohort {index + 1}/{len(chunks)} {chunk[0].task.name} d={chunk[0].model.d} n={chunk[0].task.n}"
        with locked([folder_of(c) for c in chunk], wait=False) as held:
            mine = decide([c for c in chunk if folder_of(c) in held], rerun, since, report, force)
            if mine:
                train_chunk(mine, label, report, show_progress, settings)
        busy = [c for c in chunk if folder_of(c) not in held]
        if busy:  # trained by another process right now: wait for it, then look again
            with locked([folder_of(c) for c in busy], wait=True):
                again = decide(busy, rerun, since, report)
                if again:
                    train_chunk(again, label + " (after another process)", report, show_progress, settings)
    for why, count in sorted(report.retrained.items()):
        print(f"{cfgs[0].experiment}: {count} record(s) {why}: retrained"
              + (" (rerun=never keeps stale records)" if why == "stale" else ""), file=sys.stderr)
    return report
