"""Most Frequent Element with d = m + 1 (claim 6, the upper bound d = O(m)), in two layers.

Layer 1 is the histogram block of `histogram` at every position (embedding one-hot in the
first m coordinates, uniform attention, hidden unit ReLU(x_i - 1)); its MLP writes the
position's own count kappa_p = H_{t_p} (exactly, T times H_t/T) onto the extra coordinate
m. BOS, if present, gets kappa = 0.

Layer 2 takes the maximum with attention: the last position queries with the constant
S0 = 1 + n/T (the sum of its first m coordinates, the same at every content position) and
every key is kappa_p, so the logits are beta * kappa_p. The value kappa_p is written, divided
by m, onto each of the first m coordinates, so their sum becomes S0 + M_hat with M_hat the
attention average of the counts: M up to the leak
sum_p w_p (M - kappa_p) <= T exp(-beta) (the top count beats every other by at least 1),
so beta > ln(2T) keeps it under 1/2. Layer 2's MLP is zero; the quadratic head reads
r = (sum of the first m coordinates) - S0.

Why two layers: one uniform-attention layer leaves only (t_last, hist/T) in the residual, and
the answer max_i hist_i is then a function a one-hidden-layer MLP must compute. Separable
readouts sum_i phi(hist_i) decode the maximum only with weights exponential in n (e.g.
phi(h) = lambda^h with lambda > m); we know of no one-layer construction with d = O(m)
and weights polynomial in n, so this suite uses L = 2 (weights: T in layer 1, beta ~ ln T
in layer 2, n in the head).
"""

from __future__ import annotations

import math

import numpy as np

from counting.config import ModelConfig, TaskConfig
from counting.tasks import NUM_SPECIAL, class_of, make_task
from counting.tasks.mfe import MostFrequent
from counting.theory.histogram import histogram_block, one_hot_embedding
from counting.theory.weights import Construction, blank, linear_readout, put, quadratic_head


def default_beta(T: int) -> float:
    """Leak at most T exp(-beta) = 1/8."""
    return math.log(8.0 * T)


def mfe_solution(task: TaskConfig, beta: float | None = None) -> Construction:
    """Exact MFE (with or without BOS) for any n, with d = m + 1, L = 2, w = m."""
    if class_of(task.name) is not MostFrequent:
        raise ValueError(f"mfe_solution solves mfe, not {task.name!r}")
    m, n = task.m, task.n
    d, kappa = m + 1, m
    T = make_task(task).length
    beta = default_beta(T) if beta is None else beta
    model = blank(ModelConfig(d=d, L=2, H=1, w=m, pos="none", causal=False, norm="none"), task)
    put(model.embed.embedding, one_hot_embedding(m + NUM_SPECIAL, m, d))
    first, second = model.blocks[0], model.blocks[1]
    histogram_block(first, m, d, T)
    Wv = np.zeros((d, d))
    Wv[:m, :m] = np.eye(m)  # layer 1 copies only the token coordinates; kappa stays clean
    put(first.attn.value.kernel, Wv)
    W2 = np.zeros((m, d))
    W2[:, kappa] = T
    put(first.mlp.out.kernel, W2)
    S0 = 1.0 + n / T
    Wq, Wk, Wv2, Wo = (np.zeros((d, d)) for _ in range(4))
    Wq[:m, 0] = beta * math.sqrt(d) / S0
    Wk[kappa, 0] = 1.0
    Wv2[kappa, 0] = 1.0
    Wo[0, :m] = 1.0 / m
    attn = second.attn
    for param, W in ((attn.query.kernel, Wq), (attn.key.kernel, Wk), (attn.value.kernel, Wv2), (attn.out.kernel, Wo)):
        put(param, W)
    r_D = np.zeros(d)
    r_D[:m] = 1.0
    quadratic_head(model, r_D, -S0, n)
    return Construction("mfe", task, model, linear_readout(r_D, -S0))
