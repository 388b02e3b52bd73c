"""Where a run's evaluations go besides metrics.jsonl: TensorBoard event files or W&B (offline).

`logger` (a field of the run, never part of its identity) picks the sink: `jsonl` (the default)
writes metrics.jsonl only; `tensorboard` also writes event files, one TensorBoard run per model
under <results_dir>/<experiment>/tensorboard/<run name>/ (`run_name`: the cell, the seed and the
first 6 characters of the run's hash), so that

    tensorboard --logdir <results_dir>/<experiment>/tensorboard

opens a sweep's curves; `wandb` logs one W&B run per model, offline unless WANDB_MODE says
otherwise, under <results_dir>/<experiment>/wandb/ (or WANDB_DIR); `wandb sync` uploads it later.

A sink is fed the same rows as metrics.jsonl, after metrics.jsonl has taken them: the tables are
read from metrics.jsonl and record.json only, never from a sink. The scalars (`scalars`): held-out
`loss`, `accuracy`, `seq_accuracy` and `baseline_accuracy`, `train_loss`, `support_worst` and
`support/<family>` when the run watches its validation families, `param_norm/<module>`, and
`stop` (0 while the model trains, 1 from the evaluation it stopped at; the reason as the text
`stop_reason`). A row carries its model's stop (`stop_reason`, or status diverged) except the
budget's: the evaluation at the last step of the budget is where such a model stops.

A failing sink never fails or changes the run: it prints one line and the chunk goes on with
metrics.jsonl only. A resumed attempt (from a checkpoint at step s) writes only the rows it is
handed (steps after s) and marks its event file to purge what an earlier attempt wrote after s
(tensorboardX's `purge_step`: TensorBoard drops those steps); a fresh attempt starts fresh curves.
The writers are imported only by the sink that needs them (`pip install 'counting[tensorboard]'`,
`'counting[wandb]'`).

The TensorBoard writer is tensorboardX: a maintained, pure-Python event-file writer whose only
requirements are numpy, protobuf and packaging. clu's metric writers write through
`tf.summary` (TensorFlow) or torch's SummaryWriter, a far heavier install for the same files.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from counting.config import LOGGERS, RunConfig
from counting.spec import ConfigError
from counting.store import Store

TENSORBOARD, WANDB = "tensorboard", "wandb"  # the logger values, and their folders under <results_dir>/<experiment>/
PACKAGES = {TENSORBOARD: "tensorboardX", WANDB: "wandb"}  # what each sink imports
METRICS = ("loss", "train_loss", "accuracy", "seq_accuracy", "baseline_accuracy", "support_worst")
STOP, REASON = "stop", "stop_reason"
FLUSH_SECS = 10  # how often the event files reach the disk (a killed run loses at most this much)

__all__ = ["LOGGERS", "TENSORBOARD", "WANDB", "Trackers", "require", "run_name", "scalars", "tensorboard_dir"]


def run_name(cfg: RunConfig) -> str:
    """A model's run in a tracker, by its cell and seed: d8_m12_n16_lr0.003_wd0.01_seed0_1a2b3c
    (k after n when set; the hash's first 6 characters keep runs that differ elsewhere apart)."""
    task, train = cfg.task, cfg.train
    parts = [f"d{cfg.model.d}", f"m{task.m}", f"n{task.n}", *([f"k{task.k}"] if task.k is not None else []),
             f"lr{train.lr:g}", f"wd{train.weight_decay:g}", f"seed{train.seed}", cfg.hash()[:6]]
    return "_".join(parts)


def tensorboard_dir(cfg: RunConfig) -> Path:
    """The sweep's TensorBoard log directory: one sub-folder per model (`run_name`)."""
    return Store(cfg.results_dir, cfg.experiment).path(TENSORBOARD)


def stop_reason(row: dict, budget: int | None = None) -> str | None:
    """Why the model stopped at this row's step (None: it still trains); `budget`: the run's
    step budget (train.total_steps), where a model that did not stop earlier stops."""
    if row.get(REASON):
        return str(row[REASON])
    if row.get("status") == "diverged":
        return "diverged"
    return "budget" if budget is not None and row.get("step", 0) >= budget else None


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def scalars(row: dict, budget: int | None = None) -> dict[str, float]:
    """One metrics row's scalars under their tracker tags (finite values only)."""
    out = {key: _number(row.get(key)) for key in METRICS}
    for prefix, key in (("support", "support"), ("param_norm", "param_norms")):
        for name, value in (row.get(key) or {}).items():
            out[f"{prefix}/{name}"] = _number(value)
    out = {tag: value for tag, value in out.items() if value is not None}
    out[STOP] = 0.0 if stop_reason(row, budget) is None else 1.0
    return out


def require(kind: str) -> None:
    """A one-line ConfigError, before any compute, when the sink `kind` cannot be imported."""
    if kind not in LOGGERS:
        raise ConfigError(f"logger: must be one of {', '.join(LOGGERS)}, got {kind!r}")
    package = PACKAGES.get(kind)
    if package is not None and importlib.util.find_spec(package) is None:
        raise ConfigError(f"logger: {kind} needs the {package} package: pip install 'counting[{kind}]' "
                          "(or logger=jsonl)")


class TensorBoardSink:
    """One model's TensorBoard run, written through tensorboardX."""

    KIND = TENSORBOARD

    def __init__(self, cfg: RunConfig, resume_at: int | None):
        from tensorboardX import SummaryWriter

        self.folder = tensorboard_dir(cfg) / run_name(cfg)
        if resume_at is None:  # a fresh attempt: fresh curves, as metrics.jsonl starts fresh
            shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        purge = None if resume_at is None else resume_at + 1
        # the file's name has the second it was opened in; the suffix keeps two attempts of the
        # same second apart, in order (TensorBoard reads a run's files in the order of their names)
        self.writer = SummaryWriter(str(self.folder), purge_step=purge, flush_secs=FLUSH_SECS,
                                    filename_suffix=f".{time.time_ns()}")
        self.budget = cfg.train.total_steps

    def log(self, row: dict) -> None:
        """Writes one metrics row's scalars at its step, and the stop reason as text when the model stops there."""
        step = int(row["step"])
        for tag, value in scalars(row, self.budget).items():
            self.writer.add_scalar(tag, value, step)
        reason = stop_reason(row, self.budget)
        if reason is not None:
            self.writer.add_text(REASON, reason, step)

    def close(self) -> None:
        """Flushes and closes the event file."""
        self.writer.close()


class WandbSink:
    """One model's W&B run: offline (unless WANDB_MODE says otherwise), config and hash attached."""

    KIND = WANDB

    def __init__(self, cfg: RunConfig, resume_at: int | None):
        import wandb

        root = Store(cfg.results_dir, cfg.experiment).root
        root.mkdir(parents=True, exist_ok=True)
        fields = getattr(wandb.Settings, "model_fields", {})
        settings = {k: v for k, v in {"console": "off", "silent": True, "disable_git": True,
                                      "x_disable_stats": True}.items() if k in fields}
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "counting"), group=cfg.experiment, name=run_name(cfg),
            config={**cfg.to_dict(), "hash": cfg.hash(), "resumed_at": resume_at},
            mode=os.environ.get("WANDB_MODE", "offline"), reinit="create_new",
            dir=None if os.environ.get("WANDB_DIR") else str(root), settings=wandb.Settings(**settings))
        self.budget = cfg.train.total_steps

    def log(self, row: dict) -> None:
        """Logs one metrics row's scalars at its step, and the stop reason to the run's summary when the model
        stops there."""
        self.run.log(scalars(row, self.budget), step=int(row["step"]))
        reason = stop_reason(row, self.budget)
        if reason is not None:
            self.run.summary[REASON] = reason

    def close(self) -> None:
        """Finishes the W&B run."""
        self.run.finish()


SINKS = {TENSORBOARD: TensorBoardSink, WANDB: WandbSink}


class Trackers:
    """The sinks of one chunk's members (none under logger=jsonl). Nothing here raises: the first
    failure prints one line and closes every sink of the chunk, which goes on with metrics.jsonl
    only."""

    def __init__(self, cfgs: Sequence[RunConfig], resume_at: int | None = None):
        self.sinks: list = [None] * len(cfgs)
        self.failed = False
        for i, cfg in enumerate(cfgs):
            if cfg.logger in SINKS:
                self._guard(cfg.logger, "open", lambda: self.sinks.__setitem__(i, SINKS[cfg.logger](cfg, resume_at)))

    def _guard(self, kind: str, what: str, call: Callable[[], None]) -> None:
        if self.failed:
            return
        try:
            call()
        except Exception as err:
            self.failed = True
            print(f"logger={kind} failed ({what}: {type(err).__name__}: {err}); this chunk goes on with "
                  "metrics.jsonl only", file=sys.stderr)
            sinks, self.sinks = self.sinks, [None] * len(self.sinks)
            for sink in sinks:
                if sink is not None:
                    with contextlib.suppress(Exception):  # the one line above said it all
                        sink.close()

    def _call(self, i: int, what: str, *args) -> None:
        sink = self.sinks[i]
        if sink is not None:
            self._guard(sink.KIND, what, lambda: getattr(sink, what)(*args))

    def wrap(self, i: int, jsonl: Callable[[dict], None]) -> Callable[[dict], None]:
        """Member i's log: metrics.jsonl first, then its sink."""
        def log(row: dict) -> None:
            jsonl(row)
            self._call(i, "log", row)

        return log

    def close(self) -> None:
        """Closes every member's sink (a failure as any other: one line, the chunk goes on)."""
        for i in range(len(self.sinks)):
            self._call(i, "close")
        self.sinks = [None] * len(self.sinks)
