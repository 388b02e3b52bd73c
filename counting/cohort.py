"""Train a cohort of models that share array shapes as one XLA program.

Members may differ in the values that keep shapes (`VARYING`: m, k, seed, lr, weight decay).
The embedding table is padded to the cohort's largest m (M); each member samples its own
tokens below its own m with draws that do not depend on M (see `tasks.base`), so a member
trains exactly like the same model alone. `jax.vmap` runs the members' pure train chunk
(`train.make_chunk`) side by side (for larger models on the CPU, `lax.map` in turns: see
`members_per_call`), the members split over the local devices (`shard_map`), and `lax.scan`
runs many steps per call. A cohort larger than the device memory allows is split into
chunks of members.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from counting.checkpoint import CohortCheckpoint
from counting.config import ConfigError, RunConfig, with_values
from counting.metrics import param_norms, summarize
from counting.optimizer import make_optimizer
from counting.progress import Progress
from counting.tasks import NUM_SPECIAL, Task, make_task
from counting.train import TrainResult, TrainState, build_model, chunk_lengths, make_chunk, make_eval
from counting.xla import jit

VARYING = (("task", "m"), ("task", "k"), ("train", "seed"), ("train", "lr"), ("train", "weight_decay"))


AXES = {field: f"{section}.{field}" for section, field in VARYING}  # cohort axis -> config field


def expand(cfg: RunConfig, axes: Mapping[str, Sequence]) -> list[RunConfig]:
    """The product of the cohort axes ({"m": [8, 16], "seed": [0, 1]}) applied to cfg."""
    for name in axes:
        if name not in AXES:
            raise ConfigError(f"cohort.{name}: not a shape-keeping axis; allowed: {', '.join(AXES)}")
    names = [n for n, values in axes.items() if values]
    return [with_values(cfg, {AXES[n]: v for n, v in zip(names, combo)})
            for combo in itertools.product(*(list(axes[n]) for n in names))]


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
    """Bytes a cohort may use: 60% of the accelerator's memory, or of the free host RAM."""
    dev = jax.devices()[0]
    stats = dev.memory_stats() if dev.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return int(0.6 * (stats["bytes_limit"] - stats.get("bytes_in_use", 0)))
    return int(0.6 * os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def split_to_fit(cfgs: list[RunConfig], max_models: int | None = None, budget: int | None = None) -> list[list[RunConfig]]:
    """One cohort -> chunks of members that fit the memory budget (and max_models)."""
    M = max(c.task.m for c in cfgs)
    per = bytes_per_model(cfgs[0], M)
    fit = max(1, (memory_budget() if budget is None else budget) // per)
    size = min(fit, max_models or fit, len(cfgs))
    return [cfgs[i : i + size] for i in range(0, len(cfgs), size)]


def init_cohort(cfgs: Sequence[RunConfig], task: Task, M: int):
    """(graphdef, stacked TrainState, tx): each member initialised as it would be alone."""
    shared = cfgs[0]
    graphdef = nnx.graphdef(nnx.eval_shape(lambda: build_model(shared, task, jax.random.PRNGKey(0), M)))

    def init_one(seed, lr, wd):
        init_key, data_key = jax.random.split(jax.random.PRNGKey(seed))
        _, params = nnx.split(build_model(shared, task, init_key, M), nnx.Param)
        opt_state = make_optimizer(shared.train, lr, wd).init(params)
        return TrainState(params, opt_state, data_key, jnp.zeros((), jnp.int32))

    seeds = jnp.array([c.train.seed for c in cfgs], jnp.uint32)
    lrs = jnp.array([c.train.lr for c in cfgs], jnp.float32)
    wds = jnp.array([c.train.weight_decay for c in cfgs], jnp.float32)
    state = jax.jit(jax.vmap(init_one))(seeds, lrs, wds)
    return graphdef, state, make_optimizer(shared.train)  # update() reads lr, wd from the state


def unpad(params, m: int):
    """A member's parameters with the embedding table cut back to its own vocabulary."""
    pure = nnx.to_pure_dict(params)
    pure["embed"]["embedding"] = pure["embed"]["embedding"][: m + NUM_SPECIAL]
    return pure


CPU_VMAP_MAX_D = 16  # on the CPU, members vmap up to this d and take turns above it


def cohort_mesh(N: int) -> Mesh | None:
    """The local devices as one mesh axis "models" when the N members divide evenly over
    them: on a CPU host with one XLA device per core (see counting/__init__.py) the members
    then run on all cores in parallel. None: everything stays on one device."""
    devices = jax.local_devices()
    if len(devices) < 2 or N % len(devices):
        return None
    return Mesh(np.array(devices), ("models",))


def spread(tree, mesh: Mesh | None):
    """Places the cohort axis (leading) over the mesh; without one the tree stays put."""
    return tree if mesh is None else jax.device_put(tree, NamedSharding(mesh, PartitionSpec("models")))


def members_per_call(d: int, local: int) -> int:
    """How many of a device's `local` members train side by side (vmapped); the others take
    turns (lax.map). On an accelerator: all. On the CPU (12 members, batch 128, n = m = d,
    2 cores, members per call 6 against 1): vmapping pays for small models, whose steps are
    mostly per-operation overhead (d = 4: about 1.3x), is even at d = 16, and costs from
    d = 32 (about 0.8x at d = 32, 0.9x at d = 64: the batched weight-gradient products need
    transposing copies), so there members take turns."""
    return local if jax.default_backend() != "cpu" or d <= CPU_VMAP_MAX_D else 1


def members_chunk(chunk: Callable, per_call: int, mesh: Mesh | None) -> Callable:
    """The members' train chunk: on each device, `per_call` members at a time side by side
    (vmap) and the groups in turn (lax.map); one program per cohort, split over the mesh."""

    def local(state, m_N, k_N):
        if per_call >= m_N.shape[0]:
            return jax.vmap(chunk)(state, m_N, k_N)
        return jax.lax.map(lambda a: chunk(*a), (state, m_N, k_N), batch_size=None if per_call == 1 else per_call)

    if mesh is None:
        return local
    spec = PartitionSpec("models")
    return jax.shard_map(local, mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False)


def member(tree, i: int):
    return jax.tree.map(lambda x: x[i], tree)


def train_cohort(
    cfgs: Sequence[RunConfig],
    logs: Sequence[Callable[[dict], None]] | None = None,
    progress: Progress | None = None,
    checkpoint: CohortCheckpoint | None = None,
    per_call: int | None = None,
) -> list[TrainResult]:
    """Trains members that share a shape key as one program; one TrainResult per member,
    with parameters in the member's own (unpadded) shapes. With a checkpoint, the loop saves
    at every evaluation and starts from the latest one if there is one. `per_call`: members
    vmapped together on a device (default: `members_per_call`)."""
    cfgs = list(cfgs)
    if len({shape_key(c) for c in cfgs}) != 1:
        raise ValueError("a cohort's members must share every value but m, k, seed, lr and weight_decay")
    logs = list(logs) if logs is not None else [lambda row: None] * len(cfgs)
    shared, N = cfgs[0], len(cfgs)
    task = make_task(shared.task)
    M = max(c.task.m for c in cfgs)
    m_N = jnp.array([c.task.m for c in cfgs], jnp.int32)
    k_N = jnp.array([c.task.k_eff for c in cfgs], jnp.int32)
    eval_key = jax.random.PRNGKey(shared.task.eval_seed)
    eval_N = jax.jit(jax.vmap(lambda m, k: task.sample(eval_key, shared.task.eval_size, m, k, M)))(m_N, k_N)

    t0 = time.perf_counter()
    graphdef, state, tx = init_cohort(cfgs, task, M)
    mesh = cohort_mesh(N)
    state, m_N, k_N, eval_N = spread((state, m_N, k_N, eval_N), mesh)
    evaluate = jit(jax.vmap(make_eval(task, graphdef))).lower(state.params, eval_N).compile()
    lengths = chunk_lengths(shared.train.steps, shared.train.eval_every)
    local = N if mesh is None else N // mesh.size
    per_call = members_per_call(shared.model.d, local) if per_call is None else per_call
    chunks = {
        length: jit(members_chunk(make_chunk(task, graphdef, tx, shared.train.batch, length, M), per_call, mesh),
                    donate_argnums=0)
        .lower(state, m_N, k_N)
        .compile()
        for length in set(lengths)
    }
    compile_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    if progress is not None:
        progress.start()
    n_eval = shared.task.eval_size
    stats = jax.device_get(evaluate(state.params, eval_N))
    last = [summarize(member(stats, i), n_eval) for i in range(N)]
    diverged_at: list[int | None] = [None] * N
    done = 0
    restored = checkpoint.restore(state) if checkpoint is not None else None
    if restored is not None:
        state, meta = restored
        done, diverged_at, last = meta["done"], meta["diverged_at"], meta["last"]
        if progress is not None:
            progress.update(N * done)
    for length in chunk_lengths(shared.train.steps - done, shared.train.eval_every):
        state, losses_NxS = chunks[length](state, m_N, k_N)
        stats = evaluate(state.params, eval_N)  # dispatched before the host reads anything
        losses_NxS, stats, params_host = jax.device_get((losses_NxS, stats, state.params))  # one transfer
        norms = [param_norms(member(params_host, i)) for i in range(N)]
        for i in range(N):
            if diverged_at[i] is not None:
                continue
            finite_S = np.isfinite(losses_NxS[i])
            if not finite_S.all():
                diverged_at[i] = done + int(np.argmin(finite_S))
                logs[i]({"step": diverged_at[i] + 1, "train_loss": None, "status": "diverged", "diverged_at": diverged_at[i]})
                continue
            last[i] = summarize(member(stats, i), n_eval)
            logs[i]({"step": done + length, "train_loss": float(losses_NxS[i].mean()), **last[i],
                     "param_norms": norms[i], "wall_s": time.perf_counter() - t0})
        done += length
        if checkpoint is not None and done < shared.train.steps:
            checkpoint.save(done, state, {"done": done, "diverged_at": diverged_at, "last": last})
        if progress is not None:
            progress.update(N * length)
        if all(x is not None for x in diverged_at):
            break
    train_s = time.perf_counter() - t0

    results = []
    params_host = jax.device_get(state.params)
    for i, cfg in enumerate(cfgs):
        params = unpad(member(params_host, i), cfg.task.m)
        status = "complete" if diverged_at[i] is None else "diverged"
        steps = done if diverged_at[i] is None else diverged_at[i] + 1
        metrics = {**last[i], "param_norms": param_norms(params)}
        results.append(TrainResult(status, steps, metrics, params, compile_s, train_s, diverged_at[i]))
    return results
