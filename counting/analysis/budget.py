"""The budget study: is a threshold a property of the model or of the training budget?

Each finished model's evaluations (metrics.jsonl) give its held-out accuracy at every budget
B: the last evaluation at or before step B (a model that stopped earlier keeps its final
accuracy, the state it was frozen in). With a constant learning rate after warmup (the phase
experiments' protocol) that is exactly what training for B steps would have given. The rows
(`budget.csv`: table.csv's columns plus `budget`) are analysed like table.csv, with the
budget as a series column (`budget_thresholds.csv`), and `budget_convergence.csv` says, per
(series, d, method), whether doubling the budget moved m_thr by less than the width of its
bootstrap interval: the suite's criterion for a converged threshold.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from counting.analysis.analyze import Analysis
from counting.store import BUDGET_CONVERGENCE, BUDGET_TABLE, BUDGET_THRESHOLDS, METRICS, Store, read_record, write_table
from counting.store.aggregate import LEAD, row_of, sort_key


def accuracy_at(rows: list[dict], budget: int) -> float | None:
    """The held-out accuracy of the last evaluation at or before `budget` steps."""
    seen = [r for r in rows if r.get("accuracy") is not None and r["step"] <= budget]
    return seen[-1]["accuracy"] if seen else None


def budget_rows(store: Store, budgets: Sequence[int]) -> list[dict]:
    """One row per finished model and budget (models without an evaluation by then: none)."""
    out = []
    for folder in store.run_folders():
        record = read_record(folder)
        if record is None or record["status"] not in ("complete", "diverged"):
            continue
        lines = (folder / METRICS).read_text().splitlines() if (folder / METRICS).exists() else []
        evals = [json.loads(line) for line in lines if line.strip()]
        base = row_of(record, folder)
        for budget in budgets:
            acc = accuracy_at(evals, budget)
            if acc is not None:
                out.append({**base, "budget": budget, "accuracy": acc, "loss": None, "seq_accuracy": None})
    return sorted(out, key=lambda r: (r["budget"], *sort_key(r)))


def write_budget_table(store: Store, budgets: Sequence[int]) -> Path:
    """Writes budget.csv of the experiment (one row per finished model and budget, the budget first) and returns
    its path."""
    path = store.path(BUDGET_TABLE)
    write_table(path, budget_rows(store, budgets), ["budget"] + LEAD)
    return path


def convergence(analysis: Analysis) -> list[dict]:
    """Per (series without budget, d, method, budget B): m_thr at B and at 2B and whether the
    move is smaller than the interval at 2B (converged), where both thresholds exist."""
    cols = analysis.columns
    if "budget" not in cols:
        return []
    at = {}
    for r in analysis.threshold_rows:
        series = tuple((c, r[c]) for c in cols if c != "budget")
        at[(series, r["d"], r["method"], r["budget"])] = r
    out = []
    for (series, d, method, budget), r in sorted(at.items(), key=lambda kv: str(kv[0])):
        nxt = at.get((series, d, method, 2 * budget))
        if nxt is None:
            continue
        width = nxt["m_thr_high"] - nxt["m_thr_low"]
        move = abs(nxt["m_thr"] - r["m_thr"])
        out.append({**dict(series), "d": d, "method": method, "budget": budget, "m_thr": r["m_thr"],
                    "budget_doubled": 2 * budget, "m_thr_doubled": nxt["m_thr"], "interval_doubled": width,
                    "censored": r["censored"] or nxt["censored"], "converged": bool(move < width or move == 0.0)})
    return out


def analyze_budgets(store: Store, cfg) -> tuple[Analysis, list[dict]]:
    """Analyses budget.csv; writes budget_thresholds.csv and budget_convergence.csv."""
    from counting.analysis.analyze import analyze
    from counting.store.columns import read_table

    analysis = analyze(read_table(store.path(BUDGET_TABLE)), cfg)
    cols = analysis.columns
    write_table(store.path(BUDGET_THRESHOLDS), analysis.threshold_rows,
                cols + ["d", "m_thr", "m_thr_low", "m_thr_high", "method", "censored"], digits=6)
    rows = convergence(analysis)
    write_table(store.path(BUDGET_CONVERGENCE), rows, [c for c in cols if c != "budget"] + ["d", "method", "budget"], digits=6)
    return analysis, rows


def convergence_report(rows: list[dict]) -> str:
    """One line per (series, d, method) at the largest doubling: converged or not."""
    last = {}
    for r in rows:
        key = tuple((k, v) for k, v in r.items() if k not in ("budget", "m_thr", "budget_doubled", "m_thr_doubled",
                                                               "interval_doubled", "censored", "converged"))
        if key not in last or r["budget"] > last[key]["budget"]:
            last[key] = r
    lines = ["budget study (m_thr when the budget doubles; converged: it moved by less than its interval):"]
    for key, r in sorted(last.items(), key=lambda kv: (str(kv[0]), kv[1]["d"])):
        series = " ".join(f"{k}={v}" for k, v in key if k not in ("task", "d", "method"))
        lines.append(f"  {series} d={r['d']:<4} {r['method']:<12} {r['budget']:>6} -> {r['budget_doubled']:<6} steps: "
                     f"m_thr {r['m_thr']:.3g} -> {r['m_thr_doubled']:.3g} (interval {r['interval_doubled']:.3g})"
                     f"{' ' + r['censored'] if r['censored'] else ''}: {'converged' if r['converged'] else 'NOT converged'}")
    return "\n".join(lines)
