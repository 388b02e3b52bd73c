"""Planning a sweep: configs -> cohorts of members that share array shapes -> chunks that fit.

Members of one cohort may differ in the values that keep shapes (`VARYING`: m, k, seed, lr,
weight decay); everything else (`shape_key`) must match. A cohort larger than the memory
allows (or than `cohort.max_models`) is split into chunks, each trained as one program by
`counting.cohort.train_cohort`.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Mapping, Sequence

import jax
import numpy as np
from flax import nnx

from counting.config import ConfigError, RunConfig, with_values
from counting.tasks import make_task
from counting.train import build_model

VARYING = (("task", "m"), ("task", "k"), ("train", "seed"), ("train", "lr"), ("train", "weight_decay"))
AXES = {field: f"{section}.{field}" for section, field in VARYING}  # cohort axis -> config field


def check_axes(axes: Mapping[str, object]) -> dict[str, list]:
    """The raw `cohort.*` axes as lists, or a ConfigError naming the axis: every axis is a
    list of values (a scalar or a string is a mistake, e.g. cohort.m=4 for cohort.m=[4])."""
    out = {}
    for name, values in axes.items():
        if name not in AXES:
            raise ConfigError(f"cohort.{name}: not a shape-keeping axis; allowed: {', '.join(AXES)}")
        if values is None:
            values = []
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise ConfigError(f"cohort.{name}: expected a list like [{values}], got {values!r}")
        out[name] = list(values)
    return out


def check_max_models(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"cohort.max_models: must be an integer >= 1 or null (as many as fit), got {value!r}")
    return value


def expand(cfg: RunConfig, axes: Mapping[str, Sequence]) -> list[RunConfig]:
    """The product of the cohort axes ({"m": [8, 16], "seed": [0, 1]}) applied to cfg."""
    axes = check_axes(axes)
    names = [n for n, values in axes.items() if values]
    return [with_values(cfg, {AXES[n]: v for n, v in zip(names, combo)})
            for combo in itertools.product(*(axes[n] for n in names))]


def shape_key(cfg: RunConfig) -> str:
    """What members of one cohort must share: everything but the VARYING values."""
    d = cfg.identity()
    for section, field in VARYING:
        d[section].pop(field)
    return json.dumps(d, sort_keys=True)


def group(cfgs: Sequence[RunConfig]) -> list[list[RunConfig]]:
    """Configs -> cohorts (order kept), one per distinct shape key."""
    groups: dict[str, list[RunConfig]] = {}
    for cfg in cfgs:
        groups.setdefault(shape_key(cfg), []).append(cfg)
    return list(groups.values())


def bytes_per_model(cfg: RunConfig, M: int) -> int:
    """Rough device bytes one member needs: parameters with Adam state, gradients and
    updates, plus the activations of one step kept for the backward pass."""
    task = make_task(cfg.task)
    mo, B, T, C = cfg.model, cfg.train.batch, task.length, task.num_classes
    abstract = nnx.eval_shape(lambda: build_model(cfg, task, jax.random.PRNGKey(0), M))
    P = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(abstract, nnx.Param)))
    act = B * T * (mo.L * (10 * mo.d + 2 * mo.w + 3 * mo.H * T) + 3 * C)
    sampling = B * 4 * task.n * task.n  # pairwise comparisons over the n positions
    return 4 * (6 * P + 2 * act + 2 * sampling)


def memory_budget() -> int:
    """Bytes a cohort may use: 60% of the accelerator's memory, or of the host's RAM. The
    machine's size, not what happens to be free: the chunking, and with it the arithmetic
    of every member, depends only on the command and the kind of machine."""
    dev = jax.devices()[0]
    stats = dev.memory_stats() if dev.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return int(0.6 * stats["bytes_limit"])
    return int(0.6 * os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def split_to_fit(cfgs: list[RunConfig], max_models: int | None = None, budget: int | None = None) -> list[list[RunConfig]]:
    """One cohort -> chunks of members that fit the memory budget (and max_models). A
    ConfigError when even one member does not fit (e.g. task.n=100000), before any compute."""
    M = max(c.task.m for c in cfgs)
    per = bytes_per_model(cfgs[0], M)
    budget = memory_budget() if budget is None else budget
    if per > budget:
        c = cfgs[0]
        raise ConfigError(
            f"memory: one model needs about {per / 2**30:.1f} GiB, more than the {budget / 2**30:.1f} GiB allowed here "
            f"(60% of the device memory); lower task.n ({c.task.n}), train.batch ({c.train.batch}) or model.d/w")
    fit = budget // per
    size = min(fit, max_models or fit, len(cfgs))
    return [cfgs[i : i + size] for i in range(0, len(cfgs), size)]
