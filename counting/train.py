"""The functional training loop: a pure step, scanned over a chunk of steps, jitted once.

`init_state` builds the model and optimiser state; `make_chunk` returns the pure function
`(state, m, k) -> (state, losses_S)` that samples fresh data on the device at every step;
`make_eval` returns `(params, batch) -> stats`. A cohort (vmap over states and m, k) reuses
exactly these functions, so a member behaves like the same model trained alone.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from counting.config import RunConfig
from counting.metrics import count_stats, loss_fn, param_norms, summarize
from counting.model import Transformer
from counting.optimizer import make_optimizer
from counting.tasks import Task, make_task
from counting.xla import jit


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


def make_chunk(task: Task, graphdef, tx, batch: int, length: int, M: int | None = None) -> Callable:
    """(state, m, k) -> (state, losses_S): `length` training steps as one lax.scan."""

    at_A = task.answer_positions

    def loss_of(params, data):
        return loss_fn(nnx.merge(graphdef, params)(data.tokens_BxT, at_A), data, at_A)

    def step(state: TrainState, m, k):
        key, data_key = jax.random.split(state.key)
        data = task.sample(data_key, batch, m, k, M)
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


def chunk_lengths(steps: int, every: int) -> list[int]:
    return [every] * (steps // every) + ([steps % every] if steps % every else [])


def train(cfg: RunConfig, log: Callable[[dict], None] = lambda row: None) -> TrainResult:
    """Trains one model; calls `log` with one metrics row after every evaluation."""
    task = make_task(cfg.task)
    graphdef, state, tx = init_state(cfg, task)
    m, k = jnp.int32(cfg.task.m), jnp.int32(cfg.task.k_eff)
    eval_batch = task.eval_set()
    n_eval = cfg.task.eval_size

    t0 = time.perf_counter()
    evaluate = jit(make_eval(task, graphdef)).lower(state.params, eval_batch).compile()
    chunks = {
        length: jit(make_chunk(task, graphdef, tx, cfg.train.batch, length), donate_argnums=0)
        .lower(state, m, k)
        .compile()
        for length in set(chunk_lengths(cfg.train.steps, cfg.train.eval_every))
    }
    compile_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    last = summarize(evaluate(state.params, eval_batch), n_eval)
    status, diverged_at, done = "complete", None, 0
    for length in chunk_lengths(cfg.train.steps, cfg.train.eval_every):
        state, losses_S = chunks[length](state, m, k)
        stats = evaluate(state.params, eval_batch)  # dispatched before the host reads anything
        losses_S = np.asarray(losses_S)
        if not np.isfinite(losses_S).all():
            status, diverged_at = "diverged", done + int(np.argmin(np.isfinite(losses_S)))
            done = diverged_at + 1
            log({"step": done, "train_loss": None, "status": "diverged", "diverged_at": diverged_at})
            break
        done += length
        last = summarize(stats, n_eval)
        log({"step": done, "train_loss": float(losses_S.mean()), **last,
             "param_norms": param_norms(jax.device_get(state.params)), "wall_s": time.perf_counter() - t0})
    train_s = time.perf_counter() - t0
    params = nnx.to_pure_dict(jax.device_get(state.params))  # one transfer for norms and record
    metrics = {**last, "param_norms": param_norms(params)}
    return TrainResult(status, done, metrics, params, compile_s, train_s, diverged_at)
