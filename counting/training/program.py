"""The numerics of a cohort: its members' initial state and the compiled programs they run.

Members share array shapes and may differ in the values that keep them (m, k, seed, lr,
weight decay: `counting.sweep.plan.VARYING`). The embedding table is padded to the cohort's largest
m (M); each member samples its own tokens below its own m with draws that do not depend on M
(see `tasks.base`), so a member trains like the same model alone. The members' pure train
chunk (`train.make_chunk`) runs side by side under `jax.vmap` (or in turns under `lax.map`:
see `members_per_call`), the members split over the local devices (`shard_map`), `lax.scan`
runs the steps between two evaluations.

A `Program` is compiled for a number of members N; the host loop (`counting.sweep.cohort`) may
compile a smaller one for the members still training (compaction) and move their states into
it. Which program produced a member's arithmetic is written in its record's `layout`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from counting.config import RunConfig
from counting.tasks import Task, make_task
from counting.training.optimizer import make_optimizer
from counting.training.train import chunk_lengths, graph_of, make_chunk, make_eval, member_init
from counting.runtime.xla import jit, jit_once

CPU_VMAP_MAX_D = 16  # on the CPU, members vmap up to this d and take turns above it


def init_cohort(cfgs: Sequence[RunConfig], task: Task, M: int):
    """(graphdef, stacked TrainState, tx): each member initialised as it would be alone
    (`train.init_state` runs the same program for one)."""
    shared = cfgs[0]
    seeds = jnp.array([c.train.seed for c in cfgs], jnp.uint32)
    lrs = jnp.array([c.train.lr for c in cfgs], jnp.float32)
    wds = jnp.array([c.train.weight_decay for c in cfgs], jnp.float32)
    state = jit_once(jax.vmap(member_init(shared, task, M)))(seeds, lrs, wds)
    return graph_of(shared, task, M), state, make_optimizer(shared.train)  # update() reads lr, wd from the state


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
    """The compiled programs of N members: evaluation and train chunks (by length)."""

    mesh: Mesh | None
    evaluate: Callable  # (params, eval_N) -> stats
    chunks: dict[int, Callable]  # length -> (state, m_N, k_N, active_N) -> (state, losses_NxS)
    layout: dict  # backend, devices, members, members per call: what produced the arithmetic
    compile_s: float


@dataclasses.dataclass
class Inputs:
    """What a program runs on besides the state: each member's m, k and held-out batch."""

    m_N: jax.Array
    k_N: jax.Array
    eval_N: object


@dataclasses.dataclass
class Cohort:
    """A cohort's fixed parts: task, model graph, optimiser and the members' host inputs."""

    cfgs: list[RunConfig]
    task: Task
    graphdef: object
    tx: object
    m_N: np.ndarray
    k_N: np.ndarray
    eval_N: object  # on the host: the held-out batches of every member

    def inputs(self, rows: Sequence[int], mesh: Mesh | None) -> Inputs:
        """The inputs of the members at `rows` (in that order), placed over the mesh."""
        idx = np.asarray(rows)
        pick = lambda x: np.asarray(x)[idx]
        return Inputs(*spread((jnp.asarray(self.m_N[idx]), jnp.asarray(self.k_N[idx]),
                               jax.tree.map(pick, self.eval_N)), mesh))


def prepare_cohort(cfgs: list[RunConfig]):
    """(Cohort, initial state on the host's default device) for the members `cfgs`."""
    shared = cfgs[0]
    task = make_task(shared.task)
    M = max(c.task.m for c in cfgs)
    m_N = np.array([c.task.m for c in cfgs], np.int32)
    k_N = np.array([c.task.k_eff for c in cfgs], np.int32)
    eval_key = jax.random.PRNGKey(shared.task.eval_seed)
    eval_N = jax.device_get(jit_once(jax.vmap(lambda m, k: task.sample(eval_key, shared.task.eval_size, m, k)))(
        jnp.asarray(m_N), jnp.asarray(k_N)))
    graphdef, state, tx = init_cohort(cfgs, task, M)
    return Cohort(cfgs, task, graphdef, tx, m_N, k_N, eval_N), state


def compile_program(cohort: Cohort, state, inputs: Inputs, mesh: Mesh | None, per_call: int | None = None) -> Program:
    """The programs for the members whose (stacked, placed) state and inputs are given."""
    shared = cohort.cfgs[0]
    N = inputs.m_N.shape[0]
    t0 = time.perf_counter()
    active_N = spread(jnp.ones((N,), bool), mesh)
    evaluate = jit(jax.vmap(make_eval(cohort.task, cohort.graphdef))).lower(state.params, inputs.eval_N).compile()
    local = N if mesh is None else N // mesh.size
    per_call = members_per_call(shared.model.d, local) if per_call is None else per_call
    chunks = {
        length: jit(members_chunk(make_chunk(cohort.task, cohort.graphdef, cohort.tx, shared.train.batch, length),
                                  length, per_call, mesh), donate_argnums=0)
        .lower(state, inputs.m_N, inputs.k_N, active_N)
        .compile()
        for length in set(chunk_lengths(shared.train.total_steps, shared.train.eval_every))
    }
    layout = {"backend": jax.default_backend(), "devices": 1 if mesh is None else mesh.size,
              "members": N, "members_per_call": min(per_call, local)}
    return Program(mesh, evaluate, chunks, layout, time.perf_counter() - t0)
