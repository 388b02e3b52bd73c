"""Query Count: n tokens, then the query q (optionally after a separator); answer #q.

The query is always a token of the sequence, so the answer lies in 1..n. `uniform`: tokens
i.i.d. over the sequence's k allowed tokens, the query copied from a random position.
`balanced`: the answer c is drawn uniformly from 1..n first, then c random positions get q
and the rest are drawn from the other k - 1 allowed tokens.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from counting.tasks.base import NUM_SPECIAL, SEP_ID, Batch, Task, ranks, uniform_int


class QueryCount(Task):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.tail = 2 if cfg.query == "sep" else 1

    def _sample(self, key, batch, m, k) -> Batch:
        n = self.n
        k_perm, k_x, k_c, k_pos = jax.random.split(key, 4)
        tokens = self.tokens(k_perm, batch, m, k)
        if self.cfg.sampler == "uniform":
            x_BxN = tokens.draw(k_x, 0, n)
            pick_B = jax.random.randint(k_pos, (batch,), 0, n)
            q_B = jnp.take_along_axis(x_BxN, pick_B[:, None], axis=1)[:, 0]
        else:
            q_B = tokens.first_B
            c_B = uniform_int(k_c, batch, 1, n)
            others_BxN = tokens.draw(k_x, 1, n)
            is_q_BxN = ranks(k_pos, batch, n) < c_B[:, None]
            x_BxN = jnp.where(is_q_BxN, q_B[:, None], others_BxN)
        count_B = (x_BxN == q_B[:, None]).sum(-1).astype(jnp.int32)
        tail = [q_B[:, None] + NUM_SPECIAL]
        if self.cfg.query == "sep":
            tail.insert(0, jnp.full((batch, 1), SEP_ID, jnp.int32))
        tokens_BxT = self.frame(x_BxN, jnp.concatenate(tail, axis=1))
        T = tokens_BxT.shape[1]
        at_query_T = jnp.arange(T) == T - 1
        mask_BxT = jnp.broadcast_to(at_query_T, (batch, T))
        labels_BxT = jnp.where(mask_BxT, count_B[:, None], 0)
        return Batch(tokens_BxT, labels_BxT, mask_BxT)
