"""Loss and evaluation metrics at a task's answer positions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from counting.tasks import Batch


def loss_fn(logits_BxTxC: jax.Array, batch: Batch) -> jax.Array:
    """Mean cross-entropy over the answer positions."""
    ce_BxT = optax.softmax_cross_entropy_with_integer_labels(logits_BxTxC, batch.labels_BxT)
    mask_BxT = batch.mask_BxT.astype(ce_BxT.dtype)
    return (ce_BxT * mask_BxT).sum() / jnp.maximum(mask_BxT.sum(), 1.0)


def count_stats(logits_BxTxC: jax.Array, batch: Batch) -> dict[str, jax.Array]:
    """Per true count c: answers seen and answers right; plus sequences fully right."""
    C = logits_BxTxC.shape[-1]
    right_BxT = (logits_BxTxC.argmax(-1) == batch.labels_BxT) & batch.mask_BxT
    onehot_BxTxC = jax.nn.one_hot(batch.labels_BxT, C, dtype=jnp.int32) * batch.mask_BxT[..., None]
    seq_right_B = (right_BxT | ~batch.mask_BxT).all(-1)
    return {
        "total_C": onehot_BxTxC.sum((0, 1)),
        "right_C": (onehot_BxTxC * right_BxT[..., None]).sum((0, 1)),
        "seq_right": seq_right_B.sum(),
        "loss": loss_fn(logits_BxTxC, batch),
    }


def summarize(stats: dict, num_sequences: int) -> dict:
    """Host-side summary: exact-match accuracy, per-count accuracy, trivial baseline."""
    total_C = np.asarray(stats["total_C"], np.int64)
    right_C = np.asarray(stats["right_C"], np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_count = np.where(total_C > 0, right_C / np.maximum(total_C, 1), np.nan)
    return {
        "loss": float(stats["loss"]),
        "accuracy": float(right_C.sum() / max(total_C.sum(), 1)),
        "seq_accuracy": float(stats["seq_right"]) / num_sequences,
        "baseline_accuracy": baseline_accuracy(total_C),
        "accuracy_per_count": [None if np.isnan(a) else float(a) for a in per_count],
        "count_support": total_C.tolist(),
    }


def baseline_accuracy(total_C) -> float:
    """Accuracy of always answering the most frequent label of the same data."""
    total_C = np.asarray(total_C)
    return float(total_C.max() / max(total_C.sum(), 1))


def param_norms(params) -> dict[str, float]:
    """L2 norm of the parameters of each module (embed, pos_embed, blocks.i.attn, ...)."""
    sq: dict[str, float] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        keys = [str(getattr(p, "key", getattr(p, "idx", p))) for p in path]
        name = ".".join(keys[:3] if keys[0] == "blocks" else keys[:1])
        sq[name] = sq.get(name, 0.0) + float(jnp.sum(jnp.square(leaf)))
    return {k: float(np.sqrt(v)) for k, v in sorted(sq.items())}
