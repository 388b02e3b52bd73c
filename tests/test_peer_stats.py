"""The agreement rule of the peer comparison (counting.analysis.peer, issue 31 part 2) on
planted samples: the verdicts, Holm's correction over distinct cells, the cell shared by two
published figures counted once, the power statement, the dip test and the digitised T = 32
diagram's tests from summary statistics. No JAX; each test well
under a second."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from counting.analysis import stats
from counting.analysis.peer import (
    ALPHA,
    MARGIN,
    Rule,
    compare,
    counts,
    diagram_rows,
    dip,
    min_detectable,
    ours_by_cell,
    published_cells,
    published_diagram,
    welch_contrast,
)

BASE = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])  # a planted sample's shape: mean 0, std 0.0158 at scale 0.01


def published(cells: dict[tuple, np.ndarray]) -> list[dict]:
    """published.csv rows for {(figure, d, p): runs (fractions)}: each run's row (named by its
    wandb run; the same accuracies in two figures are the same runs) and the mean row."""
    rows = []
    for (figure, d, p), runs in cells.items():
        common = {"figure": figure, "variant": "dot+sftm", "T": "64", "L": "10", "d": str(d), "p": str(p),
                  "source_file": f"{figure}.ipynb", "source_cell": "cell 2"}
        rows += [{**common, "statistic": "single_run_final_val_acc", "accuracy": repr(100 * float(a)), "n_seeds": "1",
                  "note": f"wandb run feeds/run-d{d}-p{p}-{i}; params_count=1"} for i, a in enumerate(runs)]
        rows.append({**common, "statistic": "mean_over_seeds (DERIVED here)", "n_seeds": str(len(runs)),
                     "accuracy": repr(100 * float(np.mean(runs))), "note": "derived here"})
    return rows


def ours(cells: dict[tuple, np.ndarray]) -> dict[tuple, dict]:
    """ours_by_cell of per-seed accuracies {(d, p): accuracies}."""
    return ours_by_cell([{"arch": "dot+softmax", "m": 64, "n": 10, "d": d, "w": p, "accuracy": float(a)}
                         for (d, p), accs in cells.items() for a in accs], boot=200)


def test_the_rule_is_fixed_in_one_place_and_recorded():
    assert (MARGIN, ALPHA) == (0.02, 0.05) and Rule().margin == MARGIN and Rule().alpha == ALPHA
    theirs = 0.9 + 0.005 * BASE
    (row,) = compare(published({("Fig07.a", 8, 64): theirs}), ours({(8, 64): theirs}), rule=Rule(margin=0.03))
    assert row["margin"] == 0.03 and row["alpha"] == ALPHA and row["power"] == 0.8


def test_the_verdicts_on_planted_samples():
    theirs = 0.9 + 0.005 * BASE
    planted = {2: theirs[::-1] + 0.001,  # equal means, the same spread: equivalent
               4: theirs + 2 * MARGIN,  # shifted by twice the margin: differs
               8: np.array([0.85, 0.95])}  # 2 noisy seeds: undecided
    mine = ours({(d, 64): a for d, a in planted.items()})
    rows = compare(published({("Fig07.a", d, 64): theirs for d in planted}), mine)
    by_d = {r["d"]: r for r in rows}
    assert [by_d[d]["verdict"] for d in (2, 4, 8)] == ["equivalent", "differs", "undecided"]
    assert by_d[2]["tost_p"] < ALPHA and by_d[4]["holm_p"] < ALPHA and by_d[4]["tost_p"] > ALPHA
    assert by_d[4]["difference"] == pytest.approx(2 * MARGIN) and by_d[4]["permutation_p"] == pytest.approx(2 / 252)
    assert by_d[8]["our_seeds"] == 2 and by_d[8]["welch_p"] > ALPHA and by_d[8]["tost_p"] > ALPHA
    # one cell alone (Holm over a family of one is the raw p): the verdict stats.agreement gives
    for d, a in planted.items():
        (alone,) = compare(published({("Fig07.a", d, 64): theirs}), ours({(d, 64): a}))
        assert alone["verdict"] == stats.agreement(a, theirs, MARGIN, ALPHA)
    assert counts(rows) == {"cells": 3, "equivalent": 1, "differs": 1, "undecided": 1}


def test_holm_turns_a_lone_raw_difference_undecided():
    theirs = 0.9 + 0.01 * BASE
    planted = {2: theirs + 0.026,  # Welch p 0.03 on its own
               4: theirs[::-1] + 0.002, 8: theirs[[1, 0, 2, 4, 3]] - 0.004}  # no difference: p near 1
    mine = ours({(d, 64): a for d, a in planted.items()})
    rows = compare(published({("Fig07.a", d, 64): theirs for d in planted}), mine)
    shifted = rows[0]
    assert 0.02 < shifted["welch_p"] < ALPHA < shifted["holm_p"]
    assert shifted["holm_p"] == pytest.approx(3 * shifted["welch_p"])  # the smallest of 3, times 3
    assert shifted["verdict"] == "undecided"
    (alone,) = compare(published({("Fig07.a", 2, 64): theirs}), ours({(2, 64): planted[2]}))
    assert alone["holm_p"] == pytest.approx(alone["welch_p"]) and alone["verdict"] == "differs"


def test_the_cell_in_both_figures_is_one_cell():
    shared, other = 0.98 + 0.004 * BASE, 0.69 + 0.05 * BASE
    rows = published({("Fig07.a", 64, 64): shared, ("Fig07.b", 64, 64): shared, ("Fig07.b", 64, 8): other})
    cells = published_cells(rows)
    assert [(c["d"], c["p"], c["figures"]) for c in cells] == [(64, 64, "Fig07.a Fig07.b"), (64, 8, "Fig07.b")]
    assert len(cells[0]["their_runs"]) == 5 and cells[0]["figure"] == "Fig07.a"  # its runs once, not 10
    mine = ours({(64, 64): shared - 0.03, (64, 8): other - 0.08})
    out = compare(rows, mine)
    assert len(out) == 2 and counts(out)["cells"] == 2
    smallest = min(out, key=lambda r: r["welch_p"])
    assert smallest["holm_p"] == pytest.approx(2 * smallest["welch_p"])  # Holm over 2 distinct cells, not 3


def test_the_power_statement_is_the_noncentral_t():
    a, b = 0.9 + 0.01 * BASE, 0.95 + 0.02 * BASE
    two = welch_contrast([a, b], [1, -1])
    t, p = stats.welch(a, b)
    assert (two["t"], two["p_value"]) == (pytest.approx(t), pytest.approx(p))
    delta = min_detectable(two["se"], two["df"], 0.05, 0.8)
    t_c, lam = sps.t.ppf(0.975, two["df"]), delta / two["se"]
    assert sps.nct.sf(t_c, two["df"], lam) + sps.nct.cdf(-t_c, two["df"], lam) == pytest.approx(0.8)
    assert min_detectable(1.0, 1e6) == pytest.approx(sps.norm.ppf(0.975) + sps.norm.ppf(0.8), rel=1e-3)  # z-test limit
    assert min_detectable(0.01, 4) > min_detectable(0.01, 40) and np.isnan(min_detectable(0.0, 4))


def test_the_dip_as_a_difference_of_differences():
    theirs64, theirs128 = 0.98 + 0.004 * BASE, 0.95 + 0.008 * BASE
    rows = published({("Fig07.a", 64, 64): theirs64, ("Fig07.a", 128, 64): theirs128})
    same = ours({(64, 64): theirs64[::-1] - 0.025, (128, 64): theirs128[[2, 0, 1, 4, 3]] - 0.025})  # the same drop
    (row,) = dip(rows, same)
    assert row["estimate"] == pytest.approx(0.0, abs=1e-12) and row["p_value"] > 0.9
    assert row["our_drop"] == pytest.approx(row["their_drop"]) and row["length"] == "150 epochs"
    deeper = ours({(64, 64): theirs64 - 0.025, (128, 64): theirs128 - 0.125})  # 0.1 deeper than theirs
    (row,) = dip(rows, deeper)
    assert row["estimate"] == pytest.approx(-0.1) and row["p_value"] < 1e-4 and row["df"] < 16
    assert row["min_detectable"] < 0.1
    assert dip(rows, deeper, full={}) == [row]  # no full-length runs of both cells: no second row


def test_summary_statistics_tests_equal_the_sample_tests():
    """Their T = 32 cells are known by mean, std and count only: the tests from summary
    statistics give what the tests on the samples give."""
    ours, theirs = 0.9 + 0.01 * BASE[:3], 0.91 + 0.013 * BASE
    summary = stats.welch_from_stats(ours, theirs.mean(), theirs.std(ddof=1), len(theirs))
    assert (summary["t"], summary["p_value"]) == pytest.approx(stats.welch(ours, theirs))
    assert summary == pytest.approx(welch_contrast([ours, theirs], [1, -1]))
    assert stats.tost_from_stats(ours, theirs.mean(), theirs.std(ddof=1), len(theirs), MARGIN) == pytest.approx(
        stats.tost(ours, theirs, MARGIN))


def test_the_digitised_diagram_on_planted_cells():
    """published_t32.csv rows (mean and std in percent) joined with our cells: equal means with
    a small spread -> equivalent, a gap of ten margins -> differs, a cell they did not publish
    -> no verdict."""
    def digitised(d, mean, std):
        common = {"figure": "Fig01/02", "variant": "dot+sftm", "T": "32", "L": "10", "d": str(d), "p": "4",
                  "n_seeds": "5", "resolution": "0.20", "source_file": "f.png"}
        return [{**common, "statistic": "mean_over_seeds", "accuracy": str(mean)},
                {**common, "statistic": "std_over_seeds", "accuracy": str(std)}]

    theirs = published_diagram(digitised(4, 90.0, 0.3) + digitised(16, 90.0, 0.3))
    assert theirs[("dot+softmax", 32, 10, 4, 4)]["their_std"] == pytest.approx(0.003)
    rows = [{"arch": "dot+softmax", "m": 32, "n": 10, "d": d, "w": 4, "accuracy": a}
            for d, base in ((4, 0.9), (16, 0.9 - 10 * MARGIN), (64, 0.5)) for a in base + 0.002 * BASE]
    by_d = {r["d"]: r for r in diagram_rows(ours_by_cell(rows), theirs)}
    assert by_d[4]["verdict"] == "equivalent" and by_d[16]["verdict"] == "differs" and by_d[64]["verdict"] == ""
    assert by_d[16]["difference"] == pytest.approx(-10 * MARGIN)
    assert "verdict_full" not in by_d[4]  # no full-length runs: no such columns

    # The same cells at their full length, where two ran: d = 16 has caught up (equivalent), d = 4
    # has moved away (differs); Holm runs over the full-length cells on their own; the approach to
    # their length per budget; a cell trained only at full length keeps an empty 50-epoch verdict.
    full = [{**r, "accuracy": r["accuracy"] + 10 * MARGIN} for r in rows if r["d"] == 16]
    full += [{**r, "accuracy": r["accuracy"] - 10 * MARGIN} for r in rows if r["d"] == 4]
    full += [{"arch": "dot+softmax", "m": 32, "n": 10, "d": 64, "w": 16, "accuracy": a} for a in 0.7 + 0.002 * BASE]
    approach = {("dot+softmax", 32, 10, 16, 4): {"ours_at_15650": 0.72, "ours_at_156500": 0.9}}
    cells = diagram_rows(ours_by_cell(rows), theirs, full=ours_by_cell(full), approach=approach)
    by_cell = {(r["d"], r["p"]): r for r in cells}
    assert [by_cell[(d, 4)]["verdict"] for d in (4, 16)] == ["equivalent", "differs"]  # unchanged by the full runs
    assert [by_cell[(d, 4)]["verdict_full"] for d in (4, 16, 64)] == ["differs", "equivalent", ""]
    assert by_cell[(16, 4)]["difference_full"] == pytest.approx(0.0, abs=1e-12)
    assert by_cell[(16, 4)]["ours_full_at_15650"] == 0.72 and by_cell[(16, 4)]["our_seeds_full"] == 5
    assert by_cell[(64, 16)]["verdict"] == "" and np.isnan(by_cell[(64, 16)]["ours"])
    assert by_cell[(64, 4)]["our_seeds_full"] == 0 and np.isnan(by_cell[(64, 4)]["ours_full"])
    welch_full = [by_cell[(d, 4)]["welch_p_full"] for d in (4, 16)]
    assert [by_cell[(d, 4)]["holm_p_full"] for d in (4, 16)] == pytest.approx(stats.holm(welch_full))
    assert counts(cells, "_full") == {"cells": 2, "equivalent": 1, "differs": 1, "undecided": 0}


def test_the_overlap_of_held_out_and_training_sequences_is_the_samplers():
    """seen_in_training at one training draw is the chance that two draws coincide, here
    estimated from the partition sampler the peer runs train on (counting.tasks.base), and it
    grows toward 1 with the draws."""
    import jax

    from counting.analysis.peer import compositions, seen_in_training
    from counting.tasks.base import partition_draw

    assert sum(q for _, q in compositions(10)) == pytest.approx(1.0)
    n, T, B = 4, 4, 200_000
    draw = jax.jit(partition_draw, static_argnums=(1, 2, 3, 4))  # one program, not one per operation
    a_BxN, b_BxN = (np.asarray(draw(jax.random.PRNGKey(s), B, T, n, n)) for s in (0, 1))
    coincide = float((a_BxN == b_BxN).all(axis=1).mean())
    expected = seen_in_training(n, T, 1)
    assert abs(coincide - expected) < 4 * np.sqrt(expected / B), (coincide, expected)
    assert seen_in_training(n, T, 10) < seen_in_training(n, T, 1000) < seen_in_training(n, T, 10**7) == pytest.approx(1)
