"""The task protocol every counting task implements, and the token layout they share.

Token ids: 0 is BOS, 1 is the separator, content token i in [0, m) has id i + NUM_SPECIAL.
Keeping the special ids below the content ids lets a cohort pad the embedding table to its
largest m without moving any token of a smaller-m member.

A task samples a `Batch` inside `jit` from a PRNG key. `m` and `k` may be traced scalars
(a cohort vmaps over them), and n, bos and the layout are static. Nothing a sampler draws
depends on the padded vocabulary of a cohort (its largest m), so a cohort member sees exactly
the data it would see trained alone, and one compiled sampler serves every m.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from counting.config import TaskConfig
from counting.runtime.xla import jit_once
from counting.tasks.registry import host

BOS_ID = 0
SEP_ID = 1
NUM_SPECIAL = 2


class Batch(NamedTuple):
    """A task's sample: token ids, count labels and the answer positions, each B x T."""

    tokens_BxT: jax.Array  # int32 token ids
    labels_BxT: jax.Array  # int32 count classes in 0..n, meaningful where mask is true
    mask_BxT: jax.Array  # bool: the answer positions


class Task:
    """Base class: subclasses define `tail` (tokens after the content) and `_sample`."""

    tail: int = 0  # number of positions after the n content tokens

    def __init__(self, cfg: TaskConfig):
        self.cfg = cfg
        self.n = cfg.n
        self.sample_jit = jit_once(self.sample, static_argnums=1)  # (key, batch, m, k): held-out sets

    @property
    def length(self) -> int:
        """T: the full sequence length the model sees."""
        return int(self.cfg.bos) + self.n + self.tail

    @property
    def answer_positions(self) -> tuple[int, ...]:
        """The static positions where answers are read (the last token, unless overridden)."""
        return (self.length - 1,)

    @property
    def num_classes(self) -> int:
        """n + 1: the count classes 0..n."""
        return self.n + 1

    def vocab_size(self, M: int | None = None) -> int:
        """Embedding rows: the content vocabulary (m, or a cohort's largest m, M) plus the
        special tokens."""
        return (self.cfg.m if M is None else M) + NUM_SPECIAL

    def sample(self, key: jax.Array, batch: int, m=None, k=None) -> Batch:
        """Samples `batch` sequences; m and k default to the config."""
        m = self.cfg.m if m is None else m
        k = (self.cfg.k_eff if self.cfg.k is not None else m) if k is None else k
        m = jnp.asarray(m, jnp.int32)
        k = jnp.minimum(jnp.asarray(k, jnp.int32), m)
        return self._sample(key, batch, m, k)

    def _sample(self, key, batch, m, k) -> Batch:
        raise NotImplementedError

    def batch_of(self, x_BxN: jax.Array, q_B: jax.Array | None = None) -> Batch:
        """The framed, labelled batch of given content (and, for QC, queries): what the
        samplers end with, and what structured test families (counting.tasks.families) are made of."""
        raise NotImplementedError

    def tokens(self, key, batch: int, m, k) -> "Tokens":
        """The tokens a sequence may use. With task.k unset (k = m, the default) every token
        is allowed and sampling is a few uniform draws; with task.k set, each sequence first
        draws its own k distinct tokens (`allowed_tokens`)."""
        if self.cfg.k is None:
            first_B = uniform_int(key, batch, 0, m - 1)
            return Tokens(first_B, lambda key_x, lo, n: draw_all(key_x, first_B, lo, m, n))
        tok_BxR = allowed_tokens(key, batch, m, self.n + 1)
        return Tokens(tok_BxR[:, 0], lambda key_x, lo, n: draw(key_x, tok_BxR, lo, k, n))

    def eval_set(self, m=None, k=None) -> Batch:
        """The fixed held-out set, drawn from the task's own evaluation seed."""
        return self.sample_jit(jax.random.PRNGKey(self.cfg.eval_seed), self.cfg.eval_size, m, k)

    def frame(self, content_BxN: jax.Array, tail_BxR: jax.Array | None = None) -> jax.Array:
        """Content token indices -> ids, with BOS in front and the tail behind."""
        B = content_BxN.shape[0]
        parts = []
        if self.cfg.bos:
            parts.append(jnp.full((B, 1), BOS_ID, jnp.int32))
        parts.append(content_BxN.astype(jnp.int32) + NUM_SPECIAL)
        if tail_BxR is not None:
            parts.append(tail_BxR.astype(jnp.int32))
        return jnp.concatenate(parts, axis=1)

    def content_slice(self) -> slice:
        """The positions of the n content tokens (after BOS, when there is one)."""
        start = int(self.cfg.bos)
        return slice(start, start + self.n)

    # --- host-side hooks: what the theory, inspection, debugger and LLM probe ask of a task ----
    # (numpy, never inside a training step; `@host` keeps them out of the numerics fingerprint)

    @host
    @classmethod
    def asks_query(cls) -> bool:
        """Whether a sequence carries a query token (after the content) whose count is the answer."""
        return False

    @host
    @classmethod
    def reads_any_content_position(cls) -> bool:
        """Whether an answer is read at every content position (a reader picks one), not only at the end."""
        return False

    @host
    @classmethod
    def content_labels(cls, counts_BxN):
        """labels_BxR from counts_BxN (how often each content position's token occurs in its row), for
        a task without a query: the labels at its answer positions (counting.theory.sequences)."""
        raise NotImplementedError(f"{cls.__name__} labels its sequences from a query (asks_query)")

    @host
    def analysed_positions(self) -> tuple[int, ...]:
        """The positions the diagnostics read (counting.inspect.trace): every content position."""
        s = self.content_slice()
        return tuple(range(s.start, s.stop))

    @host
    def intervention_sites(self, tokens_BxT, labels_BxR, rng):
        """The sites of the causal tests (counting.inspect.interventions.Sites): (seq_S, at_SxT,
        token_S, c_S, r_S), per site its sequence, the positions whose counting-layer output
        changes, the token whose count c is changed (its id), c itself (the label read) and the
        answer read (an index into answer_positions). numpy in, numpy out."""
        raise NotImplementedError(f"{type(self).__name__} defines no intervention sites")

    @host
    @classmethod
    def llm_question(cls) -> str | None:
        """The LLM probe's question about a list ('{query}' stands for the query item), or None
        when the task has no prompt form (counting.llm)."""
        return None

    @host
    @classmethod
    def llm_sample(cls, rng, m: int, n: int, sampler: str):
        """One LLM prompt's content, like the training sampler (`uniform` or `balanced`): (x_N item
        indices into a pool of m items, the query index or None, the answer). numpy only."""
        raise NotImplementedError(f"{cls.__name__} has no LLM prompt form")


# --- sampling helpers shared by the tasks ------------------------------------------------


class Tokens(NamedTuple):
    """A batch's allowed tokens: `first_B` (the query or planted token of each sequence) and
    `draw(key, lo, n)` -> x_BxN, tokens i.i.d. over the allowed ones (lo = 1: all but first)."""

    first_B: jax.Array
    draw: Callable


def draw_all(key, first_B: jax.Array, lo: int, m, n: int) -> jax.Array:
    """x_BxN i.i.d. uniform over [0, m) (lo = 0) or over [0, m) without first_B (lo = 1)."""
    B = first_B.shape[0]
    if lo == 0:
        return jax.random.randint(key, (B, n), 0, m)
    x_BxN = jax.random.randint(key, (B, n), 0, m - 1)
    return x_BxN + (x_BxN >= first_B[:, None])


SORT_ABOVE = 256  # above this many items, rank by sorting; below, by pairwise comparison


def ranks_of(noise_BxM: jax.Array) -> jax.Array:
    """rank_BxM: the position of each entry in its row's ascending order (ties by index).

    For short rows, counting pairwise comparisons is several times faster than XLA's sort on
    the CPU and vectorises over cohorts; long rows fall back to argsort.
    """
    M = noise_BxM.shape[1]
    if M > SORT_ABOVE:
        order_BxM = jnp.argsort(noise_BxM, axis=-1)
        return inverse_permutation(order_BxM)
    idx_M = jnp.arange(M)
    u_Bx1xM, u_BxMx1 = noise_BxM[:, None, :], noise_BxM[:, :, None]
    before_BxMxM = (u_Bx1xM < u_BxMx1) | ((u_Bx1xM == u_BxMx1) & (idx_M[None, None, :] < idx_M[None, :, None]))
    return before_BxMxM.sum(-1).astype(jnp.int32)


def inverse_permutation(perm_BxM: jax.Array) -> jax.Array:
    """inv_BxM: per row, the inverse of the permutation perm_BxM (inv[perm[i]] = i)."""
    B, M = perm_BxM.shape
    rows_Bx1 = jnp.arange(B)[:, None]
    return jnp.zeros((B, M), jnp.int32).at[rows_Bx1, perm_BxM].set(jnp.arange(M, dtype=jnp.int32)[None, :])


def floyd(key, batch: int, U, S, R: int) -> jax.Array:
    """ids_BxR: S distinct ids drawn uniformly from [0, U) (Floyd's algorithm), -1 elsewhere.

    U and S may be traced (per row, or per cohort member) with S <= min(R, U); R is static.
    R steps of a `fori_loop`, each O(R) and vectorised over rows: the cost does not depend
    on U. The order of the ids is not uniform; shuffle them where it matters.
    """
    U = jnp.broadcast_to(jnp.asarray(U, jnp.int32), (batch,))
    S = jnp.broadcast_to(jnp.asarray(S, jnp.int32), (batch,))

    def step(i, chosen_BxR):  # the active steps are the last S: j runs over U - S .. U - 1
        j_B = U - R + i
        t_B = jax.random.randint(jax.random.fold_in(key, i), (batch,), 0, jnp.maximum(j_B, 0) + 1)
        seen_B = (chosen_BxR == t_B[:, None]).any(-1)
        pick_B = jnp.where(i >= R - S, jnp.where(seen_B, j_B, t_B), -1)
        return chosen_BxR.at[:, i].set(pick_B)

    return jax.lax.fori_loop(0, R, step, jnp.full((batch, R), -1, jnp.int32))


def allowed_tokens(key, batch: int, m, R: int) -> jax.Array:
    """tok_BxR: per sequence, min(R, m) distinct content tokens of [0, m) in uniformly random
    order (the first entries of a random order of the vocabulary; R = n + 1 suffices, as no
    sequence uses more distinct tokens); entries past m, when m < R, are never used.

    Nothing here depends on a cohort's padded vocabulary, so a cohort member sees exactly the
    data it would see alone, and the cost grows with n, not with the vocabulary.
    """
    k_set, k_order = jax.random.split(key)
    chosen_BxR = floyd(k_set, batch, m, jnp.minimum(m, R), R)
    noise_BxR = jnp.where(chosen_BxR >= 0, jax.random.uniform(k_order, (batch, R)), 2.0)  # unused last
    return jnp.take_along_axis(chosen_BxR, inverse_permutation(ranks_of(noise_BxR)), axis=1)


def distinct_rank(j_BxN: jax.Array) -> jax.Array:
    """rank_BxN: for each entry, how many distinct values of its row are smaller."""
    N = j_BxN.shape[1]
    eq_BxNxN = j_BxN[:, :, None] == j_BxN[:, None, :]
    earlier_NxN = jnp.arange(N)[None, :] < jnp.arange(N)[:, None]  # [p, p']: p' before p
    first_BxN = ~(eq_BxNxN & earlier_NxN[None]).any(-1)
    smaller_BxNxN = j_BxN[:, None, :] < j_BxN[:, :, None]  # [p, p']: j[p'] < j[p]
    return (smaller_BxNxN & first_BxN[:, None, :]).sum(-1).astype(jnp.int32)


def draw(key, tok_BxR: jax.Array, lo: int, hi, n: int) -> jax.Array:
    """x_BxN: tokens drawn i.i.d. uniformly from the allowed tokens lo..hi-1 (hi may be traced).

    The allowed-token indices j are drawn first; the distinct ones, in increasing order, take
    the entries tok[lo], tok[lo + 1], ...: a uniformly random injection into [0, m), exactly
    as if j indexed a full random order of the vocabulary.
    """
    B = tok_BxR.shape[0]
    j_BxN = jax.random.randint(key, (B, n), lo, hi)
    return jnp.take_along_axis(tok_BxR, lo + distinct_rank(j_BxN), axis=1)


def uniform_int(key, batch: int, lo, hi) -> jax.Array:
    """c_B uniform on lo..hi inclusive (lo may be a per-row array)."""
    return jax.random.randint(key, (batch,), lo, jnp.asarray(hi) + 1).astype(jnp.int32)


def ranks(key, batch: int, n: int) -> jax.Array:
    """rank_BxN: a uniformly random permutation of 0..n-1 per row."""
    return ranks_of(jax.random.uniform(key, (batch, n)))


def partition_counts(key, batch: int, n: int) -> jax.Array:
    """part_BxN: the part sizes of a random integer partition of n per row, in draw order,
    zero-padded (Behrens et al.'s `random_partition`): the first part is uniform on 1..n-1
    (n >= 2), the rest of n is partitioned the same way, a rest of 1 is one part. So every row
    with n >= 2 has at least two parts and no part equals n."""

    def step(i, carry):
        rest_B, part_BxN = carry
        size_B = jnp.where(rest_B >= 2, jax.random.randint(jax.random.fold_in(key, i), (batch,), 1,
                                                          jnp.maximum(rest_B, 2)), rest_B)
        return rest_B - size_B, part_BxN.at[:, i].set(size_B)

    _, part_BxN = jax.lax.fori_loop(0, n, step, (jnp.full((batch,), n, jnp.int32), jnp.zeros((batch, n), jnp.int32)))
    return part_BxN


def partition_draw(key, batch: int, m, k, n: int) -> jax.Array:
    """x_BxN: Behrens et al.'s random-partition sequences. The counts are the parts of a random
    partition of n (`partition_counts`); part j is filled with the j-th of the row's distinct
    random tokens of [0, m) (parts past the k-th, possible only when k is below the number of
    parts, join the k-th token); the positions are shuffled uniformly."""
    k_part, k_tok, k_pos = jax.random.split(key, 3)
    part_BxN = partition_counts(k_part, batch, n)
    tok_BxR = allowed_tokens(k_tok, batch, m, n + 1)
    end_BxN = jnp.cumsum(part_BxN, axis=1)  # slot s belongs to the part j with end[j-1] <= s < end[j]
    slot_N = jnp.arange(n)
    part_of_BxN = (end_BxN[:, None, :] <= slot_N[None, :, None]).sum(-1)
    token_of_BxN = jnp.take_along_axis(tok_BxR, jnp.minimum(part_of_BxN, k - 1), axis=1)
    return jnp.take_along_axis(token_of_BxN, ranks(k_pos, batch, n), axis=1)


def pair_counts(x_BxN: jax.Array) -> jax.Array:
    """count_BxN: how many times each position's token occurs in its sequence."""
    eq_BxNxN = x_BxN[:, :, None] == x_BxN[:, None, :]
    return eq_BxNxN.sum(-1).astype(jnp.int32)
