"""Hand-set weights of the suite's own `Transformer`, and the forward that reads them back.

A construction is an instantiated `counting.models.transformer.Transformer` (norm "none", pos "none")
whose parameters are all set by hand: `blank` zeroes every parameter, `put` writes one
matrix from float64 numpy. `Construction` bundles the model with its task and a readout
(the count the final residual encodes, before the head), and `forward` runs the model's own
modules (embedding, blocks, head) at the answer positions, in whatever dtype its state has.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from counting.config import ModelConfig, TaskConfig
from counting.models.transformer import Transformer
from counting.tasks import make_task

Readout = Callable[[np.ndarray], np.ndarray]  # x_BxAxD (final residual) -> c_hat_BxA

_STORE = contextvars.ContextVar("store", default=jnp.float32)


@contextlib.contextmanager
def storing(dtype) -> Iterator[None]:
    """Constructions built inside store their parameters in `dtype` (default float32). Use
    float64 (inside `jax.enable_x64(True)`) to evaluate them without float32 rounding of
    the weights themselves (e.g. the head's (k + 2)^2 beyond 2^24)."""
    token = _STORE.set(dtype)
    try:
        yield
    finally:
        _STORE.reset(token)


@dataclasses.dataclass(frozen=True, eq=False)
class Construction:
    """A hand-built model, the task it solves, and the count its final residual encodes."""

    name: str
    task: TaskConfig
    model: Transformer
    readout: Readout

    @property
    def answer_positions(self) -> tuple[int, ...]:
        """The positions of the task where answers are read."""
        return make_task(self.task).answer_positions


def blank(cfg: ModelConfig, task: TaskConfig) -> Transformer:
    """A Transformer for `task` with every parameter zero (norm and positions must be off)."""
    if cfg.norm != "none" or cfg.pos != "none":
        raise ValueError("constructions use norm='none' and pos='none'")
    t = make_task(task)
    abstract = nnx.eval_shape(lambda: Transformer(cfg, t.vocab_size(), t.length, t.num_classes, nnx.Rngs(params=0)))
    graphdef, state = nnx.split(abstract)  # shapes only: no initialiser runs
    return nnx.merge(graphdef, jax.tree.map(lambda s: jnp.zeros(s.shape, _STORE.get()), state))


def put(param: nnx.Param, value: np.ndarray) -> None:
    """Writes `value` (float64 numpy, same shape) into `param`, in the storing dtype."""
    value = np.asarray(value, np.float64)
    if value.shape != param[...].shape:
        raise ValueError(f"shape {value.shape} != {param[...].shape}")
    param.set_value(jnp.asarray(value, _STORE.get()))


def quadratic_head(model: Transformer, r_D: np.ndarray, r0: float, n: int) -> None:
    """Head logits_k = (2k r - k^2) / n with r = <r_D, x> + r0: the argmax is the integer k
    in 0..n nearest to r, so the head decodes any readout within 1/2 of the count. The 1/n
    keeps every head weight O(n); the logit margin at r = c is 1/n."""
    k_C = np.arange(n + 1, dtype=np.float64)
    scale = 1.0 / max(n, 1)
    put(model.head.kernel, scale * r_D[:, None] * (2 * k_C)[None, :])
    put(model.head.bias, scale * (2 * k_C * r0 - k_C**2))


def linear_readout(r_D: np.ndarray, r0: float) -> Readout:
    """c_hat = <r_D, x> + r0, in float64 from the residual the model computed."""
    return lambda x_BxAxD: np.asarray(x_BxAxD, np.float64) @ r_D + r0


def cast(model: Transformer, dtype) -> Transformer:
    """A copy of `model` whose parameters and computation use `dtype` (same forward code)."""
    graphdef, state = nnx.split(model)
    out = nnx.merge(graphdef, jax.tree.map(lambda p: p.astype(dtype), state))
    for _, module in nnx.iter_graph(out):
        if isinstance(module, nnx.Embed):
            module.dtype = dtype  # nnx.Embed computes in its own dtype (float32 by default)
    return out


@functools.partial(jax.jit, static_argnums=(0, 3))
def _forward(graphdef, state, tokens_BxT: jax.Array, at_A: tuple[int, ...]):
    model = nnx.merge(graphdef, state)
    x_BxTxD = model.embed_tokens(tokens_BxT)
    for block in model.blocks[:-1]:
        x_BxTxD = block(x_BxTxD)
    x_BxAxD = model.blocks[-1](x_BxTxD, at_A)
    return x_BxAxD, model.head(x_BxAxD)


def forward(model: Transformer, tokens_BxT: np.ndarray, at_A: tuple[int, ...], budget: int = 2**25):
    """(x_BxAxD, logits_BxAxC) as numpy: the model's own modules, exactly as `__call__` runs
    them (norm is off), in chunks of sequences holding at most `budget` activations."""
    graphdef, state = nnx.split(model)
    B, T = tokens_BxT.shape
    cfg = model.cfg
    A = len(at_A)
    per_seq = T * (cfg.d + A) + A * cfg.w + (T * T if cfg.L > 1 else 0)
    chunk = max(1, min(B, budget // max(per_seq, 1)))
    xs, logits = [], []
    for start in range(0, B, chunk):
        part = tokens_BxT[start : start + chunk]
        pad = chunk - len(part)  # the last chunk is padded with copies: one compiled shape
        part = np.concatenate([part, np.repeat(part[:1], pad, axis=0)]) if pad else part
        x, lg = _forward(graphdef, state, jnp.asarray(part), tuple(at_A))
        xs.append(np.asarray(x)[: chunk - pad])
        logits.append(np.asarray(lg)[: chunk - pad])
    return np.concatenate(xs), np.concatenate(logits)


@functools.partial(jax.jit, static_argnums=(0,))
def _call(graphdef, state, tokens_BxT: jax.Array) -> jax.Array:
    return nnx.merge(graphdef, state)(tokens_BxT)


def logits_everywhere(model: Transformer, tokens_BxT: np.ndarray) -> np.ndarray:
    """logits_BxTxC: the model's own `__call__` at every position, jitted once per shape."""
    graphdef, state = nnx.split(model)
    return np.asarray(_call(graphdef, state, jnp.asarray(tokens_BxT)))


def max_abs_weight(model: Transformer) -> dict[str, float]:
    """The largest |parameter| of each part: embedding, attention, MLP, head."""
    parts = {"embed": [model.embed], "attn": [b.attn for b in model.blocks], "mlp": [b.mlp for b in model.blocks],
             "head": [model.head]}
    out = {}
    for name, modules in parts.items():
        leaves = [np.abs(np.asarray(p)).max() for mod in modules for p in jax.tree.leaves(nnx.state(mod, nnx.Param))]
        out[name] = float(max(leaves))
    return out
