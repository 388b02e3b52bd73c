"""The measurements of counting.theory return the right values on cases checked by hand:
CountAttend's width and logit scale, the precision search, the Welch-bound utilities, the
m > d readout limits, the fits, and the counting-theory command end to end (--quick)."""

import csv
import itertools
import math

import numpy as np
import pytest

from counting.analysis.scaling import loglog_fit, semilog_fit
from counting.cli.theory import main
from counting.config import TaskConfig
from counting.theory import coherence as coh
from counting.theory import interference, inversion, sequences
from counting.theory.cost import adversarial_for, beta_min, theory_beta
from counting.theory.count_attend import count_attend, default_directions
from counting.theory.histogram import histogram_solution
from counting.theory.precision import exactness, largest_exact

# --- CountAttend: width ------------------------------------------------------------------


def test_greedy_knots_by_hand():
    """n = 8: chords 0-2 (gap 1/3 at c = 1), 2-5 (0.4, 1/3), 5-8 (1/4, 2/9); 0-3 and 2-6
    already leave a gap above 1/2 (2/3 at c = 1; 0.6 at c = 3 and 2/3 at c = 4)."""
    np.testing.assert_array_equal(inversion.greedy_knots(8, 0.5), [0, 2, 5, 8])
    np.testing.assert_allclose(inversion.chord_gaps(2, 5), [0.4, 1 / 3])
    np.testing.assert_allclose(inversion.chord_gaps(2, 6), [0.6, 2 / 3, 3 / 7])
    assert inversion.max_gap(0, 3) == pytest.approx(2 / 3)


@pytest.mark.parametrize("n", range(1, 11))
def test_greedy_knots_are_the_fewest(n):
    """Brute force over every set of interior grid knots."""
    best = next(k for k in range(n + 1) for inner in itertools.combinations(range(1, n), k)
                if inversion.decodes(np.array([0, *inner, n]), n))
    assert len(inversion.greedy_knots(n, 0.5)) - 2 == best


def test_interpolants_hit_the_grid_and_min_width_grows_like_sqrt_2n():
    for knots in (inversion.all_knots(50), inversion.greedy_knots(50, 0.5)):
        c = knots.astype(float)
        a = inversion.grid(50)
        np.testing.assert_allclose(inversion.pl_units_eval(knots, 1 / (c + 2)), c, atol=1e-9)
        np.testing.assert_allclose(inversion.pl_units_eval(knots, a), inversion.pl_eval(knots, a), atol=1e-9)
        assert inversion.decodes(knots, 50)
    for n in (1000, 10000):
        assert abs(len(inversion.greedy_knots(n, 0.5)) - 1 - math.sqrt(2 * n)) < 0.05 * math.sqrt(2 * n)


# --- CountAttend: logit scale ------------------------------------------------------------


@pytest.mark.parametrize("inverse,n,m,d", [("head", 8, 4, 6), ("head", 32, 4, 6), ("interp", 16, 4, 6), ("head", 8, 8, 4)])
def test_beta_min_matches_the_leak_bound(inverse, n, m, d):
    """Orthogonal directions: ln(2n) (head), ln(5n/2) (interp). Eight directions on a circle
    (d = 4): mu+ = cos(pi/4), so ln(2n) / (1 - cos(pi/4))."""
    task = TaskConfig("qc", m=m, n=n)
    u = default_directions(m, d - 2)
    c = count_attend(task, d, inverse, u=u)
    mu_plus = 0.0 if m <= d - 2 else math.cos(2 * math.pi / m)
    measured = beta_min(c, adversarial_for(task, u), rel_tol=1e-4)
    assert measured == pytest.approx(theory_beta(n, inverse, mu_plus), rel=2e-3)


# --- precision ---------------------------------------------------------------------------


def test_largest_exact_search():
    assert largest_exact(lambda n: n <= 37, cap=1000, resolution=10**9) == (37, 38)
    good, bad = largest_exact(lambda n: n <= 37, cap=1000)
    assert good <= 37 < bad and bad - good <= max(1, good // 16)
    assert largest_exact(lambda n: True, cap=100) == (100, None)
    assert largest_exact(lambda n: False, cap=100) == (0, 1)
    assert largest_exact(lambda n: n <= 90, cap=100, n0=8, resolution=10**9) == (90, 91)


@pytest.mark.slow
def test_bfloat16_cannot_hold_the_histogram_readout_beyond_its_mantissa():
    """x_q = 1 + (c + 1)/T in bfloat16 is rounded to a multiple of 2^-7, so T times it errs by
    up to T / 2^8: fine at n = 16, beyond 1/2 by T = 128."""
    for n, ok in ((16, True), (127, False)):
        task = TaskConfig("qc", m=4, n=n)
        c = histogram_solution(task)
        seqs = sequences.concat([sequences.adversarial(task), sequences.uniform(task, 32)])
        assert exactness(c, "bfloat16", seqs)["readout"] is ok
        assert exactness(c, "float32", seqs) == {"model": True, "readout": True}


# --- coherence ---------------------------------------------------------------------------


def test_welch_bound_formula_and_tight_frames():
    assert coh.welch_bound(4, 3) == pytest.approx(1 / 3)
    assert coh.welch_bound(6, 3) == pytest.approx(1 / math.sqrt(5))
    assert coh.welch_bound(3, 3) == 0.0 and coh.welch_bound(2, 5) == 0.0
    for d in range(2, 7):  # the simplex meets the bound with equality
        assert coh.coherence(coh.simplex_frame(d)) == pytest.approx(coh.welch_bound(d + 1, d), abs=1e-12)
    assert coh.coherence(coh.icosahedron_lines()) == pytest.approx(coh.welch_bound(6, 3), abs=1e-12)
    assert coh.orthoplex_bound(4, 2) == pytest.approx(1 / math.sqrt(2)) and coh.orthoplex_bound(3, 2) == 0.0


@pytest.mark.parametrize("d,m,best", [(2, 3, 0.5), (2, 4, math.cos(math.pi / 4)), (3, 4, 1 / 3), (4, 10, None)])
def test_optimised_coherence_sits_between_bound_and_random(d, m, best):
    """Optimised >= the lower bound; <= every random draw; reaches the optimum where known."""
    opt = coh.coherence(coh.optimised(m, d, seed=0, steps=600))
    assert opt >= coh.lower_bound(m, d) - 1e-9
    assert all(opt <= coh.coherence(coh.random_unit(m, d, seed)) for seed in range(5))
    if best is not None:
        assert opt == pytest.approx(best, abs=2e-3)


# --- m > d readouts ----------------------------------------------------------------------


def brute_margin(E, n):
    E = coh.normalise(E)
    best = math.inf
    for g in itertools.product(range(-2 * n, 2 * n + 1), repeat=len(E) - 1):
        g = np.r_[g, -sum(g)]
        if np.any(g) and np.abs(g).sum() <= 2 * n:
            best = min(best, float(np.linalg.norm(g @ E)))
    return best


@pytest.mark.parametrize("m,d,n", [(3, 2, 3), (4, 2, 3), (5, 2, 2), (4, 3, 3)])
def test_lattice_margin_equals_brute_force(m, d, n):
    E = coh.random_unit(m, d, seed=m + d)
    assert interference.lattice_margin(E, n) == pytest.approx(brute_margin(E, n), abs=1e-12)


def test_lattice_margin_is_flat_for_the_simplex_and_shrinks_for_m_above_d_plus_1():
    simplex = coh.simplex_frame(2)
    assert interference.lattice_margin(simplex, 4) == pytest.approx(interference.lattice_margin(simplex, 64))
    E = coh.random_unit(4, 2, seed=0)
    deltas = [interference.lattice_margin(E, n) for n in (4, 16, 64)]
    assert deltas[0] >= deltas[1] >= deltas[2] and deltas[2] < 0.5 * deltas[0]


def test_projection_and_linear_readout_limits_by_hand():
    assert interference.projection_n_max(np.eye(3)) == math.inf
    tilted = coh.normalise(np.array([[1.0, 0.0], [0.1, math.sqrt(0.99)]]))  # mu = 0.1: n < 5
    assert interference.projection_n_max(tilted) == 4
    assert interference.projection_n_max(coh.simplex_frame(2)) == 0  # mu = 1/2: n < 1
    assert interference.linear_n_max(coh.simplex_frame(3)) == math.inf  # m = d + 1
    E = coh.random_unit(4, 2, seed=3)
    angles = np.linspace(0, 2 * np.pi, 200001)
    w = np.stack([np.cos(angles), np.sin(angles)], 1)
    for q in range(4):
        b = w @ np.delete(E, q, 0).T
        ratio = (w @ E[q] - b.max(1)) / (b.max(1) - b.min(1))
        rho = interference.linear_rho(E, q)  # the LP optimum; the angle grid can only fall short
        assert ratio.max() - 1e-9 <= rho <= ratio.max() * (1 + 1e-3)


def test_fits():
    x = np.array([8.0, 16, 64, 256])
    assert loglog_fit(x, 3 * x**1.5)[0] == pytest.approx(1.5)
    assert semilog_fit(x, 2 * np.log(x) + 1)[0] == pytest.approx(2.0)


# --- the command -------------------------------------------------------------------------


@pytest.mark.slow
def test_counting_theory_quick_writes_every_table_and_figure(tmp_path):
    main(["--quick", "--out", str(tmp_path)])
    stems = ["constructions", "positional", "countattend_width", "precision", "coherence", "interference_readouts",
             "interference_margin", "countattend_coherent", "fits"]
    rows = {s: list(csv.DictReader((tmp_path / f"{s}.csv").read_text().splitlines())) for s in stems}
    assert all(rows.values())
    figs = ["countattend_cost", "precision", "coherence", "interference", "countattend_coherent"]
    assert all((tmp_path / f"{f}.{ext}").stat().st_size > 1000 for f in figs for ext in ("png", "pdf"))
    assert all(r["exact_adversarial"] == "True" for r in rows["constructions"])
    assert all(r["argmax_agrees"] == "True" for r in rows["positional"] if r["model"] == "random")
    assert rows["precision"][0]["n_max_model"] == "16"  # bfloat16 head: see precision.csv
