"""Training distributions made of parts: two-token sequences (`task.sampler=pairs`) and weighted
mixtures of samplers (`task.sampler=mixture`), for every task.

`pairs`: the query (or planted token) a and one other token b, ordered uniformly among the
pairs that are not held out (counting.tasks.pairs: with `task.holdout_pairs` > 0, held-out pairs
never occur together; training and validation pairs do), a at c positions and b at the other n - c, the split c uniform on
1..n-1, the positions shuffled. QC asks for a; MFE's answer max(c, n - c) has its near-ties at
c = n/2; the histogram labels c and n - c. A row whose `CANDIDATES` draws of a pair all fall
on held-out pairs (probability below 0.2^32 at holdout 0.2) holds a alone (c = n): a
one-token sequence, never a forbidden pair.

`mixture`: each sequence first draws its component from `task.weights`, then is drawn by that
component (`task.mixture`: any sampler of the task, or pairs), with the component's own keys.
Every component samples the whole batch and rows take theirs: the cost of a step's sampling
grows with the number of components, its forward and backward do not.

Held-out pairs stay out of *every* component: a sequence of any sampler that holds exactly two
tokens forming a held-out pair (`balanced` draws one whenever the n - c other
positions happen to share a token) has its second token (the one not at its first position)
renamed, everywhere in the row, the query included, to a partner of the first that is not held
out, the first of `CANDIDATES` distinct tokens in random order that is one (all of them when m <= 32;
`keep_out`). Renaming a token changes no count, so the split stays; only the identity of the
other token moves. Where the first token has no such partner (possible at small m) the row
becomes that token alone. The row is relabelled by the task either way.

`mixed(cls)` is the task class `cls` with this sampling; `counting.tasks.make_task` builds it
for these two samplers, so the tasks themselves stay as they are.
"""

from __future__ import annotations

import dataclasses
from functools import cache

import jax
import jax.numpy as jnp

from counting.tasks.pairs import HELDOUT, pair_set
from counting.tasks.base import NUM_SPECIAL, Batch, Task, allowed_tokens, ranks, uniform_int

CANDIDATES = 32  # pair draws per row (and distinct partners tried by keep_out) before a fallback


def two_tokens(key, batch: int, m, n: int, fraction: float, seed: int) -> tuple[jax.Array, jax.Array]:
    """(x_BxN, a_B): two-token sequences over the pairs of [0, m) not held out (see the module)."""
    k_a, k_b, k_c, k_pos = jax.random.split(key, 4)
    a_BxR = jax.random.randint(k_a, (batch, CANDIDATES), 0, m)
    b_BxR = jax.random.randint(k_b, (batch, CANDIDATES), 0, m - 1)
    b_BxR = b_BxR + (b_BxR >= a_BxR)
    ok_BxR = pair_set(a_BxR, b_BxR, m, fraction, seed, xp=jnp) != HELDOUT
    first_B = jnp.argmax(ok_BxR, axis=1)
    pick = lambda x_BxR: jnp.take_along_axis(x_BxR, first_B[:, None], axis=1)[:, 0]
    a_B, b_B, found_B = pick(a_BxR), pick(b_BxR), ok_BxR.any(1)
    c_B = jnp.where(found_B, uniform_int(k_c, batch, 1, n - 1), n)
    is_a_BxN = ranks(k_pos, batch, n) < c_B[:, None]
    return jnp.where(is_a_BxN, a_B[:, None], b_B[:, None]), a_B


def keep_out(key, task: Task, batch: Batch, m, fraction: float, seed: int) -> Batch:
    """The batch with every two-token sequence over a held-out pair given a pair that is not
    held out instead (its second token renamed; see the module), relabelled by the task."""
    tokens_BxT = batch.tokens_BxT
    x_BxN = tokens_BxT[:, task.content_slice()] - NUM_SPECIAL
    first_B = x_BxN[:, 0]
    second_B = jnp.where(x_BxN != first_B[:, None], x_BxN, -1).max(1)
    two_B = (second_B >= 0) & ((x_BxN == first_B[:, None]) | (x_BxN == second_B[:, None])).all(1)
    bad_B = two_B & (pair_set(first_B, jnp.maximum(second_B, 0), m, fraction, seed, xp=jnp) == HELDOUT)
    cand_BxR = allowed_tokens(key, x_BxN.shape[0], m, CANDIDATES)  # distinct, in random order
    ok_BxR = (cand_BxR >= 0) & (cand_BxR != first_B[:, None]) & \
        (pair_set(first_B[:, None], jnp.maximum(cand_BxR, 0), m, fraction, seed, xp=jnp) != HELDOUT)
    new_B = jnp.where(ok_BxR.any(1), jnp.take_along_axis(cand_BxR, jnp.argmax(ok_BxR, axis=1)[:, None], axis=1)[:, 0],
                      first_B)  # no training partner: the row becomes the first token alone
    rename = lambda t: jnp.where(bad_B[:, None] & (t == second_B[:, None]), new_B[:, None], t)
    fixed = task.batch_of(rename(x_BxN), rename(tokens_BxT[:, -1:] - NUM_SPECIAL)[:, 0])
    return Batch(*(jnp.where(bad_B[:, None], f, b) for f, b in zip(fixed, batch)))


class Mixed:
    """Sampling of `pairs` and `mixture` on top of a task class `base` (next in the MRO)."""

    base: type[Task]

    def __init__(self, cfg):
        super().__init__(cfg)
        plain = lambda s: self.base(dataclasses.replace(cfg, sampler=s, mixture=(), weights=()))
        self.parts = [(s, None if s == "pairs" else plain(s)) for s, _ in cfg.components]
        self.probs = jnp.asarray([w for _, w in cfg.components], jnp.float32)

    def _pairs(self, key, batch, m) -> Batch:
        t = self.cfg
        x_BxN, a_B = two_tokens(key, batch, m, self.n, t.holdout_pairs, t.pairs_seed)
        return self.batch_of(x_BxN, a_B)

    def _sample(self, key, batch, m, k) -> Batch:
        k_pick, k_keep, *keys = jax.random.split(key, len(self.parts) + 2)
        comp_B = jax.random.categorical(k_pick, jnp.log(self.probs), shape=(batch,))
        out = None
        for j, key_j in enumerate(keys):
            part = self._part(j, key_j, batch, m, k)
            out = part if out is None else Batch(*(jnp.where((comp_B == j)[:, None], p, o) for p, o in zip(part, out)))
        if self.cfg.holdout_pairs > 0:
            out = keep_out(k_keep, self, out, m, self.cfg.holdout_pairs, self.cfg.pairs_seed)
        return out

    def _part(self, j, key, batch, m, k) -> Batch:
        _, task = self.parts[j]
        return self._pairs(key, batch, m) if task is None else task._sample(key, batch, m, k)


@cache
def mixed(cls: type[Task]) -> type[Task]:
    """The task class `cls` sampling with `pairs` or `mixture` (one class per task class)."""
    return type(f"{cls.__name__}Mixed", (Mixed, cls), {"base": cls, "__doc__": f"{cls.__name__} with {Mixed.__doc__}"})
