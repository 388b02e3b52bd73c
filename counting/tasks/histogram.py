"""Histogram: at every content position, how many times that position's token occurs in
the whole sequence (answers in 1..n at each of the n content positions).

`uniform`: tokens i.i.d. over the k allowed tokens. `balanced`: one planted token gets a
count c drawn uniformly from 1..n, at random positions; the other positions are drawn from
the other k - 1 allowed tokens. (Per-position labels are then size-biased: a token with
count c labels c positions. The planted count is what is balanced.) `partition`: Behrens et
al.'s random-partition sequences (`tasks.base.partition_draw`), the sampler of every diagram
they published.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from counting.tasks.registry import host
from counting.tasks.base import Batch, Task, pair_counts, partition_draw, ranks, uniform_int


def _uniform(task, k_perm, k_x, k_c, k_pos, batch, m, k):
    return task.tokens(k_perm, batch, m, k).draw(k_x, 0, task.n)


def _balanced(task, k_perm, k_x, k_c, k_pos, batch, m, k):
    n = task.n
    tokens = task.tokens(k_perm, batch, m, k)
    c_B = uniform_int(k_c, batch, 1, n)
    others_BxN = tokens.draw(k_x, 1, n)
    planted_BxN = ranks(k_pos, batch, n) < c_B[:, None]
    return jnp.where(planted_BxN, tokens.first_B[:, None], others_BxN)


def _partition(task, k_perm, k_x, k_c, k_pos, batch, m, k):
    return partition_draw(k_x, batch, m, k, task.n)


SAMPLERS = {"uniform": _uniform, "balanced": _balanced, "partition": _partition}  # task.sampler -> x_BxN


class Histogram(Task):
    """The histogram task: at each of the n content positions, the count of that position's token in the
    sequence (no tail)."""

    @property
    def answer_positions(self) -> tuple[int, ...]:
        """Every content position (after BOS, when there is one)."""
        lo = int(self.cfg.bos)
        return tuple(range(lo, lo + self.n))

    def _sample(self, key, batch, m, k) -> Batch:
        k_perm, k_x, k_c, k_pos = jax.random.split(key, 4)
        x_BxN = SAMPLERS[self.cfg.sampler](self, k_perm, k_x, k_c, k_pos, batch, m, k)
        return self.batch_of(x_BxN)

    def batch_of(self, x_BxN: jax.Array, q_B: jax.Array | None = None) -> Batch:
        """The framed, labelled batch of content x_BxN (content indices); q_B is not used."""
        batch, n = x_BxN.shape
        count_BxN = pair_counts(x_BxN)
        tokens_BxT = self.frame(x_BxN)
        T = tokens_BxT.shape[1]
        lo = int(self.cfg.bos)
        content_T = (jnp.arange(T) >= lo) & (jnp.arange(T) < lo + n)
        mask_BxT = jnp.broadcast_to(content_T, (batch, T))
        labels_BxT = jnp.zeros((batch, T), jnp.int32).at[:, lo : lo + n].set(count_BxN)
        return Batch(tokens_BxT, labels_BxT, mask_BxT)

    # --- host-side hooks (counting.tasks.base.Task) --------------------------------------

    @host
    @classmethod
    def reads_any_content_position(cls) -> bool:
        """The histogram answers at every content position."""
        return True

    @host
    @classmethod
    def content_labels(cls, counts_BxN):
        """Each position's own count."""
        return counts_BxN

    @host
    def intervention_sites(self, tokens_BxT, labels_BxR, rng):
        """Per sequence the token of a random content position, intervened at the last position
        holding it, and the count read there."""
        B, T = tokens_BxT.shape
        content = self.content_slice()
        j_B = rng.integers(content.start, content.stop, B)
        token_B = tokens_BxT[np.arange(B), j_B]
        p_B = T - 1 - np.argmax((tokens_BxT == token_B[:, None])[:, ::-1], axis=1)  # its last position
        at_SxT = np.eye(T, dtype=bool)[p_B]
        r_B = np.searchsorted(np.asarray(self.answer_positions), p_B)
        return np.arange(B), at_SxT, token_B, labels_BxR[np.arange(B), r_B], r_B
