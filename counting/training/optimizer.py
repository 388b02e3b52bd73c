"""AdamW (betas b1, b2 and eps configurable; weight decay 0 is Adam) with linear warmup, a
cosine or constant schedule, and global-norm clipping (train.clip; null: none).

The learning rate and weight decay live in the optimiser state (`inject_hyperparams`), so a
cohort can give each member its own values without changing the program; the schedule is a
unit multiplier in [0, 1] shared by the cohort.
"""

from __future__ import annotations

import optax

from counting.config import TrainConfig


def unit_schedule(cfg: TrainConfig) -> optax.Schedule:
    """Linear warmup to 1, then cosine decay to 0.1 or constant 1."""
    warmup = min(cfg.warmup, max(cfg.total_steps - 1, 0))
    if cfg.schedule == "constant":
        after = optax.constant_schedule(1.0)
    else:
        after = optax.cosine_decay_schedule(1.0, max(cfg.total_steps - warmup, 1), alpha=0.1)
    if not warmup:
        return after
    return optax.join_schedules([optax.linear_schedule(1.0 / (warmup + 1), 1.0, warmup), after], [warmup])


def make_optimizer(cfg: TrainConfig, lr=None, weight_decay=None) -> optax.GradientTransformation:
    """lr and weight_decay (default: the config's) may be traced: a cohort member's own."""
    clip = [] if cfg.clip is None else [optax.clip_by_global_norm(cfg.clip)]
    return optax.chain(
        *clip,
        optax.inject_hyperparams(optax.adamw, static_args=("b1", "b2", "eps"))(
            learning_rate=cfg.lr if lr is None else lr,
            weight_decay=cfg.weight_decay if weight_decay is None else weight_decay,
            b1=cfg.b1, b2=cfg.b2, eps=cfg.eps,
        ),
        optax.scale_by_schedule(unit_schedule(cfg)),
    )
