"""Query Count: n tokens, then the query q (optionally after a separator); answer #q.

The query is always a token of the sequence, so the answer lies in 1..n. `uniform`: tokens
i.i.d. over the sequence's k allowed tokens, the query copied from a random position.
`balanced`: the answer c is drawn uniformly from 1..n first, then c random positions get q
and the rest are drawn from the other k - 1 allowed tokens. `partition`: Behrens et al.'s
random-partition sequences (`tasks.base.partition_draw`), the query copied from a random
position.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from counting.tasks.registry import host
from counting.tasks.base import NUM_SPECIAL, SEP_ID, Batch, Task, partition_draw, ranks, uniform_int


def _at_random_position(key, x_BxN: jax.Array) -> jax.Array:
    B, n = x_BxN.shape
    pick_B = jax.random.randint(key, (B,), 0, n)
    return jnp.take_along_axis(x_BxN, pick_B[:, None], axis=1)[:, 0]


def _uniform(task, k_perm, k_x, k_c, k_pos, batch, m, k):
    x_BxN = task.tokens(k_perm, batch, m, k).draw(k_x, 0, task.n)
    return x_BxN, _at_random_position(k_pos, x_BxN)


def _balanced(task, k_perm, k_x, k_c, k_pos, batch, m, k):
    n = task.n
    tokens = task.tokens(k_perm, batch, m, k)
    q_B = tokens.first_B
    c_B = uniform_int(k_c, batch, 1, n)
    others_BxN = tokens.draw(k_x, 1, n)
    is_q_BxN = ranks(k_pos, batch, n) < c_B[:, None]
    return jnp.where(is_q_BxN, q_B[:, None], others_BxN), q_B


def _partition(task, k_perm, k_x, k_c, k_pos, batch, m, k):
    x_BxN = partition_draw(k_x, batch, m, k, task.n)
    return x_BxN, _at_random_position(k_pos, x_BxN)


SAMPLERS = {"uniform": _uniform, "balanced": _balanced, "partition": _partition}  # task.sampler -> (x_BxN, q_B)


class QueryCount(Task):
    """Query Count: the n content tokens, then the query token (after a separator with query = sep); the answer,
    read at the query, is how many content tokens equal it."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.tail = 2 if cfg.query == "sep" else 1

    def _sample(self, key, batch, m, k) -> Batch:
        k_perm, k_x, k_c, k_pos = jax.random.split(key, 4)
        x_BxN, q_B = SAMPLERS[self.cfg.sampler](self, k_perm, k_x, k_c, k_pos, batch, m, k)
        return self.batch_of(x_BxN, q_B)

    def batch_of(self, x_BxN: jax.Array, q_B: jax.Array | None = None) -> Batch:
        """The framed, labelled batch of content x_BxN and queries q_B (content indices)."""
        batch = x_BxN.shape[0]
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

    # --- host-side hooks (counting.tasks.base.Task) --------------------------------------

    @host
    @classmethod
    def asks_query(cls) -> bool:
        """QC asks for the count of its query token."""
        return True

    @host
    def analysed_positions(self) -> tuple[int, ...]:
        """QC's diagnostics read its answer (query) position."""
        return self.answer_positions

    @host
    def intervention_sites(self, tokens_BxT, labels_BxR, rng):
        """Every sequence, intervened at its last (query) position, with the query token and its count."""
        B, T = tokens_BxT.shape
        at_SxT = np.zeros((B, T), bool)
        at_SxT[:, T - 1] = True
        return np.arange(B), at_SxT, tokens_BxT[:, T - 1], labels_BxR[:, 0], np.zeros(B, int)

    @host
    @classmethod
    def llm_question(cls) -> str:
        """Asks for the count of the query item."""
        return "How many times does the item '{query}' occur in the list?"

    @host
    @classmethod
    def llm_sample(cls, rng, m: int, n: int, sampler: str):
        """`uniform`: items i.i.d. over the pool, the query copied from a random position (answer in
        1..n). `balanced`: the answer c is drawn from 1..n first, c random positions get the query
        and the rest are drawn from the other m - 1 items (m = 1 forces c = n)."""
        if sampler == "uniform" or m == 1:
            x_N = rng.integers(0, m, n)
            q = int(x_N[rng.integers(0, n)])
        else:
            q = int(rng.integers(0, m))
            c = int(rng.integers(1, n + 1))
            others_O = np.delete(np.arange(m), q)
            x_N = others_O[rng.integers(0, m - 1, n)]
            x_N[rng.permutation(n)[:c]] = q
        return x_N, q, int((x_N == q).sum())
