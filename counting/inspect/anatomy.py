"""The counting layer of each model class, in pieces the diagnostics and the interventions
share, looked up by class (`ANATOMIES`, `anatomy(model)`).

The counting layer is the first attention layer. Its pieces, for tokens_BxT:

- `layer0(model, tokens_BxT)` -> (x_BxTxD, att_BxHxTxT, v_BxTxHxK): the residual entering the
  layer, the attention weights of every position over every key, and each key's value;
- `mix(model, att_BxHxAxT, v_BxTxHxK)` -> y_BxAxD: what attention with those weights adds to
  the residual (linear in the weights: the output projection has no bias);
- `finish(model, x_BxTxD, y_BxTxD, at_R)` -> logits_BxRxC: the rest of the forward pass from
  the layer's attention output y on (its MLP, later layers, the head) at the answer positions.

finish(x, mix(att, v), at_R) is the model's own forward pass (tested), so an intervention is a
change of att or of y. `Transformer` (counting.models.transformer): x = embedding plus positions, its
first block's (pre-LN) attention, values W_V per head and output W_O. `BehrensModel`
(counting.models.behrens): x = the token embedding, one head whose value is x itself (no W_V, no
W_O), and the MLP classifies x + y directly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from counting.models.behrens import BehrensModel
from counting.models.transformer import Transformer


def transformer_layer0(model: Transformer, tokens_BxT: jax.Array):
    """(x_BxTxD, att_BxHxTxT, v_BxTxHxK) of the Transformer's first block: the embedded tokens with their
    positions, the attention weights of its (pre-LN) attention, and each key's value per head."""
    cfg = model.cfg
    B, T = tokens_BxT.shape
    x_BxTxD = model.embed_tokens(tokens_BxT)
    block = model.blocks[0]
    h_BxTxD = block.attn_input(x_BxTxD)
    att_BxHxTxT = block.attn.weights(h_BxTxD)
    v_BxTxHxK = block.attn.value(h_BxTxD).reshape(B, T, cfg.H, cfg.d // cfg.H)
    return x_BxTxD, att_BxHxTxT, v_BxTxHxK


def transformer_mix(model: Transformer, att_BxHxAxT: jax.Array, v_BxTxHxK: jax.Array) -> jax.Array:
    """y_BxAxD: the first block's attention output for the weights att_BxHxAxT, its heads' values mixed and
    projected by W_O."""
    B, _, A, _ = att_BxHxAxT.shape
    y_BxAxHxK = jnp.einsum("bhat,bthk->bahk", att_BxHxAxT, v_BxTxHxK)
    return model.blocks[0].attn.out(y_BxAxHxK.reshape(B, A, model.cfg.d))


def transformer_finish(model: Transformer, x_BxTxD: jax.Array, y_BxTxD: jax.Array, at_R: tuple[int, ...]):
    """logits_BxRxC at the answer positions at_R: the residual x + y through the first block's MLP, the later
    blocks, the final LayerNorm (pre_ln) and the head (with one layer, only the answer positions are run)."""
    blocks, cfg = model.blocks, model.cfg
    first = blocks[0]
    x_BxTxD = x_BxTxD + y_BxTxD
    if cfg.L == 1:
        x_BxTxD = x_BxTxD[:, np.asarray(at_R)]
    x_BxTxD = x_BxTxD + first.mlp(first.ln_mlp(x_BxTxD) if first.pre_ln else x_BxTxD)
    for block in blocks[1:-1]:
        x_BxTxD = block(x_BxTxD)
    if cfg.L > 1:
        x_BxTxD = blocks[-1](x_BxTxD, at_R)
    if cfg.norm == "pre_ln":
        x_BxTxD = model.ln_f(x_BxTxD)
    return model.head(x_BxTxD)


def behrens_layer0(model: BehrensModel, tokens_BxT: jax.Array):
    """(x_BxTxD, att_Bx1xTxT, v_BxTx1xD) of a BehrensModel: the token embeddings, its one head's weights, and x
    itself as the value."""
    x_BxTxD = model.embed(tokens_BxT)
    return x_BxTxD, model.weights(x_BxTxD)[:, None], x_BxTxD[:, :, None, :]


def behrens_mix(model: BehrensModel, att_BxHxAxT: jax.Array, v_BxTxHxK: jax.Array) -> jax.Array:
    """y_BxAxD: the values x mixed by the weights att_BxHxAxT (no output projection)."""
    B, _, A, _ = att_BxHxAxT.shape
    return jnp.einsum("bhat,bthk->bahk", att_BxHxAxT, v_BxTxHxK).reshape(B, A, -1)


def behrens_finish(model: BehrensModel, x_BxTxD: jax.Array, y_BxTxD: jax.Array, at_R: tuple[int, ...]):
    """logits_BxRxC: the MLP classifier on x + y at the answer positions at_R."""
    r_BxRxD = (x_BxTxD + y_BxTxD)[:, np.asarray(at_R)]
    return model.out(jax.nn.relu(model.hidden(r_BxRxD)))


@dataclasses.dataclass(frozen=True)
class Anatomy:
    """The three pieces of a model class's counting layer: `layer0`, `mix` and `finish` (see the module's
    docstring)."""

    layer0: Callable
    mix: Callable
    finish: Callable


ANATOMIES: dict[type, Anatomy] = {
    Transformer: Anatomy(transformer_layer0, transformer_mix, transformer_finish),
    BehrensModel: Anatomy(behrens_layer0, behrens_mix, behrens_finish),
}


def anatomy(model) -> Anatomy:
    """The Anatomy of the model's class (ANATOMIES); TypeError for a class counting.inspect does not read."""
    try:
        return ANATOMIES[type(model)]
    except KeyError:
        raise TypeError(f"model: counting.inspect reads {', '.join(c.__name__ for c in ANATOMIES)}, "
                        f"not {type(model).__name__}") from None

