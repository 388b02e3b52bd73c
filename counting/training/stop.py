"""The stopping rule of one model, checked on the host after every evaluation.

A model stops when its held-out accuracy reaches `train.stop.target` ("target"), when its
held-out loss has not fallen by more than `min_delta` below its best for `patience`
evaluations in a row ("plateau"), when its loss turns non-finite ("diverged"), or when the
step budget runs out ("budget"). Inside a cohort a stopped member's state no longer changes
(`cohort.members_chunk` skips it), so it ends exactly where it would have ended alone.
"""

from __future__ import annotations

import dataclasses
import math

from counting.config import StopConfig

REASONS = ("target", "plateau", "budget", "diverged", "pruned")  # pruned: by a halving rung (counting.training.halving)


@dataclasses.dataclass
class StopRule:
    """The stopping state of one model: its best held-out loss, the evaluations since, and why and when it
    stopped."""

    cfg: StopConfig
    best_loss: float = math.inf
    stale: int = 0  # evaluations since the best loss
    reason: str | None = None  # why it stopped; None while it trains
    stopped_at: int | None = None  # the step it stopped at

    @property
    def active(self) -> bool:
        """Whether the model still trains (it has not stopped)."""
        return self.reason is None

    def stop(self, reason: str, step: int) -> None:
        """Stops the model at `step` for `reason` (one of REASONS)."""
        self.reason, self.stopped_at = reason, step

    def update(self, step: int, metrics: dict) -> None:
        """Takes one evaluation (held-out `loss` and `accuracy` at `step`)."""
        cfg = self.cfg
        if cfg.target is not None and metrics["accuracy"] >= cfg.target:
            return self.stop("target", step)
        if metrics["loss"] < self.best_loss - cfg.min_delta:
            self.best_loss, self.stale = metrics["loss"], 0
        else:
            self.stale += 1
        if cfg.patience is not None and self.stale >= cfg.patience:
            self.stop("plateau", step)

    def state(self) -> dict:
        """JSON-able loop state (for checkpoints)."""
        return {"best_loss": None if math.isinf(self.best_loss) else self.best_loss, "stale": self.stale,
                "reason": self.reason, "stopped_at": self.stopped_at}

    @classmethod
    def from_state(cls, cfg: StopConfig, state: dict) -> "StopRule":
        """The rule resumed from `state` (a checkpoint's `state()`)."""
        best = math.inf if state["best_loss"] is None else state["best_loss"]
        return cls(cfg, best, state["stale"], state["reason"], state["stopped_at"])
