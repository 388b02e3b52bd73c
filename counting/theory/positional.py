"""Positional information is necessary (claim 1).

Without positional encodings and without a causal mask, every attention layer sees its keys
as a multiset: on x x (the whole token sequence written twice) each key occurs twice as
often, softmax (or the linear average) gives each copy half the weight, and the output at
every position equals the output on x at the matching position; the position-wise MLP,
LayerNorm and head preserve that, layer after layer. So any such model predicts the same
count at position p of x, and at positions p and p + T of x x, although every count
doubles: it is wrong on at least one of them.

`repeat_gap` measures this on random models; `repeat_table` also runs the exact histogram
construction, which is exact at the length it was built for and therefore wrong, at every
position, on the repeated sequence.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from counting.config import ModelConfig, TaskConfig
from counting.models.transformer import Transformer
from counting.theory import sequences
from counting.theory.histogram import histogram_solution
from counting.theory.weights import forward, logits_everywhere

NO_POSITION = dict(pos="none", causal=False)


def random_configs(count: int, seed: int) -> list[ModelConfig]:
    """`count` model shapes without positions or mask: d, L, H, w, norm, attention (softmax, linear) varied."""
    rng = np.random.default_rng(seed)
    grid = list(itertools.product((4, 8, 16), (1, 2), (1, 2), (8, 32), ("none", "pre_ln"), ("softmax", "linear")))
    picks = rng.choice(len(grid), size=count, replace=count > len(grid))
    return [ModelConfig(d=d, L=L, H=H, w=w, norm=norm, attention=att, **NO_POSITION)
            for d, L, H, w, norm, att in (grid[i] for i in picks)]


def random_model(cfg: ModelConfig, vocab: int, length: int, classes: int, seed: int) -> Transformer:
    """The suite's Transformer with random weights: every parameter i.i.d. normal with scale
    1/sqrt(its first dimension) (embeddings and LayerNorm scales around their usual sizes),
    drawn with numpy from `seed`; no initialiser runs, so nothing compiles."""
    abstract = nnx.eval_shape(lambda: Transformer(cfg, vocab, length, classes, nnx.Rngs(params=0)))
    graphdef, state = nnx.split(abstract)
    rng = np.random.default_rng(seed)

    def draw(s):
        scale = 1.0 / np.sqrt(s.shape[0]) if len(s.shape) == 2 else 0.5
        return jnp.asarray(scale * rng.standard_normal(s.shape), s.dtype)

    return nnx.merge(graphdef, jax.tree.map(draw, state))


def repeat_gap(model: Transformer, tokens_BxT: np.ndarray) -> tuple[float, bool]:
    """(max |logits(x)[p] - logits(x x)[p + k T]| over positions p, copies k = 0, 1 and the
    batch, relative to the largest |logit|; whether the argmax agrees everywhere)."""
    T = tokens_BxT.shape[1]
    once = logits_everywhere(model, tokens_BxT)
    twice = logits_everywhere(model, sequences.repeat_twice(tokens_BxT))
    gap = max(np.abs(once - twice[:, :T]).max(), np.abs(once - twice[:, T:]).max())
    agree = bool((once.argmax(-1) == twice[:, :T].argmax(-1)).all() and (once.argmax(-1) == twice[:, T:].argmax(-1)).all())
    return float(gap / max(np.abs(once).max(), 1e-30)), agree


def histogram_on_repeat(m: int, n: int, batch: int, seed: int) -> dict[str, float]:
    """The histogram construction built for length n (no BOS): its accuracy on x, on x x,
    and how often its predictions on the two agree."""
    task = TaskConfig("histogram", m=m, n=n, bos=False)
    c = histogram_solution(task)
    seqs = sequences.uniform(task, batch, seed)
    twice = sequences.repeat_twice(seqs.tokens_BxT)
    _, once_logits = forward(c.model, seqs.tokens_BxT, tuple(range(n)))
    _, twice_logits = forward(c.model, twice, tuple(range(2 * n)))
    pred, pred2 = once_logits.argmax(-1), twice_logits.argmax(-1)
    return {
        "accuracy_x": float((pred == seqs.labels_BxA).mean()),
        "accuracy_xx": float((pred2 == np.tile(2 * seqs.labels_BxA, 2)).mean()),
        "agreement": float((pred == pred2[:, :n]).mean() * 0.5 + (pred == pred2[:, n:]).mean() * 0.5),
    }


def repeat_table(models: int, seed: int, n: int = 12, m: int = 5, batch: int = 16) -> list[dict]:
    """One row per random model (max relative logit gap between x and x x, and whether the
    argmax agrees everywhere), then controls with a mask or positions (invariance broken)
    and the exact histogram construction."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, m, (batch, n)).astype(np.int32)
    rows = []
    controls = [ModelConfig(d=8, L=1, H=1, w=16, pos="none", causal=True),
                ModelConfig(d=8, L=1, H=1, w=16, pos="sinusoidal", causal=False),
                ModelConfig(d=8, L=1, H=1, w=16, pos="rope", causal=False)]
    configs = random_configs(models, seed) + controls
    for i, cfg in enumerate(configs):
        model = random_model(cfg, m, 2 * n, 2 * n + 1, seed + i)
        gap, agree = repeat_gap(model, tokens)
        rows.append({"model": "random" if i < models else "control", "d": cfg.d, "L": cfg.L, "H": cfg.H,
                     "norm": cfg.norm, "attention": cfg.attention, "pos": cfg.pos, "causal": cfg.causal,
                     "max_rel_logit_gap": gap, "argmax_agrees": agree})
    hist = histogram_on_repeat(m, n, batch, seed)
    rows.append({"model": "histogram_construction", "d": m, "L": 1, "H": 1, "norm": "none", "attention": "softmax",
                 "pos": "none", "causal": False, "max_rel_logit_gap": float("nan"),
                 "argmax_agrees": hist["agreement"] == 1.0, **hist})
    return rows
