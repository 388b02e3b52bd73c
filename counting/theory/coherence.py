"""Coherence of m unit vectors in R^d (claim 3): the Welch bound, known tight frames, random
vectors and vectors optimised to minimise the coherence.

The coherence of unit vectors e_1..e_m is mu = max_{i != j} |<e_i, e_j>|. For m > d it is
at least the Welch bound sqrt((m - d) / (d (m - 1))), met with equality exactly by
equiangular tight frames (the simplex, m = d + 1; the 6 diagonals of the icosahedron,
d = 3). Real unit vectors with m > d(d + 1)/2 also obey the orthoplex bound mu >= 1/sqrt(d),
which is then the larger of the two.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax


def welch_bound(m: int, d: int) -> float:
    """sqrt((m - d) / (d (m - 1))) for m > d; 0 when m <= d (orthonormal vectors exist)."""
    return math.sqrt((m - d) / (d * (m - 1))) if m > d else 0.0


def orthoplex_bound(m: int, d: int) -> float:
    """1/sqrt(d) when m > d(d + 1)/2 (real vectors), else 0."""
    return 1.0 / math.sqrt(d) if m > d * (d + 1) // 2 else 0.0


def lower_bound(m: int, d: int) -> float:
    """The larger of the Welch and orthoplex bounds: the least coherence m unit vectors in R^d can have."""
    return max(welch_bound(m, d), orthoplex_bound(m, d))


def normalise(E_mxd: np.ndarray) -> np.ndarray:
    """The rows of E_mxd scaled to unit norm (float64)."""
    E = np.asarray(E_mxd, np.float64)
    return E / np.linalg.norm(E, axis=1, keepdims=True)


def coherence(E_mxd: np.ndarray) -> float:
    """max_{i != j} |<e_i, e_j>| of the normalised rows."""
    E = normalise(E_mxd)
    G = np.abs(E @ E.T)
    np.fill_diagonal(G, 0.0)
    return float(G.max())


def random_unit(m: int, d: int, seed: int) -> np.ndarray:
    """m i.i.d. uniformly random unit vectors in R^d."""
    return normalise(np.random.default_rng(seed).standard_normal((m, d)))


def simplex_frame(d: int) -> np.ndarray:
    """The d + 1 vertices of the regular simplex centred at 0 in R^d: coherence 1/d."""
    centred = np.eye(d + 1) - 1.0 / (d + 1)
    basis = np.linalg.svd(centred)[0][:, :d]  # an orthonormal basis of the plane sum = 0
    return normalise(centred @ basis)


def icosahedron_lines() -> np.ndarray:
    """The 6 diagonals of the icosahedron in R^3: coherence 1/sqrt(5) (= the Welch bound)."""
    phi = (1 + math.sqrt(5)) / 2
    return normalise(np.array([[0, 1, phi], [0, -1, phi], [1, phi, 0], [-1, phi, 0], [phi, 0, 1], [phi, 0, -1]]))


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _descend(V0_RxMxD: jax.Array, steps: int, lr: float, p0: float, p1: float) -> jax.Array:
    """Adam on a smooth maximum of the squared off-diagonal Gram entries, its sharpness p
    raised geometrically from p0 to p1; R restarts in parallel."""
    M = V0_RxMxD.shape[1]
    off_MxM = ~jnp.eye(M, dtype=bool)
    opt = optax.adam(optax.cosine_decay_schedule(lr, steps, alpha=0.01))

    def loss(V_MxD, p):
        E_MxD = V_MxD / jnp.linalg.norm(V_MxD, axis=1, keepdims=True)
        G2_MxM = jnp.square(E_MxD @ E_MxD.T)
        return jax.nn.logsumexp(jnp.where(off_MxM, p * G2_MxM, -jnp.inf)) / p

    def run(V_MxD):
        def step(carry, i):
            V, state = carry
            p = p0 * (p1 / p0) ** (i / steps)
            g = jax.grad(loss)(V, p)
            upd, state = opt.update(g, state, V)
            return (optax.apply_updates(V, upd), state), None

        (V, _), _ = jax.lax.scan(step, (V_MxD, opt.init(V_MxD)), jnp.arange(steps, dtype=jnp.float32))
        return V

    return jax.vmap(run)(V0_RxMxD)


def optimised(m: int, d: int, seed: int = 0, steps: int = 2000, restarts: int = 4) -> np.ndarray:
    """m unit vectors in R^d with small coherence: the best of `restarts` descents from
    random starts (deterministic for a fixed seed); orthonormal when m <= d."""
    if m <= d:
        return np.eye(m, d)
    V0 = random_unit(restarts * m, d, seed).reshape(restarts, m, d)
    V = np.asarray(_descend(jnp.asarray(V0, jnp.float32), steps, 0.02, 10.0, 3000.0), np.float64)
    best = min(range(restarts), key=lambda r: coherence(V[r]))
    return normalise(V[best])
