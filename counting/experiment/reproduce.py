"""Does a committed experiment reproduce here? Retrain a sample of its cells and compare.

A model's numbers reproduce bit for bit only under the same code fingerprint, the same kind
of machine (CPU model and instruction-set level, or the accelerator), the same jax/jaxlib and
the same layout of members (counting.runtime.machine). Where all of these match the committed row,
the comparison is exact: every accuracy, baseline, loss, step count and stop reason must be
equal. Elsewhere it is statistical, with stated tolerances:

- a cell (series, d, m) is *within tolerance* when the committed mean accuracy over seeds lies
  inside the rerun's seed range widened by `tolerance` (default 0.05) on each side;
- a threshold m_thr(d) is within tolerance when the committed value lies inside the rerun's
  bootstrap interval widened by the factor 1 + `ratio` (default 0.1) on each side.

Verdicts per cell: exact, within tolerance, differs, or missing (no committed row for that
model). `counting-reproduce NAME` is the command; `tests/test_reproduce.py` runs it on the
README's main job.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

EXACT_COLUMNS = ("accuracy", "baseline_accuracy", "loss", "steps", "stop_reason", "status")
MATCH_COLUMNS = ("fingerprint", "arithmetic", "jaxlib", "layout")  # what must agree for an exact comparison
TOLERANCE, RATIO = 0.05, 0.1
EXACT, WITHIN, DIFFERS, MISSING = "exact", "within tolerance", "differs", "missing"


@dataclasses.dataclass
class Reproduction:
    """The comparison of a rerun with the committed experiment: one verdict per cell and per threshold, and the
    folder the rerun trained in."""

    name: str
    cells: list[dict]  # one row per (series, d, m): committed and rerun means, the mode, the verdict
    thresholds: list[dict]  # one row per (series, d): committed m_thr, the rerun's interval, the verdict
    work_dir: Path

    @property
    def ok(self) -> bool:
        """Whether every cell and threshold is exact or within tolerance."""
        return all(r["verdict"] in (EXACT, WITHIN) for r in self.cells + self.thresholds)

    def report(self) -> str:
        """The comparison as printed: one line per cell and per threshold, then the verdicts counted."""
        lines = [f"reproduce {self.name}: {len(self.cells)} cells retrained in {self.work_dir}"]
        for r in self.cells:
            lines.append(f"  d={r['d']:<4} m={r['m']:<4} {r['series']:<24} committed {r['committed']:.4f}  "
                         f"rerun {r['rerun']:.4f} [{r['rerun_min']:.4f}, {r['rerun_max']:.4f}]  {r['mode']:<11} "
                         f"{r['verdict']}" + (f" ({r['why']})" if r.get("why") else ""))
        for r in self.thresholds:
            lines.append(f"  d={r['d']:<4} m_thr {r['series']:<18} committed {r['committed']:.3g}  rerun {r['rerun']:.3g} "
                         f"[{r['low']:.3g}, {r['high']:.3g}]  {r['verdict']}")
        counts = defaultdict(int)
        for r in self.cells:
            counts[r["verdict"]] += 1
        lines.append("  cells: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
                     + f"; thresholds: {sum(r['verdict'] == WITHIN for r in self.thresholds)} of "
                       f"{len(self.thresholds)} within tolerance")
        return "\n".join(lines)


def same_kind(committed: dict, rerun: dict) -> tuple[bool, str]:
    """Whether two rows of one model allow an exact comparison, and if not, what differs."""
    for column in MATCH_COLUMNS:
        if not committed.get(column) or committed.get(column) != rerun.get(column):
            return False, f"{column}: {committed.get(column) or 'not recorded'} here {rerun.get(column)}"
    return True, ""


def _text(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def compare(committed_rows: list[dict], rerun_rows: list[dict], tolerance: float = TOLERANCE) -> list[dict]:
    """Per (series, d, m) of the rerun: the verdict against the committed rows of the same
    models (matched by run hash)."""
    from counting.store.columns import series_columns, series_of

    by_hash = {r["hash"]: r for r in committed_rows}
    columns = series_columns(rerun_rows)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rerun_rows:
        groups[(series_of(r, columns), r["d"], r["m"])].append(r)
    out = []
    for (series, d, m), rows in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), kv[0][1], kv[0][2])):
        label = " ".join(f"{c}={v}" for c, v in zip(columns, series))
        mine = [by_hash.get(r["hash"]) for r in rows]
        acc = np.array([r["accuracy"] for r in rows], float)
        row = {"series": label, "d": d, "m": m, "seeds": len(rows), "rerun": float(acc.mean()),
               "rerun_min": float(acc.min()), "rerun_max": float(acc.max())}
        if any(c is None for c in mine):
            out.append({**row, "committed": float("nan"), "mode": "none", "verdict": MISSING,
                        "why": "no committed row for this model (another grid or run identity)"})
            continue
        committed = float(np.mean([c["accuracy"] for c in mine]))
        kinds = [same_kind(c, r) for c, r in zip(mine, rows)]
        if all(k for k, _ in kinds):
            equal = all(_text(c[col]) == _text(r[col]) for c, r in zip(mine, rows) for col in EXACT_COLUMNS)
            out.append({**row, "committed": committed, "mode": "exact", "verdict": EXACT if equal else DIFFERS,
                        "why": "" if equal else "same code, machine kind, libraries and layout, other numbers"})
        else:
            inside = acc.min() - tolerance <= committed <= acc.max() + tolerance
            out.append({**row, "committed": committed, "mode": "statistical", "verdict": WITHIN if inside else DIFFERS,
                        "why": next(why for k, why in kinds if not k)})
    return out


def compare_thresholds(committed: list[dict], rerun: list[dict], ratio: float = RATIO) -> list[dict]:
    """Per (series, d) of the rerun's interpolated thresholds: is the committed m_thr inside the
    rerun's bootstrap interval widened by the factor 1 + ratio?"""
    def key(r):
        return (r["d"], r.get("task"), r.get("n"))

    ref = {key(r): r for r in committed if r.get("method") == "interpolated"}
    out = []
    for r in rerun:
        if r.get("method") != "interpolated" or key(r) not in ref:
            continue
        c = ref[key(r)]["m_thr"]
        low, high = r["m_thr_low"] / (1 + ratio), r["m_thr_high"] * (1 + ratio)
        out.append({"series": f"task={r.get('task')} n={r.get('n')}", "d": r["d"], "committed": c, "rerun": r["m_thr"],
                    "low": low, "high": high, "verdict": WITHIN if low <= c <= high else DIFFERS})
    return out


def reproduce(name: str, overrides: Sequence[str] = (), reference_dir: str | Path = "results",
              cells: int | None = 1, work_dir: str | Path | None = None, tolerance: float = TOLERANCE,
              ratio: float = RATIO, show_progress: bool = True, say: Callable[[str], None] = print) -> Reproduction:
    """Retrains the first `cells` cells of experiment `name` (None: all) into `work_dir` (a
    fresh temporary folder by default; never the reference) and compares them with the
    committed tables under `reference_dir/<name>/`."""
    from counting.analysis.analyze import analyze
    from counting.config import AnalysisConfig
    from counting.experiment.run import plan_experiment, train_job
    from counting.store import TABLE, THRESHOLDS, Store
    from counting.store.columns import TableError, read_rows, read_table

    work_dir = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix=f"reproduce-{name}-"))
    if work_dir.resolve() == Path(reference_dir).resolve():
        raise ValueError("work_dir: must not be the reference folder (the comparison would be with itself)")
    plan = plan_experiment(name, overrides, work_dir)
    reference = Store(reference_dir, plan.name)
    if not reference.path(TABLE).exists():
        raise TableError(f"reference: {reference.path(TABLE)} does not exist (a committed experiment's folder)")
    committed = read_rows(reference.path(TABLE))
    chosen = plan.cells if cells is None else plan.cells[:cells]
    for overrides_of_cell, job in chosen:
        say(f"reproduce {plan.name}: training cell {' '.join(overrides_of_cell) or '(the only one)'} "
            f"({len(job.members)} models)")
        train_job(job, show_progress)
    from counting.store.aggregate import aggregate

    _, _ = aggregate(work_dir, plan.name)
    rows = read_table(Store(work_dir, plan.name).path(TABLE))
    wanted = {m.hash() for _, job in chosen for m in job.members}
    rows = [r for r in rows if r["hash"] in wanted]
    cell_rows = compare(committed, rows, tolerance)
    thresholds = []
    if reference.path(THRESHOLDS).exists():
        cfg = chosen[0][1].config.analysis
        analysis = analyze(rows, AnalysisConfig(tau=cfg.tau, ci=cfg.ci, boot=cfg.boot, seed=cfg.seed,
                                                mix_fingerprints=True))
        thresholds = compare_thresholds(read_rows(reference.path(THRESHOLDS)), analysis.threshold_rows, ratio)
    return Reproduction(plan.name, cell_rows, thresholds, work_dir)
