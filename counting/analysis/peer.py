"""Our numbers beside a published peer's: Behrens, Biggio and Zdeborova, *Counting in Small
Transformers* (arXiv 2407.11542; code SPOC-group/counting-attention at 507b82d).

`results/peer_behrens/published.csv` holds every number their repository prints (notebook
outputs; each row names its notebook, cell and wandb run): the final validation accuracy of
each run of their Fig. 7a (dot+softmax, T = 64, L = 10, p = 64, d in 2..128) and Fig. 7b
(d = 64, p in 2..128), with mean, std, min and max over their 5 seeds derived from the printed
runs. `compare` joins their mean per (d, p) with ours (mean over our seeds with its bootstrap
interval, the seed range, and the difference), from our tables of the same cells.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from counting.analysis import stats

PUBLISHED = "published.csv"
COMPARE = "compare.csv"
VARIANTS = {"dot+sftm": "dot+softmax", "dotBOS+sftm": "dotBOS+softmax", "linear+sftm": "linear+softmax"}  # theirs -> ours


def read_published(path: Path) -> list[dict]:
    """The peer's numbers as the notes recorded them (strings; not a table this suite writes)."""
    import csv

    from counting.columns import TableError

    if not Path(path).exists():
        raise TableError(f"published: {path} does not exist")
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))


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


def ours_by_cell(rows: list[dict], ci: float = 0.95, boot: int = 2000, seed: int = 0) -> dict[tuple, dict]:
    """(arch, T, L, d, p) -> our mean accuracy over seeds, its interval and seed range."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        groups[(r.get("arch"), r["m"], r["n"], r["d"], r["w"])].append(r["accuracy"])
    rng = np.random.default_rng(seed)
    out = {}
    for key, acc in groups.items():
        acc_S = np.array(acc, float)
        low, high = stats.bootstrap_interval((acc_S,), np.mean, ci=ci, n_resamples=boot, rng=rng)
        out[key] = {"ours": float(acc_S.mean()), "ours_low": low, "ours_high": high, "ours_min": float(acc_S.min()),
                    "ours_max": float(acc_S.max()), "our_seeds": len(acc_S)}
    return out


def ours_by_budget(budget_rows: list[dict]) -> dict[tuple, dict]:
    """(arch, T, L, d, p) -> {"ours_at_<steps>": our mean accuracy after that many steps}, from
    the budget study's rows (budget.csv: every model read at each budget), so the comparison
    shows how far from converged our numbers are."""
    groups: dict[tuple, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in budget_rows:
        groups[(r.get("arch"), r["m"], r["n"], r["d"], r["w"])][int(r["budget"])].append(r["accuracy"])
    return {key: {f"ours_at_{b}": float(np.mean(acc)) for b, acc in sorted(by.items())} for key, by in groups.items()}


def compare(published: list[dict], ours: dict[tuple, dict], tolerance: float = 0.02,
            budgets: dict[tuple, dict] | None = None, full: dict[tuple, dict] | None = None) -> list[dict]:
    """One row per published cell: theirs (with the notebook and cell it comes from), ours
    (where trained), the difference, whether theirs lies in our seed range widened by
    `tolerance`, (from `ours_by_budget`) our mean at each budget read, and (from `ours_by_cell`
    of the runs at their full training length, where there are any) the same four columns with
    the suffix `_full`."""
    out = []
    for p in published_means(published):
        row = dict(p)
        key = (p["variant"], p["T"], p["L"], p["d"], p["p"])
        row.update((budgets or {}).get(key, {}))
        row.update(_joined(p["theirs"], ours.get(key), tolerance, ""))
        if full is not None:
            row.update(_joined(p["theirs"], full.get(key), tolerance, "_full"))
        out.append(row)
    return out


def _joined(theirs: float, mine: dict | None, tolerance: float, suffix: str) -> dict:
    """Our cell's columns (named with `suffix`), the difference to theirs and the agreement."""
    if mine is None:
        return {f"ours{suffix}": math.nan, f"difference{suffix}": math.nan, f"agrees{suffix}": ""}
    row = {k.replace("ours", f"ours{suffix}", 1) if k.startswith("ours") else f"{k}{suffix}": v for k, v in mine.items()}
    row[f"difference{suffix}"] = mine["ours"] - theirs
    row[f"agrees{suffix}"] = bool(mine["ours_min"] - tolerance <= theirs <= mine["ours_max"] + tolerance)
    return row
