"""The one-layer models of Behrens, Biggio and Zdeborová, *Counting in Small Transformers*
(arXiv 2407.11542; their code: SPOC-group/counting-attention, memory_exp.py TransformerSeq2Seq),
as model classes of the suite (`model.arch`, named as they name them):

    linear, linear+softmax     a learned position-by-position mixing matrix A_TxT
    dot, dot+softmax           dot-product attention on the token embedding alone, no BOS
    dotBOS, dotBOS+softmax     the same with a BOS token in front (task.bos = true)

Forward pass (their L246-306): X = E[x] (the token embedding only: no positional encoding
reaches the model); scores S = (X W_Q)(X W_K)^T / sqrt(d) or S = A; weights = softmax(S)
row-wise for the `+softmax` variants, S itself otherwise; the value is the embedding itself
(no W_V, no W_O) and the residual is Y = weights X + X (no LayerNorm); the MLP is the classifier
itself: logits = W2 relu(W1 Y + b1) + b2, d -> w -> the n + 1 count classes, with no residual
around it and no separate head. Initialisation as PyTorch's defaults there: E ~ N(0, 1); W_Q,
W_K, A, W1, W2 and the biases uniform in +-1/sqrt(fan_in).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from counting.config import ModelConfig
from counting.models.transformer import prefix_stable_normal, query_positions

# model.arch -> (mixing, softmax, BOS): the six variants
VARIANTS = {
    "linear": ("linear", False, False), "linear+softmax": ("linear", True, False),
    "dot": ("dot", False, False), "dot+softmax": ("dot", True, False),
    "dotBOS": ("dot", False, True), "dotBOS+softmax": ("dot", True, True),
}


def torch_uniform(fan_in: int):
    """PyTorch's default Linear init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), for weights and biases."""
    bound = 1.0 / math.sqrt(fan_in)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class BehrensModel(nnx.Module):
    """tokens_BxT -> logits_BxAxC at the answer positions (A of the T), one of VARIANTS."""

    def __init__(self, cfg: ModelConfig, vocab: int, length: int, num_classes: int, rngs: nnx.Rngs):
        self.cfg = cfg
        self.mixing, self.softmax, _ = VARIANTS[cfg.arch]
        d, w = cfg.d, cfg.w
        self.length = length
        self.embed = nnx.Embed(vocab, d, embedding_init=prefix_stable_normal(1.0), rngs=rngs)
        if self.mixing == "dot":
            self.query = nnx.Linear(d, d, use_bias=False, kernel_init=torch_uniform(d), rngs=rngs)
            self.key = nnx.Linear(d, d, use_bias=False, kernel_init=torch_uniform(d), rngs=rngs)
        else:
            self.mix = nnx.Param(torch_uniform(length)(rngs.params(), (length, length)))
        self.hidden = nnx.Linear(d, w, kernel_init=torch_uniform(d), bias_init=torch_uniform(d), rngs=rngs)
        self.out = nnx.Linear(w, num_classes, kernel_init=torch_uniform(w), bias_init=torch_uniform(w), rngs=rngs)

    def weights(self, x_BxTxD: jax.Array, at_A=None) -> jax.Array:
        """att_BxAxT: the mixing weights of the positions at_A (default: all) over all T."""
        B, T, d = x_BxTxD.shape
        pos_A = query_positions(T, at_A)
        if self.mixing == "dot":
            q_BxAxD = self.query(x_BxTxD[:, pos_A])
            k_BxTxD = self.key(x_BxTxD)
            s_BxAxT = jnp.einsum("bad,btd->bat", q_BxAxD, k_BxTxD) / math.sqrt(d)
        else:
            s_BxAxT = jnp.broadcast_to(self.mix[...][pos_A][None], (B, len(pos_A), T))
        return jax.nn.softmax(s_BxAxT, axis=-1) if self.softmax else s_BxAxT

    def residual(self, tokens_BxT: jax.Array, at_A=None) -> jax.Array:
        """y_BxAxD = weights X + X at the positions at_A: what the MLP classifies."""
        x_BxTxD = self.embed(tokens_BxT)
        pos_A = query_positions(tokens_BxT.shape[1], at_A)
        att_BxAxT = self.weights(x_BxTxD, at_A)
        return jnp.einsum("bat,btd->bad", att_BxAxT, x_BxTxD) + x_BxTxD[:, pos_A]

    def __call__(self, tokens_BxT: jax.Array, at_A=None) -> jax.Array:
        if tokens_BxT.shape[1] != self.length and self.mixing == "linear":
            raise ValueError(f"linear mixing covers length {self.length}; got {tokens_BxT.shape[1]}")
        return self.out(jax.nn.relu(self.hidden(self.residual(tokens_BxT, at_A))))
