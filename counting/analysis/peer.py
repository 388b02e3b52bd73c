"""Our numbers beside a published peer's: Behrens, Biggio and Zdeborova, *Counting in Small
Transformers* (arXiv 2407.11542; code SPOC-group/counting-attention at 507b82d).

`results/peer_behrens/published.csv` holds every number their repository prints (notebook
outputs; each row names its notebook, cell and wandb run): the final validation accuracy of
each run of their Fig. 7a (dot+softmax, T = 64, L = 10, p = 64, d in 2..128) and Fig. 7b
(d = 64, p in 2..128), with mean, std, min and max over their 5 seeds derived from the printed
runs. `compare` joins their mean per distinct (d, p) cell with ours (mean over our seeds with
its bootstrap interval, the seed range, and the difference), from our tables of the same
cells, and tests the two samples of per-run accuracies against each other by the rule below.

The agreement rule (issue 31, part 2), stated before the runs it judges finished:

- per distinct published cell (d = 64, p = 64 is in both Fig. 7a and Fig. 7b with the same
  five wandb runs: one cell, its `figures` naming both, so 13 cells, not 14), our per-seed
  accuracies against their 5 printed runs: Welch's t-test (`stats.welch`), a permutation test
  of the difference of means (`stats.permutation`, exact at 5 against 5: 252 relabellings) and
  the two one-sided tests of equivalence within +-`MARGIN` (`stats.tost`);
- Holm's correction (`stats.holm`) of the Welch p-values over the distinct cells of one
  training length (the 150-epoch cells are one family, the full-length cells another);
- verdict: "equivalent" where the TOST p < `ALPHA` (the means are within the margin; this
  wins, as in `stats.agreement`, where a difference is also found: it is then smaller than the
  margin), else "differs" where the Holm-adjusted Welch p < `ALPHA`, else "undecided";
  "" where we have not trained the cell;
- a power statement per cell (`min_detectable`): the smallest true difference the Welch test
  at `ALPHA` (two-sided) would detect with probability `POWER`, given the two samples' sizes
  and standard deviations: delta = lambda * se, se = sqrt(s_a^2/n_a + s_b^2/n_b), lambda the
  noncentrality that solves P(|T| > t_{1-alpha/2, nu}) = POWER for T ~ noncentral t(nu,
  lambda) (scipy.stats.nct), nu the Welch-Satterthwaite degrees of freedom. It depends on the
  samples' spread, never on their observed difference (not "observed power").

`dip` tests the dip from d = 64 to d = 128 (p = 64) as a difference of differences over the
four samples (ours and theirs at both d): `welch_contrast`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import optimize
from scipy import stats as sps

from counting.analysis import stats
from counting.store import COMPARE, DIAGRAM, DIP, OVERLAP, PUBLISHED, PUBLISHED_DIAGRAM

VARIANTS = {"dot+sftm": "dot+softmax", "dotBOS+sftm": "dotBOS+softmax", "linear+sftm": "linear+softmax"}  # theirs -> ours

# The agreement rule's constants, fixed (issue 31, part 2) before the 500-epoch runs of the
# cells other than d = 16 finished (the d = 16 run at 500 epochs was already in compare.csv).
# Change them only for exploration (counting-peer --margin/--alpha); compare.csv records the
# values it used in its columns margin, alpha and power.
MARGIN = 0.02  # equivalence margin, accuracy as a fraction: two percentage points either way
ALPHA = 0.05  # level of every test (Welch after Holm, TOST, the dip); two-sided where it applies
POWER = 0.80  # the power at which `min_detectable` states the smallest detectable difference
LENGTHS = {"": "150 epochs", "_full": "500 epochs"}  # column suffix -> our training length
TESTS = ("t", "df", "welch_p", "holm_p", "permutation_p", "tost_p", "min_detectable", "verdict")


@dataclass(frozen=True)
class Rule:
    """The agreement rule: margin, level and power (defaults: the constants above), the
    permutation test's resamples and seed (exact at 5 against 5 seeds, so the seed then does
    not matter)."""

    margin: float = MARGIN
    alpha: float = ALPHA
    power: float = POWER
    permutations: int = 9999
    seed: int = 0


def read_published(path: Path) -> list[dict]:
    """The peer's numbers as the notes recorded them (strings; not a table this suite writes)."""
    import csv

    from counting.store.columns import TableError

    if not Path(path).exists():
        raise TableError(f"published: {path} does not exist")
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))


def _key(r: dict) -> tuple:
    return VARIANTS.get(r["variant"], r["variant"]), int(r["T"]), int(r["L"]), int(r["d"]), int(r["p"])


def published_means(rows: list[dict]) -> list[dict]:
    """Their mean over seeds per (figure, variant, T, L, d, p), in percent, with its source."""
    out = []
    for r in rows:
        if not str(r.get("statistic", "")).startswith("mean_over_seeds") or not r["figure"].startswith("Fig07"):
            continue
        out.append({"figure": r["figure"], "variant": VARIANTS.get(r["variant"], r["variant"]), "T": int(r["T"]),
                    "L": int(r["L"]), "d": int(r["d"]), "p": int(r["p"]), "theirs": float(r["accuracy"]) / 100,
                    "their_seeds": int(r["n_seeds"]), "source": f"{r['source_file']}, {r['source_cell']}"})
    return out


def published_runs(rows: list[dict]) -> dict[tuple, np.ndarray]:
    """(variant, T, L, d, p) -> their printed runs' final accuracies (fractions), each wandb
    run once (the d = 64, p = 64 runs are printed in both Fig. 7a and Fig. 7b)."""
    runs: dict[tuple, dict] = defaultdict(dict)
    for i, r in enumerate(rows):
        if r.get("statistic") != "single_run_final_val_acc" or not r["figure"].startswith("Fig07"):
            continue
        name = re.search(r"wandb run (\S+?);", r.get("note") or "")
        runs[_key(r)][name.group(1) if name else (r["figure"], i)] = float(r["accuracy"]) / 100
    return {key: np.array(list(by.values()), np.float64) for key, by in runs.items()}


def published_cells(rows: list[dict]) -> list[dict]:
    """One row per distinct published cell (variant, T, L, d, p), in the order first
    published: `figure` (the first figure that shows it), `figures` (all, space-separated),
    their mean, the std of their runs (ddof 1), their seeds, the source(s), and `their_runs`
    (the runs' accuracies; empty unless all their_seeds runs are printed, whose mean must
    then be the published one)."""
    from counting.store.columns import TableError

    runs = published_runs(rows)
    cells: dict[tuple, dict] = {}
    for m in published_means(rows):
        key = (m["variant"], m["T"], m["L"], m["d"], m["p"])
        if key in cells:
            cell = cells[key]
            if abs(cell["theirs"] - m["theirs"]) > 1e-6 or cell["their_seeds"] != m["their_seeds"]:
                raise TableError(f"published: cell d = {m['d']}, p = {m['p']} has two different means")
            cell["figures"] += f" {m['figure']}"
            cell["source"] += f" | {m['source']}" if m["source"] not in cell["source"] else ""
            continue
        acc = runs.get(key, np.zeros(0))
        if len(acc) != m["their_seeds"]:
            acc = np.zeros(0)
        elif abs(acc.mean() - m["theirs"]) > 1e-6:
            raise TableError(f"published: the runs of d = {m['d']}, p = {m['p']} do not average to its mean")
        cells[key] = {"figure": m["figure"], "figures": m["figure"],
                      **{k: m[k] for k in ("variant", "T", "L", "d", "p")}, "theirs": m["theirs"],
                      "their_std": float(acc.std(ddof=1)) if len(acc) > 1 else math.nan,
                      "their_seeds": m["their_seeds"], "source": m["source"], "their_runs": acc}
    return list(cells.values())


def ours_by_cell(rows: list[dict], ci: float = 0.95, boot: int = 2000, seed: int = 0) -> dict[tuple, dict]:
    """(arch, T, L, d, p) -> our mean accuracy over seeds, its interval and seed range, and
    `accuracies` (the per-seed values the tests take; not a column)."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        groups[(r.get("arch"), r["m"], r["n"], r["d"], r["w"])].append(r["accuracy"])
    rng = np.random.default_rng(seed)
    out = {}
    for key, acc in groups.items():
        acc_S = np.array(acc, float)
        low, high = stats.bootstrap_interval((acc_S,), np.mean, ci=ci, n_resamples=boot, rng=rng)
        out[key] = {"ours": float(acc_S.mean()), "ours_low": low, "ours_high": high, "ours_min": float(acc_S.min()),
                    "ours_max": float(acc_S.max()), "our_seeds": len(acc_S), "accuracies": tuple(acc_S.tolist())}
    return out


def ours_by_budget(budget_rows: list[dict]) -> dict[tuple, dict]:
    """(arch, T, L, d, p) -> {"ours_at_<steps>": our mean accuracy after that many steps}, from
    the budget study's rows (budget.csv: every model read at each budget), so the comparison
    shows how far from converged our numbers are."""
    groups: dict[tuple, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in budget_rows:
        groups[(r.get("arch"), r["m"], r["n"], r["d"], r["w"])][int(r["budget"])].append(r["accuracy"])
    return {key: {f"ours_at_{b}": float(np.mean(acc)) for b, acc in sorted(by.items())} for key, by in groups.items()}


def welch_contrast(samples, weights) -> dict:
    """A contrast sum_i w_i mean(x_i) of independent samples, tested against 0 without
    assuming equal variances: estimate, se = sqrt(sum_i w_i^2 s_i^2 / n_i), t = estimate / se,
    the Welch-Satterthwaite degrees of freedom df = se^4 / sum_i (w_i^2 s_i^2 / n_i)^2 / (n_i - 1)
    and the two-sided p_value = 2 sf_t(|t|; df) (scipy.stats.t). With two samples and weights (1, -1)
    it is Welch's t-test (`stats.welch`). NaN where a sample has fewer than 2 values or every
    sample is constant."""
    samples = [np.asarray(s, np.float64) for s in samples]
    w = np.asarray(weights, np.float64)
    nan = {"estimate": math.nan, "se": math.nan, "t": math.nan, "df": math.nan, "p_value": math.nan}
    if any(len(s) < 2 for s in samples):
        return nan
    n = np.array([len(s) for s in samples], np.float64)
    part = w**2 * np.array([s.var(ddof=1) for s in samples]) / n
    estimate = float(np.dot(w, [s.mean() for s in samples]))
    if part.sum() <= 0:
        return {**nan, "estimate": estimate}
    se = float(np.sqrt(part.sum()))
    df = float(part.sum() ** 2 / np.sum(part**2 / (n - 1)))
    t = estimate / se
    return {"estimate": estimate, "se": se, "t": t, "df": df, "p_value": float(2 * sps.t.sf(abs(t), df))}


def min_detectable(se: float, df: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest true difference a two-sided t-test at `alpha` with standard error `se` and
    `df` degrees of freedom detects with probability `power`: lambda * se, where lambda solves
    sf_nct(t_c; df, lambda) + cdf_nct(-t_c; df, lambda) = power, t_c = t_{1 - alpha/2, df}
    (scipy.stats.nct; about (t_c + t_{power, df}) se). NaN without a finite positive se."""
    if not (math.isfinite(se) and math.isfinite(df) and se > 0 and df > 0):
        return math.nan
    t_c = float(sps.t.ppf(1 - alpha / 2, df))

    def gap(lam: float) -> float:  # cdf_nct(-t_c; df, lam) as sf_nct(t_c; df, -lam): scipy's cdf is NaN far out
        return float(sps.nct.sf(t_c, df, lam) + sps.nct.sf(t_c, df, -lam)) - power

    high = t_c + float(sps.t.ppf(power, df)) + 1.0
    while gap(high) < 0:
        high *= 2
    return float(optimize.brentq(gap, 0.0, high, xtol=1e-10)) * se


def cell_tests(ours: dict | None, theirs_S: np.ndarray, rule: Rule = Rule(), suffix: str = "") -> dict:
    """One cell's tests of our per-seed accuracies (`ours_by_cell`'s `accuracies`) against
    their runs, named with `suffix`: Welch's t, its degrees of freedom and p, the permutation
    p, the TOST p within rule.margin and the smallest difference detectable at rule.alpha with
    rule.power (NaN where either side has fewer than 2 runs). Holm and the verdict: `decide`."""
    out = {f"{n}{suffix}": math.nan for n in ("t", "df", "welch_p", "permutation_p", "tost_p", "min_detectable")}
    if ours is None or len(ours["accuracies"]) < 2 or len(theirs_S) < 2:
        return out
    ours_S = np.asarray(ours["accuracies"], np.float64)
    out[f"permutation_p{suffix}"] = stats.permutation(ours_S, theirs_S, n_resamples=rule.permutations, rng=rule.seed)
    welch = welch_contrast([ours_S, theirs_S], [1, -1])
    if not math.isfinite(welch["se"]):  # both samples constant: no t
        return out
    t, p = stats.welch(ours_S, theirs_S)
    out.update({f"t{suffix}": t, f"df{suffix}": welch["df"], f"welch_p{suffix}": p,
                f"tost_p{suffix}": stats.tost(ours_S, theirs_S, rule.margin)[2],
                f"min_detectable{suffix}": min_detectable(welch["se"], welch["df"], rule.alpha, rule.power)})
    return out


def verdict(tost_p: float, holm_p: float, alpha: float = ALPHA) -> str:
    """"equivalent" (TOST p < alpha), else "differs" (Holm-adjusted Welch p < alpha), else
    "undecided"; NaN p-values decide nothing. With holm_p the raw Welch p (a family of one)
    this is `stats.agreement`."""
    if tost_p < alpha:
        return "equivalent"
    if holm_p < alpha:
        return "differs"
    return "undecided"


def decide(rows: list[dict], rule: Rule = Rule(), suffix: str = "") -> list[dict]:
    """Holm's correction of the Welch p-values over the rows (one family: the distinct cells
    of one training length; NaN p-values are not members) and each row's verdict, in place;
    "" where we have no runs of the cell."""
    members = [i for i, r in enumerate(rows) if math.isfinite(r[f"welch_p{suffix}"])]
    adjusted = stats.holm([rows[i][f"welch_p{suffix}"] for i in members]) if members else []
    for r in rows:
        r[f"holm_p{suffix}"] = math.nan
    for i, p in zip(members, adjusted):
        rows[i][f"holm_p{suffix}"] = float(p)
    for r in rows:
        trained = not math.isnan(r[f"ours{suffix}"])
        r[f"verdict{suffix}"] = verdict(r[f"tost_p{suffix}"], r[f"holm_p{suffix}"], rule.alpha) if trained else ""
    return rows


def counts(rows: list[dict], suffix: str = "") -> dict[str, int]:
    """How many cells got each verdict (and how many were judged: "cells")."""
    judged = [r[f"verdict{suffix}"] for r in rows if r.get(f"verdict{suffix}")]
    return {"cells": len(judged), **{v: judged.count(v) for v in ("equivalent", "differs", "undecided")}}


def compare(published: list[dict], ours: dict[tuple, dict], tolerance: float = 0.02,
            budgets: dict[tuple, dict] | None = None, full: dict[tuple, dict] | None = None,
            rule: Rule = Rule()) -> list[dict]:
    """One row per distinct published cell (`published_cells`): theirs (with the notebook and
    cell it comes from), ours (where trained), the difference, whether theirs lies in our seed
    range widened by `tolerance` (`agrees`, descriptive), the tests and verdict of the rule
    (`cell_tests`, `decide`; the rule's margin, alpha and power as columns), (from
    `ours_by_budget`) our mean at each budget read, and (from `ours_by_cell` of the runs at
    their full training length, where there are any) the same columns with the suffix `_full`
    (Holm over the full-length cells on their own)."""
    out = []
    for cell in published_cells(published):
        row = {k: v for k, v in cell.items() if k != "their_runs"}
        key = (cell["variant"], cell["T"], cell["L"], cell["d"], cell["p"])
        row.update((budgets or {}).get(key, {}))
        row.update(_joined(cell["theirs"], ours.get(key), tolerance, ""))
        row.update(cell_tests(ours.get(key), cell["their_runs"], rule, ""))
        if full is not None:
            row.update(_joined(cell["theirs"], full.get(key), tolerance, "_full"))
            row.update(cell_tests(full.get(key), cell["their_runs"], rule, "_full"))
        row.update({"margin": rule.margin, "alpha": rule.alpha, "power": rule.power})
        out.append(row)
    decide(out, rule, "")
    if full is not None:
        decide(out, rule, "_full")
    return out


def _joined(theirs: float, mine: dict | None, tolerance: float, suffix: str) -> dict:
    """Our cell's columns (named with `suffix`), the difference to theirs and the agreement."""
    if mine is None:
        return {f"ours{suffix}": math.nan, f"difference{suffix}": math.nan, f"agrees{suffix}": ""}
    row = {k.replace("ours", f"ours{suffix}", 1) if k.startswith("ours") else f"{k}{suffix}": v
           for k, v in mine.items() if k != "accuracies"}
    row[f"difference{suffix}"] = mine["ours"] - theirs
    row[f"agrees{suffix}"] = bool(mine["ours_min"] - tolerance <= theirs <= mine["ours_max"] + tolerance)
    return row


def dip(published: list[dict], ours: dict[tuple, dict], full: dict[tuple, dict] | None = None,
        rule: Rule = Rule(), d_low: int = 64, d_high: int = 128, p: int = 64) -> list[dict]:
    """The dip from d = d_low to d = d_high at width p, ours against theirs, as one contrast
    of four samples (`welch_contrast`, weights +1, -1, -1, +1): estimate = (ours_high -
    ours_low) - (theirs_high - theirs_low), with se, t, Welch-Satterthwaite df, two-sided
    p_value and the smallest contrast detectable at rule.alpha with rule.power. One row per training
    length whose runs hold both cells (the 150-epoch runs; the full-length ones where both ran)."""
    cells = {(c["variant"], c["T"], c["L"], c["d"], c["p"]): c for c in published_cells(published)}
    out = []
    for suffix, mine in (("", ours), ("_full", full or {})):
        for (variant, T, L, d, pp), low in cells.items():
            high = cells.get((variant, T, L, d_high, pp))
            if d != d_low or pp != p or high is None:
                continue
            a, b = mine.get((variant, T, L, d_high, p)), mine.get((variant, T, L, d_low, p))
            if a is None or b is None:
                continue
            samples = [a["accuracies"], b["accuracies"], high["their_runs"], low["their_runs"]]
            res = welch_contrast(samples, [1, -1, -1, 1])
            out.append({"length": LENGTHS[suffix], "variant": variant, "T": T, "L": L, "p": p, "d_low": d_low,
                        "d_high": d_high, f"ours_d{d_low}": b["ours"], f"ours_d{d_high}": a["ours"],
                        f"theirs_d{d_low}": low["theirs"], f"theirs_d{d_high}": high["theirs"],
                        "our_drop": a["ours"] - b["ours"], "their_drop": high["theirs"] - low["theirs"], **res,
                        "min_detectable": min_detectable(res["se"], res["df"], rule.alpha, rule.power),
                        "alpha": rule.alpha, "our_seeds": f"{b['our_seeds']} + {a['our_seeds']}",
                        "their_seeds": f"{len(low['their_runs'])} + {len(high['their_runs'])}"})
    return out


def published_diagram(rows: list[dict]) -> dict[tuple, dict]:
    """(variant, T, L, d, p) -> their digitised T = 32 cell (scripts/digitise_peer_t32.py):
    `theirs` (mean over their runs) and `their_std` (ddof 1) as fractions, `their_seeds`, the
    digitising `resolution` (fraction) and the source files."""
    cells: dict[tuple, dict] = defaultdict(dict)
    for r in rows:
        column = {"mean_over_seeds": "theirs", "std_over_seeds": "their_std"}[r["statistic"]]
        cell = cells[_key(r)]
        cell[column] = float(r["accuracy"]) / 100
        cell["their_seeds"] = int(r["n_seeds"])
        if column == "theirs":
            cell["resolution"] = float(r["resolution"]) / 100
        cell["source"] = f"{cell['source']} | {r['source_file']}" if "source" in cell else r["source_file"]
    return dict(cells)


def diagram_rows(ours: dict[tuple, dict], theirs: dict[tuple, dict], rule: Rule = Rule(),
                 full: dict[tuple, dict] | None = None, approach: dict[tuple, dict] | None = None) -> list[dict]:
    """Our reduced T = 32 diagram beside their digitised cells, by the agreement rule of the T = 64
    cells with their runs known only by mean, std and count (`stats.welch_from_stats`,
    `stats.tost_from_stats`; no permutation test), Holm over the diagram's cells. The
    digitising error (half a colour step, 0.002) is a tenth of the margin and is not added to it.
    `full` (`ours_by_cell` of the same cells at their full training length, where any ran): the
    same columns with the suffix `_full`, Holm over the full-length cells on their own;
    `approach` (`ours_by_budget` of those runs): their mean at each budget, `ours_full_at_<steps>`."""
    full, rows = full or {}, []
    for key in sorted(set(ours) | set(full)):
        row = {"variant": key[0], "T": key[1], "L": key[2], "d": key[3], "p": key[4]}
        cell = theirs.get(key)
        if cell and "theirs" in cell and "their_std" in cell:
            row.update(cell)
        else:
            row.update(theirs=math.nan, their_std=math.nan)
        row.update(_diagram_cell(ours.get(key), cell, rule, ""))
        if full:
            row.update(_diagram_cell(full.get(key), cell, rule, "_full"))
            row.update({k.replace("ours_at_", "ours_full_at_"): v for k, v in (approach or {}).get(key, {}).items()})
        row.update(margin=rule.margin, alpha=rule.alpha)
        rows.append(row)
    for suffix in ("", "_full") if full else ("",):
        decide(rows, rule, suffix)
        for r in rows:  # no digitised cell: nothing judged
            r[f"verdict{suffix}"] = r[f"verdict{suffix}"] if math.isfinite(r["theirs"]) else ""
    return rows


def _diagram_cell(mine: dict | None, cell: dict | None, rule: Rule, suffix: str) -> dict:
    """One diagram cell's columns of one training length, named with `suffix`: our mean, interval,
    range and seeds, the difference to their digitised mean and the tests from their summary."""
    tests = ("difference", "t", "df", "welch_p", "tost_p", "min_detectable")
    if mine is None:
        return {f"ours{suffix}": math.nan, f"our_seeds{suffix}": 0, **{f"{c}{suffix}": math.nan for c in tests}}
    row = {(k.replace("ours", f"ours{suffix}", 1) if k.startswith("ours") else f"{k}{suffix}"): v
           for k, v in mine.items() if k != "accuracies"}
    row.update({f"{c}{suffix}": math.nan for c in tests})
    if cell and "theirs" in cell and "their_std" in cell:
        row[f"difference{suffix}"] = mine["ours"] - cell["theirs"]
        acc = np.asarray(mine["accuracies"], np.float64)
        if len(acc) > 1 and (acc.std(ddof=1) > 0 or cell["their_std"] > 0):
            w = stats.welch_from_stats(acc, cell["theirs"], cell["their_std"], cell["their_seeds"])
            row.update({f"t{suffix}": w["t"], f"df{suffix}": w["df"], f"welch_p{suffix}": w["p_value"],
                        f"min_detectable{suffix}": min_detectable(w["se"], w["df"], rule.alpha, rule.power),
                        f"tost_p{suffix}": stats.tost_from_stats(acc, cell["theirs"], cell["their_std"],
                                                                  cell["their_seeds"], rule.margin)[2]})
    return row


def compositions(n: int):
    """(parts, probability) of every ordered composition their `random_partition(n)` draws: the
    first part uniform on 1..n-1 (n >= 2), the rest of n composed the same way, a rest of 1 one
    part (`tasks.base.partition_counts` draws the same)."""
    if n == 1:
        yield (1,), 1.0
        return
    for first in range(1, n):
        for rest, q in compositions(n - first):
            yield (first, *rest), q / (n - 1)


def seen_in_training(n: int, T: int, draws: int) -> float:
    """The expected share of a fresh held-out set of random-partition sequences (length `n`, `T`
    token types) that also occur among `draws` training sequences of the same sampler, neither
    excluded from the other (their `include_validation=True`; our held-out set likewise). Exact:
    every sequence with the count profile lambda has the same probability p_lambda = P(lambda) /
    N_lambda (N_lambda sequences: ordered distinct tokens for the parts over equal parts'
    permutations, times the arrangements n! / prod c!), and the share is sum_lambda P(lambda)
    (1 - (1 - p_lambda)^draws)."""
    profile: dict[tuple, float] = defaultdict(float)
    for parts, q in compositions(n):
        profile[tuple(sorted(parts))] += q
    share = 0.0
    for parts, q in profile.items():
        j = len(parts)
        tokens = math.perm(T, j) / math.prod(math.factorial(parts.count(c)) for c in set(parts))
        arrangements = math.factorial(n) / math.prod(math.factorial(c) for c in parts)
        p_one = q / (tokens * arrangements)
        share += q * -math.expm1(draws * math.log1p(-p_one))
    return share


EPOCH = 10000  # their training sequences per epoch (ours: 313 steps of 32 = 10016)


def overlap_rows(cells, epochs=(50, 150, 500)) -> list[dict]:
    """Per (T, L) of the compared cells and training length: the share of a held-out set that
    also occurs in training (`seen_in_training`): what their validation-in-training adds, the
    same for their set (included) and ours (not excluded either)."""
    return [{"T": T, "L": L, "epochs": e, "training_sequences": e * EPOCH,
             "seen_in_training": seen_in_training(L, T, e * EPOCH)}
            for T, L in sorted({(c["T"], c["L"]) for c in cells}) for e in epochs]


# The peer comparison as one call (counting-peer is its command line).
PEERS = {"behrens": ("peer_behrens", ("peer_behrens_t64_d", "peer_behrens_t64_p", "peer_behrens_t64_p128"))}
FULL = {"behrens": ("peer_behrens_t64_full", "peer_behrens_t64_p_full")}  # the same cells at their full length
DIAGRAMS = {"behrens": ("peer_behrens_t32", "peer_behrens_t32_bos")}  # their Fig. 1/2, reduced (digitised numbers)
DIAGRAMS_FULL = {"behrens": ("peer_behrens_t32_full", "peer_behrens_t32_bos_full")}  # the same at their full length
DIAGRAM_LENGTHS = {"": "50 epochs", "_full": "500 epochs"}  # column suffix -> the diagram runs' training length
DIAGRAM_TESTS = ("t", "df", "welch_p", "holm_p", "tost_p", "min_detectable", "verdict")
COMPARE_LEAD = ["figure", "figures", "variant", "T", "L", "d", "p", "theirs", "their_std", "ours", "ours_low",
                "ours_high", "ours_min", "ours_max", "difference", "agrees", *TESTS, "margin", "alpha", "power"]


@dataclasses.dataclass
class Comparison:
    """What `compare_peer` found and wrote: one row per distinct published cell, the dip tests,
    the reduced T = 32 diagram's cells against their digitised ones, the held-out sets'
    overlap with training, and the tables' paths."""

    peer: str
    root: Path
    rule: Rule
    tolerance: float
    rows: list[dict]
    dips: list[dict]
    diagram: list[dict]
    paths: dict[str, Path]
    overlap: list[dict] = dataclasses.field(default_factory=list)

    def lines(self) -> list[str]:
        """The summary counting-peer prints."""
        rows, rule, peer = self.rows, self.rule, self.peer
        matched = [r for r in rows if r["agrees"] != ""]
        agree = sum(bool(r["agrees"]) for r in matched)
        out = []
        if self.diagram:
            for suffix, length in DIAGRAM_LENGTHS.items():
                trained = [r for r in self.diagram if math.isfinite(r.get(f"ours{suffix}", math.nan))]
                if trained:
                    n = counts(self.diagram, suffix)
                    out.append(f"{peer}: T = 32 diagram (reduced), {length}, {len(trained)} cells against their "
                               f"digitised figure: {n['equivalent']} equivalent, {n['differs']} differ, "
                               f"{n['undecided']} undecided: {self.paths['diagram']}")
        out.append(f"{peer}: {len(matched)} of {len(rows)} distinct published cells trained here; {agree} agree (their "
                   f"mean inside our seed range +- {self.tolerance}); mean |difference| "
                   f"{sum(abs(r['difference']) for r in matched) / max(len(matched), 1):.3f}")
        rule_text = f"margin {rule.margin:g}, alpha {rule.alpha:g}, Holm over the cells of each length"
        n = counts(rows)
        out.append(f"{peer}: 150 epochs: {n['equivalent']} of {n['cells']} distinct cells equivalent, "
                   f"{n['differs']} differ, {n['undecided']} undecided ({rule_text})")
        full_cells = [r for r in rows if r.get("agrees_full", "") != ""]
        if full_cells:
            n = counts(rows, "_full")
            out.append(f"{peer}: at their full length {len(full_cells)} cells: " + "; ".join(
                f"d = {r['d']}, p = {r['p']}: theirs {r['theirs']:.3f}, ours {r['ours_full']:.3f} "
                f"(150 epochs {r['ours']:.3f}), {r['verdict_full']}" for r in full_cells)
                + f"; {n['equivalent']} of {n['cells']} equivalent, {n['differs']} differ, {n['undecided']} undecided")
        longest = max((o["epochs"] for o in self.overlap), default=None)
        for r in self.overlap:
            if r["epochs"] == longest:
                out.append(f"{peer}: T = {r['T']}, L = {r['L']}: {r['seen_in_training']:.1%} of a held-out set also occurs "
                           f"in {r['epochs']} epochs of training (theirs included, ours not excluded): {self.paths['overlap']}")
        for r in self.dips:
            out.append(f"{peer}: dip d = {r['d_low']} -> {r['d_high']} ({r['length']}): ours {r['our_drop']:+.4f}, "
                       f"theirs {r['their_drop']:+.4f}; difference {r['estimate']:+.4f}, t = {r['t']:.2f}, "
                       f"df = {r['df']:.1f}, p = {r['p_value']:.3g}: {self.paths['dip']}")
        return out


def _budget_columns(rows: list[dict], prefix: str) -> list[str]:
    """The rows' columns `<prefix><steps>` (our mean at each budget), in order of steps."""
    return sorted({k for r in rows for k in r if k.startswith(prefix)}, key=lambda k: int(k.rsplit("_", 1)[1]))


def _tables(results_dir: Path, experiments, name: str) -> list[dict]:
    from counting.store import Store
    from counting.store.columns import read_table

    paths = [Store(results_dir, e).path(name) for e in experiments]
    return [r for p in paths if p.exists() for r in read_table(p)]


def compare_peer(results_dir: str | Path, peer: str, tolerance: float = 0.02, rule: Rule | None = None) -> Comparison:
    """Our tables of a peer's published cells beside their numbers (results/<peer folder>/
    published.csv), by the agreement rule (`Rule`: MARGIN and ALPHA unless exploring);
    writes compare.csv, dip.csv and the reduced diagram's table (against published_t32.csv where it exists). ConfigError for an unknown
    peer, a bad rule or no table of ours; TableError for an unreadable table."""
    from counting.spec import ConfigError
    from counting.store import BUDGET_TABLE, TABLE, Store, write_table

    if peer not in PEERS:
        raise ConfigError(f"peer: unknown peer {peer!r}; allowed: {', '.join(PEERS)}")
    rule = rule or Rule(MARGIN, ALPHA)
    if not (rule.margin > 0 and 0 < rule.alpha < 1):
        raise ConfigError(f"peer: --margin must be > 0 and --alpha in (0, 1), got {rule.margin} and {rule.alpha}")
    results_dir = Path(results_dir)
    folder, experiments = PEERS[peer]
    root = Store(results_dir, folder).root
    published = read_published(root / PUBLISHED)
    ours_rows = _tables(results_dir, experiments, TABLE)
    budget_rows = _tables(results_dir, experiments, BUDGET_TABLE)
    full_rows = _tables(results_dir, FULL.get(peer, ()), TABLE)
    full_budget_rows = _tables(results_dir, FULL.get(peer, ()), BUDGET_TABLE)
    if not ours_rows:
        raise ConfigError(f"results: no table of {', '.join(experiments)} under {results_dir} (train them first)")
    ours_rows = list({r.get("hash") or id(r): r for r in ours_rows}.values())  # a cell trained in two folders counts once
    budget_rows = list({(r.get("hash") or id(r), r["budget"]): r for r in budget_rows}.values())
    ours, full = ours_by_cell(ours_rows), ours_by_cell(full_rows) if full_rows else None
    rows = compare(published, ours, tolerance, ours_by_budget(budget_rows), full, rule)
    at = _budget_columns(rows, "ours_at_")
    approach = ours_by_budget(full_budget_rows)  # at their length: the approach to it, budget by budget
    for r in rows:
        r.update({k.replace("ours_at_", "ours_full_at_"): v
                  for k, v in approach.get((r["variant"], r["T"], r["L"], r["d"], r["p"]), {}).items()})
    full_at = _budget_columns(rows, "ours_full_at_")
    full_columns = ["ours_full", "ours_full_low", "ours_full_high", "ours_full_min", "ours_full_max", "difference_full",
                    "agrees_full", *(f"{c}_full" for c in TESTS), *full_at, "our_seeds_full"] if full_rows else []
    paths = {"compare": root / COMPARE, "dip": root / DIP}
    write_table(paths["compare"], rows, [*COMPARE_LEAD, *at, *full_columns, "their_seeds", "our_seeds", "source"],
                digits=6)
    dips = dip(published, ours, full, rule)
    if dips:
        write_table(paths["dip"], dips, digits=6)
    diagram_ours = ours_by_cell(_tables(results_dir, DIAGRAMS.get(peer, ()), TABLE))
    diagram_full_rows = _tables(results_dir, DIAGRAMS_FULL.get(peer, ()), TABLE)
    diagram_full = ours_by_cell(diagram_full_rows) if diagram_full_rows else None
    digitised = root / PUBLISHED_DIAGRAM
    cells = diagram_rows(diagram_ours, published_diagram(read_published(digitised)) if digitised.exists() else {}, rule,
                         diagram_full, ours_by_budget(_tables(results_dir, DIAGRAMS_FULL.get(peer, ()), BUDGET_TABLE)))
    if cells:
        paths["diagram"] = root / DIAGRAM
        full_columns = ["ours_full", "ours_full_low", "ours_full_high", "ours_full_min", "ours_full_max",
                        "difference_full", *(f"{c}_full" for c in DIAGRAM_TESTS), *_budget_columns(cells, "ours_full_at_"),
                        "our_seeds_full"] if diagram_full else []
        write_table(paths["diagram"], cells, ["variant", "T", "L", "d", "p", "theirs", "their_std", "ours", "ours_low",
                                              "ours_high", "ours_min", "ours_max", "difference", *DIAGRAM_TESTS,
                                              *full_columns, "margin", "alpha", "their_seeds", "our_seeds",
                                              "resolution", "source"],
                    digits=6)
    overlap = overlap_rows([*rows, *cells])
    paths["overlap"] = root / OVERLAP
    write_table(paths["overlap"], overlap, digits=6)
    return Comparison(peer, root, rule, tolerance, rows, dips, cells, paths, overlap)
