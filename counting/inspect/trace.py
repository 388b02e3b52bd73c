"""What the diagnostics read from one model on held-out sequences: the counting layer's
(`anatomy`: the first block's) attention weights at the analysed positions, the residual
stream there before that layer's MLP, and the logits at the answer positions.

Analysed positions: QC's answer position (the query); for the histogram task and MFE every
content position (each position's own token plays the query). At position p with token t_p,
`matches` counts the positions (p itself included) holding t_p among all T positions, and
`count` the content positions holding it (the label at an answer position).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from counting.inspect.anatomy import anatomy
from counting.tasks import BOS_ID, NUM_SPECIAL, Task

PROBE_SEQUENCES = 512  # held-out sequences every diagnostic reads (the first of the task's eval set)


@dataclasses.dataclass(frozen=True)
class Trace:
    """What one model read on held-out sequences: the tokens, the analysed positions, the counting layer's
    attention weights and the residual stream there, the logits, labels and mask at the answer positions, and
    the task's m, BOS and the model's mask."""

    tokens_BxT: np.ndarray
    pos_A: np.ndarray  # analysed positions
    att_BxHxAxT: np.ndarray  # first block's attention weights at pos_A
    resid_BxAxD: np.ndarray  # residual at pos_A after the first block's attention, before its MLP
    logits_BxRxC: np.ndarray  # logits at the task's answer positions
    labels_BxR: np.ndarray
    mask_BxR: np.ndarray
    m: int
    bos: bool
    causal: bool

    @property
    def allowed_AxT(self) -> np.ndarray:
        """Which of the T positions each analysed position may attend to (all, or those up to it under a causal
        mask)."""
        T = self.tokens_BxT.shape[1]
        return self.pos_A[:, None] >= np.arange(T)[None, :] if self.causal else np.ones((len(self.pos_A), T), bool)

    @property
    def query_BxA(self) -> np.ndarray:
        """The token at each analysed position (its id): the token whose matches it counts."""
        return self.tokens_BxT[:, self.pos_A]

    @property
    def is_match_BxAxT(self) -> np.ndarray:
        """Whether each position holds the analysed position's token and may be attended from it (p itself
        included)."""
        return (self.tokens_BxT[:, None, :] == self.query_BxA[:, :, None]) & self.allowed_AxT[None]

    @property
    def matches_BxA(self) -> np.ndarray:
        """M: how many positions each analysed position sees holding its token."""
        return self.is_match_BxAxT.sum(-1)

    @property
    def hist_BxM(self) -> np.ndarray:
        """Counts of each content token over the sequence's content positions."""
        content_BxT = self.tokens_BxT >= NUM_SPECIAL
        ids_M = np.arange(self.m) + NUM_SPECIAL
        return ((self.tokens_BxT[:, :, None] == ids_M[None, None, :]) & content_BxT[:, :, None]).sum(1)

    @property
    def count_BxA(self) -> np.ndarray:
        """How many content positions hold each analysed position's token."""
        hist_BxM = self.hist_BxM
        q_BxA = np.clip(self.query_BxA - NUM_SPECIAL, 0, self.m - 1)
        return np.take_along_axis(hist_BxM, q_BxA, axis=1)

    @property
    def is_bos_T(self) -> np.ndarray:
        """Whether each position is the BOS token (position 0, when the task has one)."""
        T = self.tokens_BxT.shape[1]
        return (np.arange(T) == 0) & self.bos & (self.tokens_BxT[0] == BOS_ID)

    @property
    def keys_A(self) -> np.ndarray:
        """How many keys each analysed position may attend to."""
        return self.allowed_AxT.sum(-1)


def analysed_positions(task: Task) -> tuple[int, ...]:
    """The positions the diagnostics read (the task's own: QC's answer position, else every content position)."""
    return task.analysed_positions()


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def _run(graphdef, state, tokens_BxT, pos_A: tuple[int, ...], at_R: tuple[int, ...]):
    model = nnx.merge(graphdef, state)
    parts = anatomy(model)
    x_BxTxD, att_BxHxTxT, v_BxTxHxK = parts.layer0(model, tokens_BxT)
    y_BxTxD = parts.mix(model, att_BxHxTxT, v_BxTxHxK)
    a_A = np.asarray(pos_A)
    resid_BxAxD = x_BxTxD[:, a_A] + y_BxTxD[:, a_A]
    return att_BxHxTxT[:, :, a_A], resid_BxAxD, parts.finish(model, x_BxTxD, y_BxTxD, at_R)


def trace(graphdef, state, task: Task, batch, sequences: int = PROBE_SEQUENCES) -> Trace:
    """Runs the model (graphdef, state) on the first `sequences` of `batch` (the task's
    held-out set, `task.eval_set()`); compiled once per model shape."""
    B = min(sequences, batch.tokens_BxT.shape[0])
    tokens_BxT = jnp.asarray(batch.tokens_BxT[:B])
    pos_A, at_R = analysed_positions(task), task.answer_positions
    att, resid, logits = _run(graphdef, state, tokens_BxT, pos_A, at_R)
    r_R = np.asarray(at_R)
    model_cfg = graphdef_cfg(graphdef, state)
    return Trace(np.asarray(tokens_BxT), np.asarray(pos_A), np.asarray(att, np.float64), np.asarray(resid, np.float64),
                 np.asarray(logits, np.float64), np.asarray(batch.labels_BxT[:B])[:, r_R],
                 np.asarray(batch.mask_BxT[:B])[:, r_R], task.cfg.m, task.cfg.bos, model_cfg.causal)


def graphdef_cfg(graphdef, state):
    """The ModelConfig of the model (graphdef, state)."""
    return nnx.merge(graphdef, state).cfg
