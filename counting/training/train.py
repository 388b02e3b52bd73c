"""The pure pieces of training: a step, scanned over a chunk of steps, and evaluation.

`init_state` builds the model and optimiser state; `make_chunk` returns the pure function
`(state, m, k) -> (state, losses_S)` that samples fresh data on the device at every step;
`make_eval` returns `(params, batch) -> stats`. The one driver, `counting.sweep.cohort.train_cohort`
(a single model is a cohort of one), vmaps exactly these functions over its members.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from counting.config import RunConfig
from counting.models.registry import model_class
from counting.tasks import Task
from counting.training.metrics import count_stats, loss_fn
from counting.training.optimizer import make_optimizer
from counting.runtime.xla import jit_once


class TrainState(NamedTuple):
    """One model's training state: its parameters, the optimiser's state (with lr and weight decay), the data
    stream's key and the step."""

    params: Any  # nnx.State of the model's Params
    opt_state: Any
    key: jax.Array  # the data stream's key
    step: jax.Array


def build_model(cfg: RunConfig, task: Task, key: jax.Array, M: int | None = None) -> nnx.Module:
    """The run's model (`model.arch`), its embedding table sized for M content tokens."""
    return model_class(cfg.model)(cfg.model, task.vocab_size(M), task.length, task.num_classes, nnx.Rngs(params=key))


def member_init(cfg: RunConfig, task: Task, M: int | None = None) -> Callable:
    """(seed, lr, weight_decay) -> TrainState: one member's initial state, a pure function that a
    cohort vmaps over its members. Model init and data stream both derive from the seed (split
    once); lr and weight decay live in the optimiser state."""

    def init_one(seed, lr, wd):
        init_key, data_key = jax.random.split(jax.random.PRNGKey(seed))
        _, params = nnx.split(build_model(cfg, task, init_key, M), nnx.Param)
        opt_state = make_optimizer(cfg.train, lr, wd).init(params)
        return TrainState(params, opt_state, data_key, jnp.zeros((), jnp.int32))

    return init_one


def graph_of(cfg: RunConfig, task: Task, M: int | None = None) -> nnx.GraphDef:
    """The graph of the run's model (its embedding table sized for M content tokens), built abstractly: no
    parameters are initialised."""
    return nnx.graphdef(nnx.eval_shape(lambda: build_model(cfg, task, jax.random.PRNGKey(0), M)))


def init_state(cfg: RunConfig, task: Task, M: int | None = None) -> tuple[nnx.GraphDef, TrainState, optax.GradientTransformation]:
    """One model's (graphdef, initial state, tx), by the very program a cohort of one runs."""
    one = lambda x, dtype: jnp.array([x], dtype)
    state_1 = jit_once(jax.vmap(member_init(cfg, task, M)))(
        one(cfg.train.seed, jnp.uint32), one(cfg.train.lr, jnp.float32), one(cfg.train.weight_decay, jnp.float32))
    return graph_of(cfg, task, M), jax.tree.map(lambda x: x[0], state_1), make_optimizer(cfg.train)


def make_chunk(task: Task, graphdef, tx, batch: int, length: int) -> Callable:
    """(state, m, k) -> (state, losses_S): `length` training steps as one lax.scan."""

    at_A = task.answer_positions

    def loss_of(params, data):
        return loss_fn(nnx.merge(graphdef, params)(data.tokens_BxT, at_A), data, at_A)

    def step(state: TrainState, m, k):
        key, data_key = jax.random.split(state.key)
        data = task.sample(data_key, batch, m, k)
        loss, grads = jax.value_and_grad(loss_of)(state.params, data)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return TrainState(params, opt_state, key, state.step + 1), loss

    def chunk(state: TrainState, m, k):
        return jax.lax.scan(lambda s, _: step(s, m, k), state, None, length=length)

    return chunk


def make_eval(task: Task, graphdef) -> Callable:
    """(params, batch) -> count statistics on that batch."""
    at_A = task.answer_positions

    def evaluate(params, batch):
        return count_stats(nnx.merge(graphdef, params)(batch.tokens_BxT, at_A), batch, at_A)

    return evaluate


def chunk_lengths(steps: int, every: int) -> list[int]:
    """The steps between evaluations: `every` each, and the remainder of `steps` last."""
    return [every] * (steps // every) + ([steps % every] if steps % every else [])
