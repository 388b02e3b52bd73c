"""Most Frequent Element: n tokens; the answer (read at the last token) is the count of the
most frequent token, not its identity.

`uniform`: tokens i.i.d. over the k allowed tokens. `balanced`: the answer c is drawn
uniformly over its feasible range ceil(n/k)..n first; one token gets c copies and the other
n - c positions are filled from a pool holding c copies of each of the other k - 1 tokens
(so no other token exceeds c; ties at c are allowed and do not change the answer).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from counting.tasks.base import Batch, Task, allowed_tokens, column_uniform, draw, pair_counts, ranks, uniform_int


class MostFrequent(Task):
    def _sample(self, key, batch, m, k, M) -> Batch:
        n = self.n
        k_perm, k_x, k_c, k_pool, k_pos = jax.random.split(key, 5)
        perm_BxM = allowed_tokens(k_perm, batch, m, M)
        if self.cfg.sampler == "uniform":
            x_BxN = draw(k_x, perm_BxM, 0, k, n)
        else:
            x_BxN = _planted_max(k_c, k_pool, k_pos, perm_BxM, k, n)
        answer_B = pair_counts(x_BxN).max(-1)
        tokens_BxT = self.frame(x_BxN)
        T = tokens_BxT.shape[1]
        mask_BxT = jnp.broadcast_to(jnp.arange(T) == T - 1, (batch, T))
        labels_BxT = jnp.where(mask_BxT, answer_B[:, None], 0)
        return Batch(tokens_BxT, labels_BxT, mask_BxT)


def _planted_max(k_c, k_pool, k_pos, perm_BxM, k, n: int) -> jax.Array:
    B, M = perm_BxM.shape
    c_min = (n + k - 1) // k
    c_B = uniform_int(k_c, B, jnp.broadcast_to(c_min, (B,)), n)
    # Pool slot (i, r): the r-th copy of the i-th other token (perm index i + 1).
    i_P = jnp.repeat(jnp.arange(M - 1), n)
    r_P = jnp.tile(jnp.arange(n), M - 1)
    valid_BxP = (i_P[None, :] + 1 < k) & (r_P[None, :] < c_B[:, None])
    noise_BxP = column_uniform(k_pool, B, M - 1, n).reshape(B, (M - 1) * n)  # prefix-stable in M
    priority_BxP = jnp.where(valid_BxP, noise_BxP, -1.0)
    _, pick_BxN = jax.lax.top_k(priority_BxP, n)
    others_BxN = jnp.take_along_axis(perm_BxM, i_P[pick_BxN] + 1, axis=1)
    slot_BxN = ranks(k_pos, B, n)  # position -> slot: slots < c hold the planted token
    others_at_BxN = jnp.take_along_axis(others_BxN, jnp.clip(slot_BxN - c_B[:, None], 0, n - 1), axis=1)
    return jnp.where(slot_BxN < c_B[:, None], perm_BxM[:, :1], others_at_BxN)
