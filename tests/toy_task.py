"""A task defined outside the package, in one file: Count Above, how many of the n content tokens
are greater than the query token. It reuses Query Count's samplers, framing and host hooks and
changes only the label; `register("above", "toy_task:CountAbove")` makes it a choice of task.name
(docs/add-a-task.md walks through it; tests/test_add_a_task.py runs it through the pipeline)."""

import jax
import jax.numpy as jnp

from counting.tasks import NUM_SPECIAL, SEP_ID, Batch
from counting.tasks.qc import QueryCount


class CountAbove(QueryCount):
    """Count Above: the n content tokens, then the query q; the answer, read at the query, is
    how many content tokens are greater than q (0..n - 1 under the samplers, which plant q)."""

    def batch_of(self, x_BxN: jax.Array, q_B: jax.Array | None = None) -> Batch:
        """The framed, labelled batch of content x_BxN and queries q_B (content indices)."""
        batch = x_BxN.shape[0]
        above_B = (x_BxN > q_B[:, None]).sum(-1).astype(jnp.int32)
        tail = [q_B[:, None] + NUM_SPECIAL]
        if self.cfg.query == "sep":
            tail.insert(0, jnp.full((batch, 1), SEP_ID, jnp.int32))
        tokens_BxT = self.frame(x_BxN, jnp.concatenate(tail, axis=1))
        T = tokens_BxT.shape[1]
        mask_BxT = jnp.broadcast_to(jnp.arange(T) == T - 1, (batch, T))
        return Batch(tokens_BxT, jnp.where(mask_BxT, above_B[:, None], 0), mask_BxT)
