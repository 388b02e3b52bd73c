"""Where the compute goes: compaction, the adaptive search for m_thr and successive halving,
each against the way it replaces, measured as model-steps (what was trained) and wall time.

    python benchmarks/compute.py compaction [--d 8 16] [--tiny] [--arms off pow2 pow2_3 exact pow2_3_sync] [--cache cold|primed|warm] [--repeats 1]
    python benchmarks/compute.py search     [--d 8 16 32] [--tiny] [--seeds 2]
    python benchmarks/compute.py halving    [--d 8]    [--tiny] [--rungs [0.333]] [--eta 3]
    python benchmarks/compute.py support_search --d 32 --dense results/support_qc_d32_dense/table.csv
    python benchmarks/compute.py support_search --d 8 16 --dense results/support_qc/table.csv --replay
    python benchmarks/compute.py all --out benchmarks/compute.json

compaction  phase_qc's protocol (n = 16, w = 64, the stop rule of phase_base.yaml) at each d,
            trained in fresh folders once per arm: every member computing to the end (off),
            members that stopped leaving the program re-packed into power-of-two sizes (pow2,
            the default), into sizes 2^j and 3 * 2^j (pow2_3: less padding, more compiles) or
            into the active members' own number (exact: a compile per size); each compaction
            arm compiles the sizes it can reach next ahead, in a background thread, and its
            <arm>_sync twin (cohort.compile_ahead=false) each when it is needed. Every arm
            compiles into an empty compilation cache (--cache cold), as a new cell does;
            --cache primed runs each arm once into its empty cache first and measures the
            runs after it (each program size compiled once through the persistent cache;
            --repeats R: R measured runs per arm, the arms taking turns, medians reported).
            Ideal speedup = model-steps paid without compaction / model-steps useful (each
            member's own steps); issue 34's target: a wall-time gain (speedup - 1) of 95% of
            the ideal's.
search      the adaptive search for m_thr (search=adaptive, 10% in m) against a fixed grid with
            10% steps in m over the same range (every integer m = round(2 * 1.1^k) in 2..64), at
            the same protocol and seeds: model-steps, wall time and the two estimates (best
            model, tau = 0.9); beside them the cost of the half-octave grid of phase_qc.
support_search  the same on the training support (support_base.yaml's protocol): the preset with
            adaptive.statistic=exact_share and =exact_logistic against a committed dense grid
            (--dense: its table, seeds and model-steps), the estimates being the first crossing
            of the share of seeds exact at 1/2 and the logistic m_50; trained in a fresh folder, or
            (--replay) searching the dense grid's own trained cells, without training.
halving     successive halving over lr x weight decay (search=halving) against the full
            optimiser grid trained to the budget, on a few cells: model-steps, and whether each
            cell's best accuracy is the same within 0.01; and, from the full grid's metrics,
            how well a rung at 1/9 .. 2/3 of the budget ranks the settings as the end does
            (Spearman's rho per cell, and whether the cell's best setting survives the rung).

Each measurement runs `counting.experiment.run_experiment` in a subprocess of its own (fresh
JAX, the persistent compilation cache as the commands use it). `--tiny` shrinks everything to
a smoke test of a minute or two (its runs end with the table, the search's table and the
analysis, not the figures). Prints its figures; `--out` also writes them as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from counting.runtime.devices import CACHE_ENV
from counting.sweep.search import SHARES as SUPPORT_STATISTICS  # the support protocol's searched statistics

FINE_GRID = sorted({round(2 * 1.1**k) for k in range(37) if round(2 * 1.1**k) <= 64})
HALF_OCTAVES = [2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64]


def run(experiment: str, overrides: list[str], results_dir: Path, cache: Path | None = None) -> dict:
    """One experiment in a fresh process: wall time and what every record says it trained.
    `cache`: the persistent compilation cache's folder for it (default: the commands' own)."""
    code = (
        "import json, sys\n"
        "from counting.experiment import run_experiment\n"  # it sets the devices and the cache, as the commands do
        f"r = run_experiment({experiment!r}, {overrides!r}, results_dir={str(results_dir)!r}, show_progress=False,"
        " say=lambda line: None)\n"
        "print(json.dumps({'ok': r.ok, 'failed': r.failed, 'rows': r.rows, 'thresholds': r.thresholds,"
        " 'cells': r.analysis.cell_rows if r.analysis else []}, default=str))\n"
    )
    t0 = time.perf_counter()
    env = os.environ | ({CACHE_ENV: str(cache)} if cache is not None else {})
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{experiment} {overrides}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_s"] = wall
    records = [json.loads(p.read_text()) for p in (results_dir / out_name(overrides, experiment) / "runs").glob("*/record.json")]
    out["layouts"] = [rec["layout"] for rec in records]
    # a cohort's members share its loop's times: the sum over distinct cohorts (first member's row)
    loops = {(rec["layout"].get("members"), rec.get("train_s"), rec.get("compile_s")) for rec in records}
    out["train_s"] = sum(t or 0 for _, t, _ in loops)
    out["compile_s"] = sum(c or 0 for _, _, c in loops)
    return out


def out_name(overrides: list[str], experiment: str) -> str:
    names = [o.split("=", 1)[1] for o in overrides if o.startswith("name=")]
    return names[-1] if names else experiment


def useful_steps(rows: list[dict]) -> int:
    return int(sum(r["steps"] for r in rows))


def paid_steps(layouts: list[dict], rows: list[dict]) -> int:
    """Model-steps the programs ran: per program segment, its members (rows) times its steps."""
    longest = max(r["steps"] for r in rows)
    segments = next((lay["segments"] for lay in layouts if "segments" in lay), None)
    if not segments:  # one program throughout: its rows (members and pads) to the longest member's end
        return max(lay.get("members", len(rows)) for lay in layouts) * longest
    seen = sorted({(s["from_step"], s["members"]) for lay in layouts for s in lay.get("segments", [])})
    total = 0
    for i, (start, members) in enumerate(seen):
        end = seen[i + 1][0] if i + 1 < len(seen) else longest
        total += members * (end - start)
    return total


def protocol(d: int, tiny: bool) -> list[str]:
    base = ["experiment=phase_qc", f"model.d={d}", "analysis.budgets=[]", "families.size=0"]
    if tiny:
        base += ["train.steps=200", "train.eval_every=50", "train.stop.patience=2", "cohort.m=[2,4,8]",
                 "cohort.seed=[0,1]", "task.eval_size=256",
                 "after=[aggregate,search,analyze]"]  # the steps whose tables the benchmark reads; no figures drawn
    return base


RULES = ("pow2", "pow2_3", "exact")  # compaction's size rules (counting.sweep.sizes.SIZES)
ARMS = {"off": ["cohort.compact=false"]}  # compaction's arms: each rule compiling ahead, and its _sync twin
ARMS |= {rule: ["cohort.compact=true", f"cohort.compact_sizes={rule}", "cohort.compile_ahead=true"] for rule in RULES}
ARMS |= {f"{rule}_sync": ["cohort.compact=true", f"cohort.compact_sizes={rule}", "cohort.compile_ahead=false"]
         for rule in RULES}
# ..._sync: each smaller program compiled when the compaction needs it, not ahead in the background


def compaction(ds: list[int], tiny: bool, arms: list[str] | None = None, cache: str = "cold",
               repeats: int = 1) -> list[dict]:
    """`cache`: cold = every arm compiles into an empty compilation cache of its own (what a new
    cell costs, and what compiling ahead can hide); primed = the same, but the arm's cohort runs
    once before into that cache, and the runs after it are measured (every program size compiled
    once through the persistent cache, as the later cells of a sweep of one shape find it);
    warm = the commands' own cache. `repeats`: measured runs per arm, the arms taking turns
    (off, exact, off, exact, ...), so that a slow spell of a shared host falls on both; the
    figures are each arm's medians, every run's kept in `runs_<arm>`."""
    arms = arms or ["off", "pow2", "pow2_3", "exact"]
    if repeats < 1:
        raise SystemExit(f"--repeats: must be at least 1, got {repeats}")
    if repeats > 1 and cache == "cold":
        raise SystemExit("--repeats: needs --cache primed or warm (a cold cache is empty once per arm)")
    out = []
    for d in ds:
        row = {"benchmark": "compaction", "d": d, "cache": cache, "repeats": repeats}
        runs: dict[str, list[dict]] = {arm: [] for arm in arms}
        with contextlib.ExitStack() as stack:
            tmp = {arm: Path(stack.enter_context(tempfile.TemporaryDirectory())) for arm in arms}
            jax_cache = {arm: tmp[arm] / "jax-cache" if cache in ("cold", "primed") else None for arm in arms}
            for arm in arms if cache == "primed" else ():  # the same cohort once before, into the arm's own cache
                row[f"prime_wall_s_{arm}"] = run("phase_qc", protocol(d, tiny)[1:] + ARMS[arm], tmp[arm] / "prime",
                                                 jax_cache[arm])["wall_s"]
            for i in range(repeats):
                for arm in arms:
                    runs[arm].append(run("phase_qc", protocol(d, tiny)[1:] + ARMS[arm], tmp[arm] / f"measured{i}",
                                         jax_cache[arm]))
        for arm in arms:
            times = [{"wall_s": r["wall_s"], "train_s": r["train_s"], "compile_s": r["compile_s"],
                      "cohort_s": r["train_s"] + r["compile_s"]} for r in runs[arm]]  # cohort: setup, compiles, loop
            row[f"runs_{arm}"] = times
            for key in ("wall_s", "train_s", "compile_s", "cohort_s"):
                row[f"{key}_{arm}"] = float(np.median([t[key] for t in times]))
            r = runs[arm][-1]
            longest = max(x["steps"] for x in r["rows"])
            row[f"paid_{arm}"] = paid_steps(r["layouts"], r["rows"])  # program rows (pad rows too) x steps
            row[f"sizes_{arm}"] = sorted({s["members"] for lay in r["layouts"] for s in lay.get("segments", [])},
                                         reverse=True)
            row["useful"] = useful_steps(r["rows"])
            row["ideal_speedup"] = len(r["rows"]) * longest / row["useful"]  # paid without compaction / useful
            row[f"ideal_{arm}"] = row["ideal_speedup"]  # the arm's own members' stops (its floats may move them)
        for arm in arms if "off" in arms else ():  # each repeat's pair: off's wall over the arm's, run beside it
            row[f"pair_speedups_{arm}"] = [a["wall_s"] / b["wall_s"] for a, b in zip(row["runs_off"], row[f"runs_{arm}"])]
        for arm in arms:
            line = (f"compaction d={d} {arm}: wall {row[f'wall_s_{arm}']:.0f} s (training loop {row[f'train_s_{arm}']:.0f} s, "
                    f"compiling {row[f'compile_s_{arm}']:.0f} s), paid {row[f'paid_{arm}']} model-steps")
            if arm != "off":
                line += f" (program sizes {row[f'sizes_{arm}']})"
            if arm != "off" and "wall_s_off" in row:
                row[f"speedup_{arm}"] = row["wall_s_off"] / row[f"wall_s_{arm}"]
                gain = row[f"ideal_{arm}"] - 1  # nothing to gain when every member runs to the end
                row[f"share_of_ideal_{arm}"] = (row[f"speedup_{arm}"] - 1) / gain if gain > 0.01 else None
                row[f"loop_speedup_{arm}"] = row["train_s_off"] / max(row[f"train_s_{arm}"], 1e-9)
                row[f"cohort_speedup_{arm}"] = row["cohort_s_off"] / max(row[f"cohort_s_{arm}"], 1e-9)
                row[f"cohort_share_of_ideal_{arm}"] = (row[f"cohort_speedup_{arm}"] - 1) / gain if gain > 0.01 else None
                share = "no" if gain <= 0.01 else f"{100 * row[f'share_of_ideal_{arm}']:.0f}% of the"
                line += (f": {row[f'speedup_{arm}']:.2f}x faster than off, {share} ideal gain "
                         f"(training loop alone {row[f'loop_speedup_{arm}']:.2f}x; the cohort, compiles included, "
                         f"{row[f'cohort_speedup_{arm}']:.2f}x")
                if gain > 0.01:
                    line += f", {100 * row[f'cohort_share_of_ideal_{arm}']:.0f}% of the ideal gain"
                line += ")"
            if repeats > 1 and arm != "off" and "wall_s_off" in row:
                print(line + f"; medians of {repeats}, pairs " +
                      ", ".join(f"{x:.2f}x" for x in row[f"pair_speedups_{arm}"]), flush=True)
                continue
            print(line, flush=True)
        print(f"compaction d={d}: ideal {row['ideal_speedup']:.2f}x (paid without compaction / useful "
              f"{row['useful']} model-steps)", flush=True)
        out.append(row)
    return out


def search(ds: list[int], tiny: bool, seeds: int = 2) -> list[dict]:
    """`seeds`: seeds 0..seeds-1 in both arms (full size only; --tiny keeps its 2)."""
    out = []
    for d in ds:
        base = protocol(d, tiny)[1:] + ([f"cohort.seed=[{','.join(map(str, range(seeds)))}]"] if not tiny else [])
        grid = [2, 3, 4, 5, 6, 8] if tiny else FINE_GRID
        with tempfile.TemporaryDirectory() as tmp:
            fine = run("phase_qc", base + [f"cohort.m=[{','.join(map(str, grid))}]", "name=fine"], Path(tmp))
        with tempfile.TemporaryDirectory() as tmp:
            preset = ["adaptive.m=[2,4,8]", "adaptive.grow=0"] if tiny else []  # the preset as users get it
            adaptive = run("phase_qc", [o for o in base if not o.startswith("cohort.m=")] + ["search=adaptive", *preset,
                                                                                            "name=adaptive"], Path(tmp))
        est = lambda r, method="best_seed": next((t["m_thr"] for t in r["thresholds"] if t["method"] == method),
                                                 float("nan"))
        best_m = lambda r: {m: round(max(x["accuracy"] for x in r["rows"] if x["m"] == m), 3)
                            for m in sorted({x["m"] for x in r["rows"]})}  # each m's best model
        row = {"benchmark": "search", "d": d, "fine_grid_m": len(grid), "seeds": len({r["seed"] for r in fine["rows"]}),
               "fine_model_steps": useful_steps(fine["rows"]), "fine_wall_s": fine["wall_s"], "fine_m_thr": est(fine),
               "adaptive_model_steps": useful_steps(adaptive["rows"]), "adaptive_wall_s": adaptive["wall_s"],
               "adaptive_m_thr": est(adaptive), "adaptive_cells": len({r["m"] for r in adaptive["rows"]})}
        row["fine_best_accuracy"], row["adaptive_best_accuracy"] = best_m(fine), best_m(adaptive)
        row["other_estimators"] = {method: (est(fine, method), est(adaptive, method))
                                   for method in ("interpolated", "learnability", "last_above")}
        row["steps_ratio"] = row["fine_model_steps"] / max(row["adaptive_model_steps"], 1)
        row["wall_ratio"] = row["fine_wall_s"] / row["adaptive_wall_s"]
        row["estimates_agree_within_10pct"] = abs(row["adaptive_m_thr"] / row["fine_m_thr"] - 1) <= 0.1
        seeds = len({r["seed"] for r in fine["rows"]})  # the protocol's seeds, 2 at full size
        row["half_octave_model_steps_estimate"] = int(row["fine_model_steps"] / len(grid) * len(HALF_OCTAVES)) \
            if not tiny else None
        print(f"search d={d}: fine grid ({len(grid)} m x {seeds} seeds) {row['fine_model_steps']} model-steps, "
              f"{row['fine_wall_s']:.0f} s, m_thr {row['fine_m_thr']:.3g}; adaptive ({row['adaptive_cells']} m) "
              f"{row['adaptive_model_steps']} model-steps, {row['adaptive_wall_s']:.0f} s, m_thr {row['adaptive_m_thr']:.3g}: "
              f"{row['steps_ratio']:.2f}x fewer model-steps, {row['wall_ratio']:.2f}x less wall time; estimates agree "
              f"within 10%: {row['estimates_agree_within_10pct']}; half-octave grid about "
              f"{row['half_octave_model_steps_estimate']} model-steps", flush=True)
        print(f"  best model per m, fine grid: {row['fine_best_accuracy']}", flush=True)
        print(f"  best model per m, adaptive: {row['adaptive_best_accuracy']}", flush=True)
        print("  other estimators (fine, adaptive): " + ", ".join(f"{k} ({a:.3g}, {b:.3g})" for k, (a, b) in
                                                             row["other_estimators"].items()), flush=True)
        out.append(row)
    return out


def support_outcomes(rows: list[dict], d: int) -> tuple[dict[int, np.ndarray], dict[int, int]]:
    """From a table's rows at d: each cell's exact outcomes (the chosen setting's seeds, 1.0 where the
    worst in-support test family reaches analysis.exact, as the analysis's exact_logistic takes them) and
    each cell's model-steps (every member, the settings a halving race stopped included)."""
    from counting.analysis.exactness import _chosen  # the analysis's rule: the promoted setting's seeds
    from counting.analysis.table import row_worst
    from counting.config import AnalysisConfig

    exact = AnalysisConfig().exact
    outcomes, steps = {}, {}
    for m in sorted({int(r["m"]) for r in rows if int(r["d"]) == d}):
        cell = [r for r in rows if int(r["d"]) == d and int(r["m"]) == m]
        outcomes[m] = np.array([float(row_worst(r)["worst"] >= exact) for r in _chosen(cell)])
        steps[m] = int(sum(int(r["steps"]) for r in cell))
    return outcomes, steps


def support_estimates(outcomes: dict[int, np.ndarray]) -> dict[str, float]:
    """The two estimates of one arm's cells: the first crossing of the share exact at 1/2
    (log-linear between grid points, the analysis's `interpolated`) and the logistic m_50."""
    from counting.analysis import threshold
    from counting.analysis.exactness import logistic_m50

    m_K = np.array(sorted(outcomes))
    share_1xK = np.array([[outcomes[m].mean() for m in m_K]])
    crossing = float(threshold.interpolated(m_K, share_1xK, 0.5)[0][0])
    return {"exact_share": crossing, "exact_logistic": logistic_m50(outcomes)}


def support_search(ds: list[int], tiny: bool, dense: str | None = None, replay: bool = False,
                   statistics: list[str] | None = None, keep: str | None = None) -> list[dict]:
    """The adaptive search on the training support (support_base.yaml's protocol) against the dense
    grid in `dense` (a committed table.csv at the same seeds), once per statistic (exact_share,
    exact_logistic), from the preset search=adaptive (m = 2, 4, 8, growing to 64, three new m per round,
    10% in m). `replay`: no training: the search asks the dense grid's own trained cells (only m the
    grid has), so the two arms share every model and differ only in which cells they use; else it
    trains its own cells in a fresh folder (other cohorts than the grid's: other float paths): a
    temporary one, or `keep`/d<d>, which is kept, so a killed run resumes there (the store keeps its
    finished models and resumes a cohort from its checkpoint)."""
    import dataclasses

    from counting.experiment import plan_experiment
    from counting.store.columns import read_rows, read_table
    from counting.sweep.search import search as run_search

    rows = read_table(dense) if dense else []
    out = []
    for d in ds:
        if replay:  # the preset as a user gets it (conf/search/adaptive.yaml), not a copy of its values
            with tempfile.TemporaryDirectory() as tmp:
                plan = plan_experiment("support_base", [f"model.d={d}", "search=adaptive"], results_dir=tmp)
            preset = plan.cells[0][1].config.adaptive
        grid, grid_steps = support_outcomes(rows, d) if rows else ({}, {})
        seeds = sorted({int(r["seed"]) for r in rows if int(r["d"]) == d})
        row = {"benchmark": "support_search", "d": d, "dense": dense, "replay": replay, "seeds": seeds,
               "dense_m": sorted(grid), "dense_model_steps": sum(grid_steps.values())}
        if grid:
            row["dense_estimates"] = support_estimates(grid)
        for statistic in statistics or SUPPORT_STATISTICS:
            t0 = time.perf_counter()
            if replay:
                asked: list[int] = []

                def train(ms, statistic=statistic):
                    asked.extend(m for m in ms if m in grid)
                    return {m: (grid[m] if statistic == "exact_logistic" else float(grid[m].mean())) for m in asked}

                rounds = run_search(train, 0.5, dataclasses.replace(preset, statistic=statistic), allowed=sorted(grid))
                cells, cell_steps = {m: grid[m] for m in asked}, {m: grid_steps[m] for m in asked}
                estimate, status = rounds[-1].bracket.estimate, rounds[-1].bracket.status
                trace = [(r.m_tried, round(r.bracket.estimate, 3)) for r in rounds]
            else:
                seed_list = ",".join(map(str, seeds or ([0, 1] if tiny else [0, 1, 2])))
                overrides = [f"model.d={d}", "search=adaptive", f"adaptive.statistic={statistic}",
                             f"cohort.seed=[{seed_list}]", f"name=search_{statistic}"]
                if tiny:
                    overrides += ["train.steps=300", "train.eval_every=50", "train.stop.patience=2", "task.eval_size=128",
                                  "adaptive.m=[2,4]", "adaptive.grow=0", "families.size=64", "analysis.budgets=[]"]
                with (contextlib.nullcontext(Path(keep) / f"d{d}") if keep else tempfile.TemporaryDirectory()) as tmp:
                    r = run("support_base", overrides, Path(tmp))
                    searched = read_rows(Path(tmp) / f"search_{statistic}" / "search.csv")
                trace, status = [(x["m_tried"], x["estimate"]) for x in searched], searched[-1]["status"]
                cells, cell_steps = support_outcomes(r["rows"], d)
                estimate = float(trace[-1][1])
            own = support_estimates(cells) if len(cells) >= 2 else {}
            arm = {"cells": sorted(cells), "exact_seeds": {m: int(cells[m].sum()) for m in sorted(cells)},
                   "model_steps": sum(cell_steps.values()), "estimate": estimate,
                   "status": status, "rounds": trace, "own_estimates": own, "wall_s": time.perf_counter() - t0}
            if grid:
                target = row["dense_estimates"][statistic]
                arm["steps_ratio"] = row["dense_model_steps"] / max(arm["model_steps"], 1)
                arm["relative_error"] = estimate / target - 1
                arm["within_10pct"] = abs(arm["relative_error"]) <= 0.1
            row[statistic] = arm
            print(f"support_search d={d} {statistic} ({'replay on the dense grid' if replay else 'trained'}): cells "
                  f"{arm['cells']}, {arm['model_steps']} model-steps, estimate {estimate:.3g} ({status}); rounds {trace}"
                  + (f"; dense grid {len(grid)} cells, {row['dense_model_steps']} model-steps, estimate "
                     f"{row['dense_estimates'][statistic]:.3g}: {arm['steps_ratio']:.2f}x fewer model-steps, "
                     f"{100 * arm['relative_error']:+.0f}% (within 10%: {arm['within_10pct']})" if grid else ""),
                  flush=True)
        out.append(row)
    return out


CANDIDATE_RUNGS = (1 / 9, 1 / 6, 1 / 3, 1 / 2, 2 / 3)  # where a rung could go, as fractions of the budget


def rank_agreement(folder: Path, rows: list[dict], eta: int = 3) -> dict[str, dict]:
    """How well a rung at each candidate fraction of the budget predicts the end, from a full grid's
    metrics (every setting trained to its own stop): per cell (m) the settings (lr, weight decay)
    ranked by their mean held-out loss over seeds at the rung (a member that stopped earlier keeps
    its last value, as in a race) against the same at the end, Spearman's rho (scipy.stats)
    averaged over cells; and in how many cells the setting whose best seed ends most accurate
    (the cell's capacity) is among the best 1/eta at the rung, i.e. survives it."""
    from math import ceil

    from scipy import stats as sps

    trace = {}
    for r in rows:
        path = folder / "runs" / r["hash"]
        metrics = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines() if line.strip()]
        budget = json.loads((path / "config.json").read_text())["train"]["steps"]
        trace[r["hash"]] = (budget, [(x["step"], x["loss"]) for x in metrics if "loss" in x])
    out = {}
    for fraction in CANDIDATE_RUNGS:
        rhos, kept, cells = [], 0, 0
        for m in sorted({r["m"] for r in rows}):
            members = [r for r in rows if r["m"] == m]
            settings = sorted({(r["lr"], r["weight_decay"]) for r in members})

            def loss_at(r, end=False):
                budget, points = trace[r["hash"]]
                if end:
                    return points[-1][1]
                return next((loss for step, loss in points if step >= fraction * budget), points[-1][1])

            at_rung = [np.mean([loss_at(r) for r in members if (r["lr"], r["weight_decay"]) == s]) for s in settings]
            at_end = [np.mean([loss_at(r, True) for r in members if (r["lr"], r["weight_decay"]) == s]) for s in settings]
            rhos.append(float(sps.spearmanr(at_rung, at_end).statistic))
            best = max(members, key=lambda r: float(r["accuracy"]))
            survivors = [settings[i] for i in np.argsort(at_rung)[:ceil(len(settings) / eta)]]
            kept += (best["lr"], best["weight_decay"]) in survivors
            cells += 1
        out[f"{fraction:.3f}"] = {"spearman": float(np.nanmean(rhos)), "per_cell": rhos, "best_survives": kept,
                                  "cells": cells}
    return out


def halving(ds: list[int], tiny: bool, schedule: list[str] | None = None) -> list[dict]:
    """`schedule`: overrides of the halving arm's rungs and eta (default: the preset's)."""
    out = []
    for d in ds:
        cells = ["cohort.m=[2,4]", "cohort.seed=[0]"] if tiny else ["cohort.m=[4,8,16]", "cohort.seed=[0,1]"]
        base = protocol(d, tiny)[1:] + cells
        space = ["halving.lr=[0.001,0.003,0.01]", "halving.weight_decay=[0.0,0.01]"]
        with tempfile.TemporaryDirectory() as tmp:
            full = run("phase_qc", base + ["cohort.lr=[0.001,0.003,0.01]", "cohort.weight_decay=[0.0,0.01]", "name=full"],
                       Path(tmp))
            agreement = rank_agreement(Path(tmp) / "full", full["rows"])
        with tempfile.TemporaryDirectory() as tmp:
            sh = run("phase_qc", base + space + list(schedule or []) + ["name=sh"], Path(tmp))
        best = lambda r: {m: max(x["accuracy"] for x in r["rows"] if x["m"] == m) for m in {x["m"] for x in r["rows"]}}
        b_full, b_sh = best(full), best(sh)
        setting = lambda r: {m: max((x["accuracy"], x["lr"], x["weight_decay"]) for x in r["rows"] if x["m"] == m)[1:]
                             for m in {x["m"] for x in r["rows"]}}  # (lr, weight decay) of each cell's best member
        same = {m: abs(b_full[m] - b_sh[m]) <= 0.01 for m in b_full}
        row = {"benchmark": "halving", "d": d, "schedule": list(schedule or []), "full_model_steps": useful_steps(full["rows"]),
               "halving_model_steps": useful_steps(sh["rows"]), "full_wall_s": full["wall_s"], "halving_wall_s": sh["wall_s"],
               "best_full": b_full, "best_halving": b_sh, "same_best_within_0.01": same,
               "best_setting_full": setting(full), "best_setting_halving": setting(sh)}
        row["steps_ratio"] = row["full_model_steps"] / max(row["halving_model_steps"], 1)
        row["rank_agreement"] = agreement
        for fraction, a in agreement.items():
            print(f"halving d={d}: a rung at {float(fraction):.3f} of the budget: Spearman rho {a['spearman']:.2f} with "
                  f"the end (per cell {', '.join(f'{x:.2f}' for x in a['per_cell'])}); the cell's best setting survives "
                  f"in {a['best_survives']} of {a['cells']} cells", flush=True)
        print(f"halving d={d} {' '.join(schedule or ['(preset schedule)'])}: full grid {row['full_model_steps']} model-steps ({row['full_wall_s']:.0f} s), successive "
              f"halving {row['halving_model_steps']} ({row['halving_wall_s']:.0f} s): {row['steps_ratio']:.2f}x fewer; "
              f"best accuracy per cell the same within 0.01: {sum(same.values())} of {len(same)} "
              f"(full {b_full} at (lr, wd) {row['best_setting_full']}, halving {b_sh} at {row['best_setting_halving']})",
              flush=True)
        out.append(row)
    return out


BENCHMARKS = {"compaction": (compaction, [8, 16]), "search": (search, [8, 16, 32]), "halving": (halving, [8]),
              "support_search": (support_search, [8, 16])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmark", choices=[*BENCHMARKS, "all"])
    parser.add_argument("--d", type=int, nargs="+", help="embedding dimensions (default per benchmark)")
    parser.add_argument("--tiny", action="store_true", help="a smoke test: tiny grids and budgets")
    parser.add_argument("--arms", nargs="+", choices=list(ARMS),
                        help="compaction only: which arms to train (default: off pow2 pow2_3 exact; "
                             "<arm>_sync: the same without compiling ahead)")
    parser.add_argument("--cache", choices=["cold", "primed", "warm"], default="cold",
                        help="compaction only: cold = an empty compilation cache per arm (default); primed = the same, "
                             "the arm run once into it before the measured run; warm = the commands' own")
    parser.add_argument("--repeats", type=int, default=1,
                        help="compaction only: measured runs per arm, the arms taking turns (medians reported)")
    parser.add_argument("--rungs", help="halving only: the arm's rungs, e.g. [0.333] (default: the preset's)")
    parser.add_argument("--eta", type=int, help="halving only: the arm's eta (default: the preset's)")
    parser.add_argument("--seeds", type=int, default=2, help="search only: seeds per cell in both arms (default 2)")
    parser.add_argument("--dense", help="support_search only: the dense grid's table.csv (its estimates, model-steps, seeds)")
    parser.add_argument("--replay", action="store_true",
                        help="support_search only: search the dense grid's own trained cells instead of training")
    parser.add_argument("--keep", help="support_search only: train the search arms in KEEP/d<d> (kept; a rerun resumes) "
                                       "instead of a temporary folder")
    parser.add_argument("--statistics", nargs="+", choices=SUPPORT_STATISTICS,
                        help="support_search only: the searched statistics (default both)")
    parser.add_argument("--out", help="write the rows as JSON")
    args = parser.parse_args()
    rows = []
    for name in (BENCHMARKS if args.benchmark == "all" else [args.benchmark]):
        fn, ds = BENCHMARKS[name]
        extra = {"compaction": (args.arms, args.cache, args.repeats), "search": (args.seeds,), "support_search": (args.dense, args.replay, args.statistics, args.keep),
                 "halving": ([f"halving.rungs={args.rungs}"] * bool(args.rungs) + [f"halving.eta={args.eta}"] * bool(args.eta),)}
        rows += fn(args.d or ds, args.tiny, *extra.get(name, ()))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2, default=str) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
