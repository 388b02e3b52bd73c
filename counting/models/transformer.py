"""The configurable transformer: embeddings, L blocks of attention + ReLU MLP, a count head.

One forward code path serves trained models and the exact constructions of the theory
module (which set these same weights by hand). Shapes: B batch, T length, D = d model
dimension, H heads, K = d/H head dimension, F = w MLP width, V vocabulary, C = n + 1 count
classes.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from counting.config import ModelConfig


def prefix_stable_normal(stddev: float):
    """Embedding init whose row i depends only on (key, i): padding the table to a larger
    vocabulary (as a cohort does) leaves every existing row unchanged."""

    def init(key, shape, dtype=jnp.float32):
        rows = jnp.arange(shape[0])
        draw_row = lambda i: jax.random.normal(jax.random.fold_in(key, i), shape[1:], dtype)
        return stddev * jax.vmap(draw_row)(rows)

    return init


def sinusoidal_table(T: int, d: int) -> jax.Array:
    """pe_TxD: the fixed sin/cos table of Vaswani et al.; defined for any length T."""
    pos_T1 = jnp.arange(T, dtype=jnp.float32)[:, None]
    freq_F = jnp.exp(-math.log(10000.0) * jnp.arange(0, d, 2, dtype=jnp.float32) / d)
    ang_TxF = pos_T1 * freq_F[None, :]
    pe_TxFx2 = jnp.stack([jnp.sin(ang_TxF), jnp.cos(ang_TxF)], axis=-1)
    return pe_TxFx2.reshape(T, -1)[:, :d]


def rope(x_BxTxHxK: jax.Array, pos_T: jax.Array) -> jax.Array:
    """Rotary position embedding on the last axis (split-half convention) at positions pos_T."""
    K = x_BxTxHxK.shape[3]
    freq_F = 10000.0 ** (-jnp.arange(0, K, 2, dtype=jnp.float32) / K)
    ang_TxF = jnp.asarray(pos_T, jnp.float32)[:, None] * freq_F[None, :]
    cos_1xTx1xF = jnp.cos(ang_TxF)[None, :, None, :]
    sin_1xTx1xF = jnp.sin(ang_TxF)[None, :, None, :]
    a_BxTxHxF, b_BxTxHxF = jnp.split(x_BxTxHxK, 2, axis=-1)
    return jnp.concatenate(
        [a_BxTxHxF * cos_1xTx1xF - b_BxTxHxF * sin_1xTx1xF, a_BxTxHxF * sin_1xTx1xF + b_BxTxHxF * cos_1xTx1xF],
        axis=-1,
    )


def query_positions(T: int, at_A) -> np.ndarray:
    """The positions a layer computes outputs for: all T, or the static subset at_A."""
    return np.arange(T) if at_A is None else np.asarray(at_A)


def softmax_weights(s_BxHxAxT: jax.Array, allowed_AxT: np.ndarray, cfg: ModelConfig) -> jax.Array:
    """Softmax over the allowed keys."""
    allowed_1x1xAxT = jnp.asarray(allowed_AxT)[None, None]
    return jax.nn.softmax(jnp.where(allowed_1x1xAxT, s_BxHxAxT, -jnp.inf), axis=-1)


def linear_weights(s_BxHxAxT: jax.Array, allowed_AxT: np.ndarray, cfg: ModelConfig) -> jax.Array:
    """Linear attention: the raw scores, averaged over the allowed keys."""
    allowed_1x1xAxT = jnp.asarray(allowed_AxT)[None, None]
    seen_1x1xAx1 = jnp.asarray(allowed_AxT.sum(-1, keepdims=True), s_BxHxAxT.dtype)[None, None]
    return jnp.where(allowed_1x1xAxT, s_BxHxAxT, 0.0) / seen_1x1xAx1


def topk_weights(s_BxHxAxT: jax.Array, allowed_AxT: np.ndarray, cfg: ModelConfig) -> jax.Array:
    """Top-k attention, exact: each query keeps the allowed keys whose score is at least its
    k-th largest allowed score (k = model.topk) and takes a softmax over those; every other
    weight is exactly 0. Ties at the k-th score are all kept (so a row may keep more than k
    keys when scores tie; the rule does not depend on key order). A query with at most k
    allowed keys (early positions under a causal mask) keeps them all."""
    allowed_1x1xAxT = jnp.asarray(allowed_AxT)[None, None]
    masked_BxHxAxT = jnp.where(allowed_1x1xAxT, s_BxHxAxT, -jnp.inf)
    k = min(cfg.topk, s_BxHxAxT.shape[-1])
    kth_BxHxAx1 = jax.lax.stop_gradient(jax.lax.top_k(masked_BxHxAxT, k)[0][..., -1:])
    keep_BxHxAxT = allowed_1x1xAxT & (masked_BxHxAxT >= kth_BxHxAx1)
    return jax.nn.softmax(jnp.where(keep_BxHxAxT, s_BxHxAxT, -jnp.inf), axis=-1)


# model.attention -> (scores_BxHxAxT, allowed_AxT, cfg) -> weights_BxHxAxT
ATTENTIONS = {"softmax": softmax_weights, "linear": linear_weights, "topk": topk_weights}


class Attention(nnx.Module):
    """Multi-head attention of d dimensions in H heads of d/H: query, key, value and output maps without bias,
    the weights by model.attention (ATTENTIONS), RoPE on queries and keys with pos = rope, and a causal mask
    when set."""

    def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs):
        self.cfg = cfg
        d = cfg.d
        self.query = nnx.Linear(d, d, use_bias=False, rngs=rngs)
        self.key = nnx.Linear(d, d, use_bias=False, rngs=rngs)
        self.value = nnx.Linear(d, d, use_bias=False, rngs=rngs)
        self.out = nnx.Linear(d, d, use_bias=False, rngs=rngs)

    def weights(self, x_BxTxD: jax.Array, at_A=None) -> jax.Array:
        """att_BxHxAxT: attention weights of the queries at positions at_A (default: all)
        over all T keys."""
        cfg = self.cfg
        B, T, _ = x_BxTxD.shape
        K = cfg.d // cfg.H
        pos_A = query_positions(T, at_A)
        A = len(pos_A)
        x_BxAxD = x_BxTxD if at_A is None else x_BxTxD[:, pos_A]
        q_BxAxHxK = self.query(x_BxAxD).reshape(B, A, cfg.H, K)
        k_BxTxHxK = self.key(x_BxTxD).reshape(B, T, cfg.H, K)
        if cfg.pos == "rope":
            q_BxAxHxK, k_BxTxHxK = rope(q_BxAxHxK, pos_A), rope(k_BxTxHxK, np.arange(T))
        s_BxHxAxT = jnp.einsum("bahk,bthk->bhat", q_BxAxHxK, k_BxTxHxK) / math.sqrt(K)
        allowed_AxT = pos_A[:, None] >= np.arange(T)[None, :] if cfg.causal else np.ones((A, T), bool)
        return ATTENTIONS[cfg.attention](s_BxHxAxT, allowed_AxT, cfg)

    def __call__(self, x_BxTxD: jax.Array, at_A=None) -> jax.Array:
        """y_BxAxD: the attention output at positions at_A (default: all)."""
        cfg = self.cfg
        B, T, _ = x_BxTxD.shape
        att_BxHxAxT = self.weights(x_BxTxD, at_A)
        v_BxTxHxK = self.value(x_BxTxD).reshape(B, T, cfg.H, cfg.d // cfg.H)
        y_BxAxHxK = jnp.einsum("bhat,bthk->bahk", att_BxHxAxT, v_BxTxHxK)
        return self.out(y_BxAxHxK.reshape(B, -1, cfg.d))


class MLP(nnx.Module):
    """The block's MLP: d -> w, ReLU, w -> d (with biases)."""

    def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(cfg.d, cfg.w, rngs=rngs)
        self.out = nnx.Linear(cfg.w, cfg.d, rngs=rngs)

    def __call__(self, x_BxTxD: jax.Array) -> jax.Array:
        return self.out(jax.nn.relu(self.hidden(x_BxTxD)))


class Block(nnx.Module):
    """One transformer block: attention and MLP, each added to the residual stream, each behind a LayerNorm with
    norm = pre_ln."""

    def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs):
        self.pre_ln = cfg.norm == "pre_ln"
        self.attn = Attention(cfg, rngs)
        self.mlp = MLP(cfg, rngs)
        if self.pre_ln:
            self.ln_attn = nnx.LayerNorm(cfg.d, rngs=rngs)
            self.ln_mlp = nnx.LayerNorm(cfg.d, rngs=rngs)

    def attn_input(self, x_BxTxD: jax.Array) -> jax.Array:
        """What the attention reads: x_BxTxD through the attention's LayerNorm (pre_ln), else x_BxTxD itself."""
        return self.ln_attn(x_BxTxD) if self.pre_ln else x_BxTxD

    def __call__(self, x_BxTxD: jax.Array, at_A=None) -> jax.Array:
        """The block's output at positions at_A (default: all): x_BxAxD."""
        x_BxAxD = x_BxTxD if at_A is None else x_BxTxD[:, query_positions(x_BxTxD.shape[1], at_A)]
        x_BxAxD = x_BxAxD + self.attn(self.attn_input(x_BxTxD), at_A)
        return x_BxAxD + self.mlp(self.ln_mlp(x_BxAxD) if self.pre_ln else x_BxAxD)


class Transformer(nnx.Module):
    """tokens_BxT -> logits_BxAxC at the task's answer positions (A of the T)."""

    def __init__(self, cfg: ModelConfig, vocab: int, length: int, num_classes: int, rngs: nnx.Rngs):
        self.cfg = cfg
        self.length = length
        self.embed = nnx.Embed(vocab, cfg.d, embedding_init=prefix_stable_normal(cfg.d**-0.5), rngs=rngs)
        if cfg.pos == "learned":
            self.pos_embed = nnx.Embed(length, cfg.d, embedding_init=prefix_stable_normal(cfg.d**-0.5), rngs=rngs)
        self.blocks = nnx.List([Block(cfg, rngs) for _ in range(cfg.L)])
        if cfg.norm == "pre_ln":
            self.ln_f = nnx.LayerNorm(cfg.d, rngs=rngs)
        self.head = nnx.Linear(cfg.d, num_classes, rngs=rngs)

    def embed_tokens(self, tokens_BxT: jax.Array) -> jax.Array:
        """x_BxTxD: the token embeddings plus the learned or sinusoidal positions (none for none and rope);
        ValueError when learned positions do not reach length T."""
        T = tokens_BxT.shape[1]
        x_BxTxD = self.embed(tokens_BxT)
        if self.cfg.pos == "learned":
            if T > self.length:
                raise ValueError(f"learned positions cover length {self.length}; got {T} (use sinusoidal, rope or none)")
            x_BxTxD = x_BxTxD + self.pos_embed.embedding[...][:T][None]
        elif self.cfg.pos == "sinusoidal":
            x_BxTxD = x_BxTxD + sinusoidal_table(T, self.cfg.d)[None]
        return x_BxTxD

    def residual(self, tokens_BxT: jax.Array) -> list[jax.Array]:
        """The residual stream after the embedding and after every block."""
        xs = [self.embed_tokens(tokens_BxT)]
        for block in self.blocks:
            xs.append(block(xs[-1]))
        return xs

    def __call__(self, tokens_BxT: jax.Array, at_A=None) -> jax.Array:
        """logits_BxAxC at the answer positions at_A (static; default: all T).

        Only the answer positions reach the head, so the last block computes its queries and
        its MLP there alone; earlier blocks run at every position.
        """
        x_BxTxD = self.embed_tokens(tokens_BxT)
        for block in self.blocks[:-1]:
            x_BxTxD = block(x_BxTxD)
        x_BxAxD = self.blocks[-1](x_BxTxD, at_A)
        if self.cfg.norm == "pre_ln":
            x_BxAxD = self.ln_f(x_BxAxD)
        return self.head(x_BxAxD)
