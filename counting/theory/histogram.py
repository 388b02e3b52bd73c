"""The histogram solution (claim 2): exact counting for every n with d >= m, tight at d = m.

Weights of a one-layer `Transformer` (H = 1, w = m, no norm, no positions, no mask):

- embedding: content token i -> e_i (one-hot in the first m coordinates), BOS and SEP -> 0;
- attention: query = key = 0, so every position attends uniformly to all T positions;
  value = out = identity. At a position holding token t the residual becomes
  x = e_t + hist/T, where hist_i counts token i over all T positions (the position itself
  included), so x_t = 1 + H_t/T >= 1 + 1/T while x_i = H_i/T <= (T-1)/T < 1 for i != t;
- MLP: hidden_i = ReLU(x_i - 1) (width m) is H_t/T on the position's own token and 0
  elsewhere; the output writes Lambda = T/m times it onto every one of the m coordinates.
  The sum of the first m coordinates of e_t + hist/T is the constant 1 + N/T (N = number of
  content-token positions), so after the MLP that sum is an affine function of H_t, and the
  output bias makes it exactly the answer (H_t - 1 for QC, whose query position holds q
  itself; H_t for the histogram task);
- head: the quadratic head on r = sum of the first m coordinates decodes r to the nearest
  count.

No coordinate beyond the m token directions is needed, so d = m suffices; extra coordinates
(d > m) stay zero. The largest weight is Lambda = T/m (plus the head's n), linear in n.
"""

from __future__ import annotations

import numpy as np

from counting.config import ModelConfig, TaskConfig
from counting.tasks import NUM_SPECIAL, class_of, make_task
from counting.theory.weights import Construction, blank, linear_readout, put, quadratic_head


def content_positions(task: TaskConfig) -> int:
    """N: how many of the T positions hold a content token (with a query: the n tokens and the query)."""
    return task.n + int(class_of(task.name).asks_query())


def one_hot_embedding(V: int, m: int, d: int) -> np.ndarray:
    """E_VxD: content token i -> e_i, special tokens (BOS, SEP) -> 0."""
    E = np.zeros((V, d))
    E[NUM_SPECIAL + np.arange(m), np.arange(m)] = 1.0
    return E


def histogram_block(block, m: int, d: int, T: int) -> None:
    """Uniform attention adds hist/T; the MLP's hidden layer extracts H_t/T (width m)."""
    I_DxD = np.eye(d)
    put(block.attn.value.kernel, I_DxD)
    put(block.attn.out.kernel, I_DxD)
    W1 = np.zeros((d, block.mlp.hidden.kernel[...].shape[1]))
    W1[np.arange(m), np.arange(m)] = 1.0
    b1 = np.zeros(W1.shape[1])
    b1[:m] = -1.0
    put(block.mlp.hidden.kernel, W1)
    put(block.mlp.hidden.bias, b1)


def histogram_solution(task: TaskConfig, d: int | None = None) -> Construction:
    """Exact QC (query last or after a separator, with or without BOS) or histogram-task
    counting for any n, with d >= m (default d = m)."""
    cls = class_of(task.name)
    if not (cls.asks_query() or cls.reads_any_content_position()):
        raise ValueError(f"histogram_solution solves a query count or a count at every position, not {task.name!r}")
    m, n = task.m, task.n
    d = m if d is None else d
    if d < m:
        raise ValueError(f"the histogram solution needs d >= m, got d={d} < m={m}")
    T = make_task(task).length
    model = blank(ModelConfig(d=d, L=1, H=1, w=m, pos="none", causal=False, norm="none"), task)
    put(model.embed.embedding, one_hot_embedding(m + NUM_SPECIAL, m, d))
    block = model.blocks[0]
    histogram_block(block, m, d, T)
    W2 = np.zeros((m, d))
    W2[:, :m] = T / m  # Lambda: every hidden unit writes onto all m token coordinates
    self_count = int(cls.asks_query())  # the QC answer position holds q itself
    b2 = np.zeros(d)
    b2[:m] = -(1.0 + content_positions(task) / T + self_count) / m
    put(block.mlp.out.kernel, W2)
    put(block.mlp.out.bias, b2)
    r_D = np.zeros(d)
    r_D[:m] = 1.0
    quadratic_head(model, r_D, 0.0, n)
    return Construction(f"histogram_{task.name}", task, model, linear_readout(r_D, 0.0))
