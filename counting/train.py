"""The pure pieces of training: a step, scanned over a chunk of steps, and evaluation.

`init_state` builds the model and optimiser state; `make_chunk` returns the pure function
`(state, m, k) -> (state, losses_S)` that samples fresh data on the device at every step;
`make_eval` returns `(params, batch) -> stats`. The one driver, `counting.cohort.train_cohort`
(a single model is a cohort of one), vmaps exactly these functions over its members.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from counting.config import RunConfig
from counting.metrics import count_stats, loss_fn
from counting.model import Transformer
from counting.optimizer import make_optimizer
from counting.tasks import Task


class TrainState(NamedTuple):
    params: Any  # nnx.State of the model's Params
    opt_state: Any
    key: jax.Array  # the data stream's key
    step: jax.Array


def build_model(cfg: RunConfig, task: Task, key: jax.Array, M: int | None = None) -> Transformer:
    return Transformer(cfg.model, task.vocab_size(M), task.length, task.num_classes, nnx.Rngs(params=key))


def init_state(cfg: RunConfig, task: Task, M: int | None = None) -> tuple[nnx.GraphDef, TrainState, optax.GradientTransformation]:
    """Model init and data stream both derive from train.seed (split once)."""
    init_key, data_key = jax.random.split(jax.random.PRNGKey(cfg.train.seed))
    graphdef, params = nnx.split(build_model(cfg, task, init_key, M), nnx.Param)
    tx = make_optimizer(cfg.train)
    return graphdef, TrainState(params, tx.init(params), data_key, jnp.zeros((), jnp.int32)), tx


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


@dataclasses.dataclass
class TrainResult:
    status: str  # "complete" | "diverged"
    steps: int  # steps taken (up to and including the first non-finite loss if diverged)
    metrics: dict  # final held-out metrics (the last finite evaluation if diverged)
    params: dict  # final parameters as a plain nested dict (nnx.to_pure_dict)
    compile_s: float
    train_s: float
    diverged_at: int | None = None
    stop_reason: str = "budget"  # target | plateau | budget | diverged (counting.stop)
    layout: dict = dataclasses.field(default_factory=dict)  # devices, members per call (cohort.Program)


def chunk_lengths(steps: int, every: int) -> list[int]:
    return [every] * (steps // every) + ([steps % every] if steps % every else [])
