"""Loss and evaluation metrics at a task's answer positions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from counting.tasks import Batch


def at_answers(batch: Batch, at_A) -> tuple[jax.Array, jax.Array]:
    """(labels_BxA, mask_BxA): the batch's labels and mask at the answer positions at_A."""
    pos_A = np.asarray(at_A)
    return batch.labels_BxT[:, pos_A], batch.mask_BxT[:, pos_A]


def loss_fn(logits_BxAxC: jax.Array, batch: Batch, at_A) -> jax.Array:
    """Mean cross-entropy over the answer positions (logits computed only there)."""
    labels_BxA, mask_BxA = at_answers(batch, at_A)
    ce_BxA = optax.softmax_cross_entropy_with_integer_labels(logits_BxAxC, labels_BxA)
    m_BxA = mask_BxA.astype(ce_BxA.dtype)
    return (ce_BxA * m_BxA).sum() / jnp.maximum(m_BxA.sum(), 1.0)


def count_stats(logits_BxAxC: jax.Array, batch: Batch, at_A) -> dict[str, jax.Array]:
    """Per true count c: answers seen and answers right; plus sequences fully right."""
    C = logits_BxAxC.shape[-1]
    labels_BxA, mask_BxA = at_answers(batch, at_A)
    right_BxA = (logits_BxAxC.argmax(-1) == labels_BxA) & mask_BxA
    onehot_BxAxC = jax.nn.one_hot(labels_BxA, C, dtype=jnp.int32) * mask_BxA[..., None]
    seq_right_B = (right_BxA | ~mask_BxA).all(-1)
    return {
        "total_C": onehot_BxAxC.sum((0, 1)),
        "right_C": (onehot_BxAxC * right_BxA[..., None]).sum((0, 1)),
        "seq_right": seq_right_B.sum(),
        "loss": loss_fn(logits_BxAxC, batch, at_A),
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
    """L2 norm of the parameters of each module (embed, pos_embed, blocks.i.attn, ...),
    computed on the host (pass host arrays to avoid one transfer per leaf)."""
    sq: dict[str, float] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        keys = [str(getattr(p, "key", getattr(p, "idx", p))) for p in path]
        name = ".".join(keys[:3] if keys[0] == "blocks" else keys[:1])
        sq[name] = sq.get(name, 0.0) + float(np.sum(np.square(np.asarray(leaf, np.float64))))
    return {k: float(np.sqrt(v)) for k, v in sorted(sq.items())}
