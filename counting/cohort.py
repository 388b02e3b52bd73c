"""The one training driver: a cohort of models that share array shapes, as one XLA program.

A single model is a cohort of one. Members may differ in the values that keep shapes (m, k,
seed, lr, weight decay: see `counting.plan`). The embedding table is padded to the cohort's
largest m (M); each member samples its own tokens below its own m with draws that do not
depend on M (see `tasks.base`), so a member trains like the same model alone. The members'
pure train chunk (`train.make_chunk`) runs side by side under `jax.vmap` (or in turns under
`lax.map`: see `members_per_call`), the members split over the local devices (`shard_map`),
`lax.scan` runs the steps between two evaluations. After each evaluation the host checks
every member's stopping rule (`counting.stop`); a stopped member's state no longer changes,
and the program ends when every member has stopped.

    compile_cohort  -> Program (initial state, compiled train chunks and evaluation)
    Members         -> the host's per-member bookkeeping (metrics, logs, stopping rules)
    train_cohort    -> the loop: chunk, evaluate, book, checkpoint
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from counting.checkpoint import CohortCheckpoint
from counting.config import RunConfig
from counting.metrics import param_norms, summarize
from counting.optimizer import make_optimizer
from counting.plan import (  # noqa: F401  (re-exported: the planning half of a cohort)
    AXES, VARYING, bytes_per_model, check_axes, expand, group, memory_budget, shape_key, split_to_fit,
)
from counting.progress import Progress
from counting.stop import StopRule
from counting.tasks import NUM_SPECIAL, Task, make_task
from counting.train import TrainResult, TrainState, build_model, chunk_lengths, make_chunk, make_eval
from counting.xla import jit

CPU_VMAP_MAX_D = 16  # on the CPU, members vmap up to this d and take turns above it


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


def member(tree, i: int):
    return jax.tree.map(lambda x: x[i], tree)


# --- where the members run ----------------------------------------------------------------


def cohort_mesh(N: int) -> Mesh | None:
    """The local devices as one mesh axis "models" when the N members divide evenly over
    them: on a CPU host with one XLA device per core the members then run on all cores in
    parallel. None: everything stays on one device."""
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


def members_chunk(chunk: Callable, length: int, per_call: int, mesh: Mesh | None) -> Callable:
    """(state, m_N, k_N, active_N) -> (state, losses_NxS): the members' train chunk. An
    inactive member keeps its state (under lax.map its chunk is skipped; under vmap both
    branches run and the old state is selected). On each device `per_call` members at a time
    side by side (vmap), the groups in turn (lax.map); one program, split over the mesh. One
    at a time (per_call = 1) a member runs the very program of a cohort of one (a vmap of
    one), so it trains bit for bit like the same model alone."""

    def skip(state, m, k):
        return state, jnp.zeros((length,), jnp.float32)

    def gated(state, m, k, active):
        return jax.lax.cond(active, chunk, skip, state, m, k)

    def local(state, m_N, k_N, active_N):
        if per_call >= m_N.shape[0]:
            return jax.vmap(gated)(state, m_N, k_N, active_N)
        return jax.lax.map(lambda a: gated(*a), (state, m_N, k_N, active_N), batch_size=per_call)

    if mesh is None:
        return local
    spec = PartitionSpec("models")
    return jax.shard_map(local, mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False)


# --- compile ------------------------------------------------------------------------------


@dataclasses.dataclass
class Program:
    """One cohort compiled: its initial state, evaluation and train chunks (by length)."""

    state: TrainState
    mesh: Mesh | None
    m_N: jax.Array
    k_N: jax.Array
    eval_N: object  # the members' held-out batches
    evaluate: Callable  # (params, eval_N) -> stats
    chunks: dict[int, Callable]  # length -> (state, m_N, k_N, active_N) -> (state, losses_NxS)
    layout: dict  # devices, members per call, members: what produced the arithmetic
    compile_s: float


def compile_cohort(cfgs: list[RunConfig], per_call: int | None = None) -> Program:
    shared, N = cfgs[0], len(cfgs)
    task = make_task(shared.task)
    M = max(c.task.m for c in cfgs)
    m_N = jnp.array([c.task.m for c in cfgs], jnp.int32)
    k_N = jnp.array([c.task.k_eff for c in cfgs], jnp.int32)
    eval_key = jax.random.PRNGKey(shared.task.eval_seed)
    eval_N = jax.jit(jax.vmap(lambda m, k: task.sample(eval_key, shared.task.eval_size, m, k)))(m_N, k_N)

    t0 = time.perf_counter()
    graphdef, state, tx = init_cohort(cfgs, task, M)
    mesh = cohort_mesh(N)
    active_N = jnp.ones((N,), bool)
    state, m_N, k_N, eval_N, active_N = spread((state, m_N, k_N, eval_N, active_N), mesh)
    evaluate = jit(jax.vmap(make_eval(task, graphdef))).lower(state.params, eval_N).compile()
    local = N if mesh is None else N // mesh.size
    per_call = members_per_call(shared.model.d, local) if per_call is None else per_call
    chunks = {
        length: jit(members_chunk(make_chunk(task, graphdef, tx, shared.train.batch, length), length, per_call, mesh),
                    donate_argnums=0)
        .lower(state, m_N, k_N, active_N)
        .compile()
        for length in set(chunk_lengths(shared.train.total_steps, shared.train.eval_every))
    }
    layout = {"backend": jax.default_backend(), "devices": 1 if mesh is None else mesh.size,
              "members": N, "members_per_call": min(per_call, local)}
    return Program(state, mesh, m_N, k_N, eval_N, evaluate, chunks, layout, time.perf_counter() - t0)


# --- the host's bookkeeping ---------------------------------------------------------------


class Members:
    """Per member: the last held-out metrics, its metrics log and its stopping rule."""

    def __init__(self, cfgs: list[RunConfig], logs: Sequence[Callable[[dict], None]]):
        self.cfgs, self.logs = cfgs, list(logs)
        self.rules = [StopRule(c.train.stop) for c in cfgs]
        self.last: list[dict] = [{} for _ in cfgs]
        self.n_eval = cfgs[0].task.eval_size

    @property
    def active_N(self) -> np.ndarray:
        return np.array([r.active for r in self.rules])

    def first(self, stats) -> None:
        """The untrained models' metrics (what a member reports if it never finishes a chunk)."""
        self.last = [summarize(member(stats, i), self.n_eval) for i in range(len(self.cfgs))]

    def take(self, done: int, length: int, losses_NxS, stats, params_host, wall_s: float) -> None:
        """One evaluation after steps done + 1 .. done + length: log and check each active member."""
        step = done + length
        for i, rule in enumerate(self.rules):
            if not rule.active:
                continue
            finite_S = np.isfinite(losses_NxS[i])
            if not finite_S.all():
                at = done + int(np.argmin(finite_S))
                rule.stop("diverged", at + 1)
                self.logs[i]({"step": at + 1, "train_loss": None, "status": "diverged", "diverged_at": at})
                continue
            self.last[i] = summarize(member(stats, i), self.n_eval)
            rule.update(step, self.last[i])
            row = {"step": step, "train_loss": float(losses_NxS[i].mean()), **self.last[i],
                   "param_norms": param_norms(member(params_host, i)), "wall_s": wall_s}
            self.logs[i](row if rule.active else {**row, "stop_reason": rule.reason})

    def meta(self, done: int) -> dict:
        return {"done": done, "last": self.last, "rules": [r.state() for r in self.rules]}

    def load(self, meta: dict) -> int:
        self.last = meta["last"]
        self.rules = [StopRule.from_state(c.train.stop, s) for c, s in zip(self.cfgs, meta["rules"])]
        return meta["done"]

    def results(self, params_host, done: int, compile_s: float, train_s: float, layout: dict) -> list[TrainResult]:
        out = []
        for i, (cfg, rule) in enumerate(zip(self.cfgs, self.rules)):
            if rule.active:
                rule.stop("budget", done)
            params = unpad(member(params_host, i), cfg.task.m)
            diverged = rule.reason == "diverged"
            out.append(TrainResult(
                "diverged" if diverged else "complete", rule.stopped_at,
                {**self.last[i], "param_norms": param_norms(params)}, params, compile_s, train_s,
                rule.stopped_at - 1 if diverged else None, rule.reason, layout))
        return out


# --- the loop -----------------------------------------------------------------------------


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
    shared, N = cfgs[0], len(cfgs)
    program = compile_cohort(cfgs, per_call)
    book = Members(cfgs, logs if logs is not None else [lambda row: None] * N)
    total = shared.train.total_steps

    t0 = time.perf_counter()
    if progress is not None:
        progress.start()
    state = program.state
    book.first(jax.device_get(program.evaluate(state.params, program.eval_N)))
    done = 0
    restored = checkpoint.restore(state) if checkpoint is not None else None
    if restored is not None:
        state, meta = restored
        done = book.load(meta)
        if progress is not None:
            progress.update(N * done)
    for length in chunk_lengths(total - done, shared.train.eval_every):
        active_N = book.active_N
        if not active_N.any():
            break
        state, losses_NxS = program.chunks[length](state, program.m_N, program.k_N, spread(jnp.asarray(active_N), program.mesh))
        stats = program.evaluate(state.params, program.eval_N)  # dispatched before the host reads anything
        losses_NxS, stats, params_host = jax.device_get((losses_NxS, stats, state.params))  # one transfer
        book.take(done, length, losses_NxS, stats, params_host, time.perf_counter() - t0)
        done += length
        if checkpoint is not None and done < total and book.active_N.any():
            checkpoint.save(done, state, book.meta(done))
        if progress is not None:
            progress.update(int(active_N.sum()) * length)
    if progress is not None:
        progress.finish()
    train_s = time.perf_counter() - t0
    return book.results(jax.device_get(state.params), done, program.compile_s, train_s, program.layout)
