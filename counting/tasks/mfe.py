"""Most Frequent Element: n tokens; the answer (read at the last token) is the count of the
most frequent token, not its identity.

`uniform`: tokens i.i.d. over the k allowed tokens. `balanced`: the answer c is drawn
uniformly over its feasible range ceil(n/k)..n first; one token gets c copies and the other
n - c positions are drawn without replacement from a pool holding c copies of each of the
other k - 1 tokens (so no other token exceeds c; ties at c are allowed and do not change the
answer).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from counting.tasks.base import (
    Batch, Task, allowed_tokens, distinct_rank, draw, floyd, pair_counts, ranks, uniform_int,
)


class MostFrequent(Task):
    def _sample(self, key, batch, m, k) -> Batch:
        n = self.n
        k_perm, k_x, k_c, k_pool, k_pos = jax.random.split(key, 5)
        tok_BxR = allowed_tokens(k_perm, batch, m, n + 1)
        if self.cfg.sampler == "uniform":
            x_BxN = draw(k_x, tok_BxR, 0, k, n)
        else:
            x_BxN = _planted_max(k_c, k_pool, k_pos, tok_BxR, k, n)
        answer_B = pair_counts(x_BxN).max(-1)
        tokens_BxT = self.frame(x_BxN)
        T = tokens_BxT.shape[1]
        mask_BxT = jnp.broadcast_to(jnp.arange(T) == T - 1, (batch, T))
        labels_BxT = jnp.where(mask_BxT, answer_B[:, None], 0)
        return Batch(tokens_BxT, labels_BxT, mask_BxT)


def _planted_max(k_c, k_pool, k_pos, tok_BxR, k, n: int) -> jax.Array:
    B = tok_BxR.shape[0]
    c_min = (n + k - 1) // k
    c_B = uniform_int(k_c, B, jnp.broadcast_to(c_min, (B,)), n)
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
