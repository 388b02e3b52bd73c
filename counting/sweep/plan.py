"""Planning a sweep: configs -> cohorts of members that share array shapes -> chunks that fit.

Members of one cohort may differ in the values that keep shapes (`VARYING`: m, k, seed, lr,
weight decay); everything else (`shape_key`) must match. A cohort larger than the memory
allows (or than `cohort.max_models`) is split into chunks, each trained as one program by
`counting.sweep.cohort.train_cohort`.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Mapping, Sequence

import jax
import numpy as np
from flax import nnx

from counting.config import CohortConfig, ConfigError, RunConfig, with_values
from counting.tasks import make_task
from counting.training.train import build_model

VARYING = (("task", "m"), ("task", "k"), ("train", "seed"), ("train", "lr"), ("train", "weight_decay"))
AXES = CohortConfig.AXES  # cohort axis -> the run field it sets


def expand(cfg: RunConfig, cohort: CohortConfig | Mapping[str, Sequence] = CohortConfig()) -> list[RunConfig]:
    """The product of the cohort axes (CohortConfig(m=(8, 16), seed=(0, 1)), or the same as
    a mapping) applied to cfg, then, under a halving search, every setting of its space: one
    config per member."""
    axes = CohortConfig.from_dict(cohort).axes()
    for name in ("lr", "weight_decay"):
        if name in axes and getattr(cfg.halving, name):
            raise ConfigError(f"cohort.{name}: halving.{name} searches it already; give one of them")
    members = [with_values(cfg, {AXES[n]: v for n, v in zip(axes, combo)}) for combo in itertools.product(*axes.values())]
    if not cfg.halving.active:
        return members
    return [with_values(c, {"train.lr": lr, "train.weight_decay": wd})
            for c in members for lr, wd in cfg.halving.settings(c.train.lr, c.train.weight_decay)]


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


def param_count(cfg: RunConfig, M: int | None = None) -> int:
    """Parameters of one member whose embedding table holds M content tokens (default its m)."""
    task = make_task(cfg.task)
    abstract = nnx.eval_shape(lambda: build_model(cfg, task, jax.random.PRNGKey(0), M))
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(abstract, nnx.Param)))


def bytes_per_model(cfg: RunConfig, M: int) -> int:
    """Rough device bytes one member needs: parameters with Adam state, gradients and
    updates, plus the activations of one step kept for the backward pass."""
    task = make_task(cfg.task)
    mo, B, T, C = cfg.model, cfg.train.batch, task.length, task.num_classes
    P = param_count(cfg, M)
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
    if cfgs[0].halving.active:
        return _whole_races(cfgs, size)
    return [cfgs[i : i + size] for i in range(0, len(cfgs), size)]


def _whole_races(cfgs: list[RunConfig], size: int) -> list[list[RunConfig]]:
    """Chunks of at most `size` members that never split a halving race (its settings and
    seeds rank against each other inside one program); ConfigError when one race is larger."""
    from counting.training.halving import cell_key

    races: dict[str, list[RunConfig]] = {}
    for c in cfgs:
        races.setdefault(cell_key(c), []).append(c)
    chunks: list[list[RunConfig]] = [[]]
    for race in races.values():
        if len(race) > size:
            raise ConfigError(f"cohort.max_models: a halving race has {len(race)} members (settings x seeds), more "
                              f"than the {size} that fit one program; allow more or search fewer settings")
        if len(chunks[-1]) + len(race) > size:
            chunks.append([])
        chunks[-1].extend(race)
    return chunks


FOLDER_OVERHEAD = 256 * 1024  # bytes: Orbax's metadata files, record.json, config.json, a checkpoint's extra files


def disk_bytes(cfgs: Sequence[RunConfig]) -> int:
    """Rough bytes a sweep writes: per model its float32 parameters, its metrics log (one line
    per evaluation) and the folder's fixed files, plus the largest cohort checkpoint held at
    once (parameters and Adam's two moments of every member)."""
    per_shape: dict[str, list[RunConfig]] = {}
    for c in cfgs:
        per_shape.setdefault(shape_key(c), []).append(c)
    total, largest = 0, 0
    for members in per_shape.values():
        P = param_count(members[0], max(c.task.m for c in members))
        evals = members[0].train.total_steps // members[0].train.eval_every + 1
        total += len(members) * (4 * P + 2048 * evals + FOLDER_OVERHEAD)
        largest = max(largest, len(members) * 3 * 4 * P + FOLDER_OVERHEAD)
    return total + largest
