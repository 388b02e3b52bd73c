"""Most Frequent Element: n tokens; the answer (read at the last token) is the count of the
most frequent token, not its identity.

`uniform`: tokens i.i.d. over the k allowed tokens. `balanced`: the answer c is drawn
uniformly over its feasible range ceil(n/k)..n first; one token gets c copies and the other
n - c positions are drawn without replacement from a pool holding c copies of each of the
other k - 1 tokens (so no other token exceeds c; ties at c are allowed and do not change the
answer). `partition`: Behrens et al.'s random-partition sequences (`tasks.base.partition_draw`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from counting.tasks.registry import host
from counting.tasks.base import (
    NUM_SPECIAL, Batch, Task, allowed_tokens, distinct_rank, draw, floyd, pair_counts, partition_draw, ranks, uniform_int,
)

# task.sampler -> (keys of the permutation, draws, count, pool and positions; batch, m, k, n) -> x_BxN
SAMPLERS = {
    "uniform": lambda kp, kx, kc, kpool, kpos, B, m, k, n: draw(kx, allowed_tokens(kp, B, m, n + 1), 0, k, n),
    "balanced": lambda kp, kx, kc, kpool, kpos, B, m, k, n: planted_max(
        uniform_int(kc, B, jnp.broadcast_to((n + k - 1) // k, (B,)), n), kpool, kpos, allowed_tokens(kp, B, m, n + 1), k, n),
    "partition": lambda kp, kx, kc, kpool, kpos, B, m, k, n: partition_draw(kx, B, m, k, n),
}


class MostFrequent(Task):
    """Most Frequent Element: the count of the most frequent token of the n content tokens, read at the last
    position (no tail)."""

    def _sample(self, key, batch, m, k) -> Batch:
        n = self.n
        k_perm, k_x, k_c, k_pool, k_pos = jax.random.split(key, 5)
        x_BxN = SAMPLERS[self.cfg.sampler](k_perm, k_x, k_c, k_pool, k_pos, batch, m, k, n)
        return self.batch_of(x_BxN)

    def batch_of(self, x_BxN: jax.Array, q_B: jax.Array | None = None) -> Batch:
        """The framed, labelled batch of content x_BxN (content indices); q_B is not used."""
        batch = x_BxN.shape[0]
        answer_B = pair_counts(x_BxN).max(-1)
        tokens_BxT = self.frame(x_BxN)
        T = tokens_BxT.shape[1]
        mask_BxT = jnp.broadcast_to(jnp.arange(T) == T - 1, (batch, T))
        labels_BxT = jnp.where(mask_BxT, answer_B[:, None], 0)
        return Batch(tokens_BxT, labels_BxT, mask_BxT)

    # --- host-side hooks (counting.tasks.base.Task) --------------------------------------

    @host
    @classmethod
    def content_labels(cls, counts_BxN):
        """The largest count of the row, read at the end."""
        return counts_BxN.max(1, keepdims=True)

    @host
    def intervention_sites(self, tokens_BxT, labels_BxR, rng):
        """The sequences with a unique most frequent token t, intervened at every position holding t,
        with t's count (the label)."""
        x_BxN = tokens_BxT[:, self.content_slice()]
        ids_M = np.arange(self.cfg.m) + NUM_SPECIAL
        hist_BxM = (x_BxN[:, :, None] == ids_M[None, None, :]).sum(1)
        top_B = hist_BxM.max(1)
        unique_B = (hist_BxM == top_B[:, None]).sum(1) == 1
        seq_S = np.flatnonzero(unique_B)
        token_S = ids_M[hist_BxM[seq_S].argmax(1)]
        at_SxT = tokens_BxT[seq_S] == token_S[:, None]
        return seq_S, at_SxT, token_S, labels_BxR[seq_S, 0], np.zeros(len(seq_S), int)

    @host
    @classmethod
    def llm_question(cls) -> str:
        """Asks for the count of the most frequent item."""
        return "How many times does the most frequent item occur in the list?"

    @host
    @classmethod
    def llm_sample(cls, rng, m: int, n: int, sampler: str):
        """`uniform`: items i.i.d. `balanced`: c is drawn from ceil(n/m)..n; one item gets c copies
        and the other n - c positions are drawn without replacement from c copies of each of the
        other m - 1 items, so no item exceeds c."""
        if sampler == "uniform" or m == 1:
            x_N = rng.integers(0, m, n)
        else:
            c = int(rng.integers(-(-n // m), n + 1))
            top = int(rng.integers(0, m))
            others_O = np.delete(np.arange(m), top)
            pool_P = np.repeat(others_O, c)  # c copies of each other item
            x_N = np.concatenate([np.full(c, top), rng.choice(pool_P, n - c, replace=False)])
            x_N = x_N[rng.permutation(n)]
        return x_N, None, int(np.bincount(x_N, minlength=m).max())


def planted_max(c_B: jax.Array, k_pool, k_pos, tok_BxR, k, n: int) -> jax.Array:
    """x_BxN whose most frequent token (tok_BxR[:, 0]) has count c_B, c_B in ceil(n/k)..n."""
    B = tok_BxR.shape[0]
    # The pool holds c copies of each of the other k - 1 allowed tokens: pool slot s is a copy
    # of other token s // c. Floyd draws n - c distinct pool slots into slots c..n-1 (slots
    # 0..c-1 are -1), so no other token exceeds c copies.
    pool_BxN = floyd(k_pool, B, (k - 1) * c_B, n - c_B, n)
    other_BxN = jnp.where(pool_BxN >= 0, pool_BxN // c_B[:, None], jnp.iinfo(jnp.int32).max)  # unused: last
    # Distinct other tokens take the allowed tokens 1, 2, ... in order (see `draw`).
    picked_BxN = jnp.take_along_axis(tok_BxR, 1 + distinct_rank(other_BxN), axis=1, mode="clip")
    slot_BxN = ranks(k_pos, B, n)  # position -> slot: slots < c hold the planted token
    others_at_BxN = jnp.take_along_axis(picked_BxN, slot_BxN, axis=1)
    return jnp.where(slot_BxN < c_B[:, None], tok_BxR[:, :1], others_at_BxN)
