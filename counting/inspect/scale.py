"""Weight scale and logit margin.

Norms (Frobenius, summed in quadrature over layers and heads): `norm_embed` (the root mean
square norm of the content tokens' rows: a token's scale, not growing with m by itself),
`norm_qk` (each head's bilinear form W_q,h W_k,h^T / sqrt(d/H): the scale of the attention
logits), `norm_ov` (each head's W_v,h W_o,h), `norm_mlp` (||W_1|| ||W_2||, the
scale of the MLP's linear pieces), `norm_head`, and `norm_total` (every parameter).
`margin`: the median over held-out answers of the correct class's logit minus the largest
other logit (negative where the model is wrong); `probe_accuracy` on the same answers.
A Behrens et al. model (counting.models.behrens) has no W_V W_O and no head apart from its MLP:
its norm_ov and norm_head are empty, and so is norm_qk with linear mixing.
"""

from __future__ import annotations

import math

import jax
import numpy as np
from flax import nnx

from counting.inspect.geometry import content_embeddings
from counting.inspect.trace import Trace
from counting.models.behrens import BehrensModel
from counting.models.transformer import Transformer


def _w(linear) -> np.ndarray:
    return np.asarray(linear.kernel[...], np.float64)


def per_head(A_DxD: np.ndarray, B_DxD: np.ndarray, H: int, transpose_b: bool) -> float:
    """sqrt(sum over heads of ||A_h B_h||_F^2): A_h the head's columns of A; B_h its columns
    (transposed: the bilinear form A_h B_h^T) or its rows (B_h: the value-output map)."""
    K = A_DxD.shape[1] // H
    total = 0.0
    for h in range(H):
        A_h = A_DxD[:, h * K : (h + 1) * K]
        B_h = B_DxD[:, h * K : (h + 1) * K].T if transpose_b else B_DxD[h * K : (h + 1) * K]
        total += float(np.linalg.norm(A_h @ B_h) ** 2)
    return math.sqrt(total)


def transformer_norms(model, m: int) -> dict[str, float]:
    """A Transformer's weight norms, each a root sum of squares over blocks (and heads): query-key
    ||W_Q,h W_K,h^T||_F / sqrt(d/H), value-output ||W_V,h W_O,h||_F, the MLP ||W_1||_F ||W_2||_F, and the
    head's ||W||_F."""
    cfg = model.cfg
    quad = lambda xs: math.sqrt(sum(x * x for x in xs))
    blocks = list(model.blocks)
    K = cfg.d // cfg.H
    return {
        "norm_qk": quad(per_head(_w(b.attn.query), _w(b.attn.key), cfg.H, True) / math.sqrt(K) for b in blocks),
        "norm_ov": quad(per_head(_w(b.attn.value), _w(b.attn.out), cfg.H, False) for b in blocks),
        "norm_mlp": quad(np.linalg.norm(_w(b.mlp.hidden)) * np.linalg.norm(_w(b.mlp.out)) for b in blocks),
        "norm_head": float(np.linalg.norm(_w(model.head))),
    }


def behrens_norms(model, m: int) -> dict[str, float]:
    """No W_V W_O (the value is the embedding: norm_ov empty), no head apart from the MLP
    (norm_head empty); linear mixing has no W_Q W_K (norm_qk empty)."""
    d = model.cfg.d
    qk = (float(np.linalg.norm(_w(model.query) @ _w(model.key).T)) / math.sqrt(d) if model.mixing == "dot"
          else float("nan"))
    return {"norm_qk": qk, "norm_ov": float("nan"),
            "norm_mlp": float(np.linalg.norm(_w(model.hidden)) * np.linalg.norm(_w(model.out))),
            "norm_head": float("nan")}


NORMS = {Transformer: transformer_norms, BehrensModel: behrens_norms}  # model class -> its weight norms


def norms(model, m: int) -> dict[str, float]:
    """Every weight norm of a model: the content embeddings' root mean square row norm, the class's own norms
    (NORMS), and the norm of all its parameters together."""
    leaves = jax.tree.leaves(nnx.state(model, nnx.Param))
    return {
        "norm_embed": float(np.linalg.norm(content_embeddings(model, m)) / np.sqrt(m)),
        **NORMS[type(model)](model, m),
        "norm_total": float(math.sqrt(sum(float((np.asarray(p, np.float64) ** 2).sum()) for p in leaves))),
    }


def margin(trace: Trace) -> dict[str, float]:
    """probe_accuracy (accuracy at the answer positions read) and margin (the median over answers of the true
    class's logit minus the largest other logit)."""
    logits_NxC = trace.logits_BxRxC[trace.mask_BxR]
    label_N = trace.labels_BxR[trace.mask_BxR]
    right_N = np.take_along_axis(logits_NxC, label_N[:, None], axis=1)[:, 0]
    other_NxC = logits_NxC.copy()
    np.put_along_axis(other_NxC, label_N[:, None], -np.inf, axis=1)
    gap_N = right_N - other_NxC.max(1)
    return {"probe_accuracy": float((logits_NxC.argmax(1) == label_N).mean()), "margin": float(np.median(gap_N))}
