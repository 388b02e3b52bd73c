"""The adaptive search for m_thr (`adaptive.*`, AdaptiveConfig): spend the compute where the
boundary is.

A job's search trains the coarse grid `adaptive.m` first (one cohort: every m x seed x halving
setting), then, round by round, brackets the drop: lo is the largest tried m below the first
m whose statistic falls below tau (the best model of the cell by default: its capacity, which
composes with successive halving), hi that first failing m. Each round trains `per_round`
new m values spread geometrically inside (lo, hi) (integers, when `integer`), as one cohort,
until hi / lo <= 1 + ratio, or lo and hi are neighbouring integers, or the rounds run out.
m_thr is censored above when every m passes (with `grow`, the grid first doubles its largest m,
up to `grow` times) and below when the smallest fails. The estimate interpolates log-linearly
between lo and hi, as the analysis's `interpolated` method does.

On the training support (`exact_share`, `exact_logistic`) the statistic is the share of a cell's
seeds that count exactly, cut at 1/2: `exact_share` brackets its first crossing as above;
`exact_logistic` fits P(exact | log m) over every model tried (the analysis's exact_logistic)
and brackets the fit's m_50 between the tried m on either side of it, which it reports.

Every trained cell is an ordinary record, so the experiment's table, analysis, figures and
budget study include them; `search.csv` lists the rounds. The search is deterministic in its
records: run again (or after a kill) it retrains nothing it has and continues where it was.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence

import numpy as np

from counting.config import AdaptiveConfig, CohortConfig, RunConfig

DONE, CENSORED_ABOVE, CENSORED_BELOW, ROUNDS_OUT = "located", "censored above", "censored below", "rounds used up"
SHARES = ("exact_share", "exact_logistic")  # statistics of the share of seeds exact: cut at 1/2, as m_50 is


@dataclasses.dataclass(frozen=True)
class Bracket:
    """Where m_thr lies among the m tried: the largest passing m below the first failing one, the first failing
    m, the estimate between them (log-linear in m), and whether the search is done (located, censored, rounds
    used up) or refines."""

    lo: int | None  # the largest passing m below the first failing one
    hi: int | None  # the first failing m
    estimate: float  # m_thr, interpolated between lo and hi (or the censoring edge)
    status: str  # "" while it refines; DONE, CENSORED_ABOVE, CENSORED_BELOW, ROUNDS_OUT


def bracket(stat: dict[int, float], tau: float, cfg: AdaptiveConfig) -> Bracket:
    """Where the drop lies among the m tried so far (statistic per m)."""
    m_K = sorted(stat)
    fails = [m for m in m_K if stat[m] < tau]
    if not fails:
        return Bracket(m_K[-1], None, float(m_K[-1]), CENSORED_ABOVE)
    hi = fails[0]
    if hi == m_K[0]:
        return Bracket(None, hi, float(hi), CENSORED_BELOW)
    lo = max(m for m in m_K if m < hi)
    a, b = stat[lo], stat[hi]
    frac = (a - tau) / (a - b) if a > b else 0.0
    estimate = float(math.exp(math.log(lo) + min(max(frac, 0.0), 1.0) * (math.log(hi) - math.log(lo))))
    close = hi / lo <= 1 + cfg.ratio or (cfg.integer and hi - lo <= 1)
    return Bracket(lo, hi, estimate, DONE if close else "")


def fitted(outcomes: dict[int, np.ndarray], cfg: AdaptiveConfig) -> Bracket:
    """Where the logistic fit of P(exact | log m) over every model tried (the analysis's
    exact_logistic: {m: the cell's exact outcomes, 0/1}) crosses 1/2: censored above when no
    model fails or the crossing lies at or past the largest m tried, below when no model is
    exact or it lies before the smallest; else bracketed by the tried m on either side of it,
    done when those are within the ratio (or neighbouring integers). The estimate is the
    fit's m_50, not an interpolation between the two."""
    from counting.analysis.exactness import logistic_m50

    m_K = sorted(outcomes)
    y_N = np.concatenate([np.asarray(outcomes[m], np.float64) for m in m_K])
    m50 = logistic_m50(outcomes) if 0 < y_N.sum() < len(y_N) else (math.inf if y_N.all() else 0.0)
    if m50 >= m_K[-1]:
        return Bracket(m_K[-1], None, float(m_K[-1]), CENSORED_ABOVE)
    if m50 < m_K[0]:
        return Bracket(None, m_K[0], float(m_K[0]), CENSORED_BELOW)
    lo, hi = max(m for m in m_K if m <= m50), min(m for m in m_K if m > m50)
    close = hi / lo <= 1 + cfg.ratio or (cfg.integer and hi - lo <= 1)
    return Bracket(lo, hi, m50, DONE if close else "")


def inside(lo: int, hi: int, count: int, integer: bool, tried: set[int],
           allowed: Sequence[int] | None = None) -> list[int]:
    """Up to `count` new m values spread geometrically strictly inside (lo, hi); with
    `allowed` (a fixed grid: a replay on trained cells), the untried grid values nearest
    (in log m) to those points."""
    points = np.geomspace(lo, hi, count + 2)[1:-1]
    if allowed is not None:
        pool, picks = sorted(m for m in allowed if lo < m < hi and m not in tried), set()
        for p in points:
            if pool:
                best = min(pool, key=lambda m: abs(math.log(m / p)))
                picks.add(best)
                pool.remove(best)
        return sorted(picks)
    values = sorted({int(np.rint(p)) for p in points} if integer else {int(p) for p in points})
    new = [m for m in values if lo < m < hi and m not in tried]
    if integer and not new:  # rounding met the ends: the nearest untried integers inside
        new = [m for m in range(lo + 1, hi) if m not in tried][:count]
    return new


@dataclasses.dataclass
class Round:
    """One round of the search: its index, the m values it trained, and the bracket after it."""

    index: int
    m_tried: list[int]
    bracket: Bracket


def search(train: Callable[[list[int]], dict], tau: float, cfg: AdaptiveConfig,
           allowed: Sequence[int] | None = None) -> list[Round]:
    """The rounds of one search: `train(m values)` trains those cells (or finds them trained)
    and returns the statistic of every cell tried so far (for `exact_logistic`: each cell's
    exact outcomes, 0/1 per model). `allowed`: the m values it may try (a replay on a grid
    that was trained already; default any)."""
    locate = (lambda stat, _tau, c: fitted(stat, c)) if cfg.statistic == "exact_logistic" else bracket
    rounds, stat = [], {}
    m_next, grows = list(cfg.m), cfg.grow
    index = 0
    while index <= cfg.rounds:
        stat = train(m_next)
        b = locate(stat, tau, cfg)
        rounds.append(Round(len(rounds), m_next, b))
        if b.status == CENSORED_ABOVE and grows:  # every m passes: double the largest (not a refinement round)
            grown = 2 * max(stat) if allowed is None else min((m for m in allowed if m >= 2 * max(stat)), default=None)
            if grown:  # (a fixed grid may have nothing that large)
                m_next, grows = [grown], grows - 1
                continue
        index += 1
        if b.status:
            return rounds
        m_next = inside(b.lo, b.hi, cfg.per_round, cfg.integer, set(stat), allowed)
        if not m_next:
            rounds[-1] = Round(rounds[-1].index, rounds[-1].m_tried, dataclasses.replace(b, status=DONE))
            return rounds
    last = rounds[-1]
    rounds[-1] = Round(last.index, last.m_tried, dataclasses.replace(last.bracket, status=ROUNDS_OUT))
    return rounds


def cell_statistic(records: Sequence[dict], statistic: str, worst: Sequence[float] | None = None,
                   exact: float = 0.99) -> float | np.ndarray:
    """A cell's statistic from its models' records: the best accuracy, or the mean over seeds
    (of the setting a halving race promoted, where one ran); `exact_best`, `exact_mean`: the
    same of the models' worst-family accuracies (`worst`, in the order of the records);
    `exact_share`: the share of the promoted seeds whose worst family reaches `exact`;
    `exact_logistic`: those seeds' outcomes (1.0 exact, 0.0 not), for the fit."""
    acc = [r["metrics"]["accuracy"] for r in records] if worst is None else list(worst)
    if statistic.endswith("best"):
        return float(max(acc))
    promoted = [a for a, r in zip(acc, records) if r.get("halving", {}).get("promoted", True)] or acc
    if statistic in SHARES:
        outcomes = (np.asarray(promoted, np.float64) >= exact).astype(np.float64)
        return outcomes if statistic == "exact_logistic" else float(outcomes.mean())
    return float(np.mean(promoted))


def run(job, train_members: Callable[[list[RunConfig]], object], say: Callable[[str], None] = print) -> list[dict]:
    """The search of one job: trains round by round through `train_members` (the runner) and
    returns its search.csv rows. The job's members at each round are its cohort axes (but m)
    times the round's m values."""
    from counting.store import FINISHED, read_record
    from counting.sweep.plan import expand
    from counting.sweep.runner import folder_of

    cfg, adaptive = job.config, job.config.adaptive
    exact = adaptive.statistic.startswith("exact")
    tau = 0.5 if adaptive.statistic in SHARES else cfg.analysis.exact if exact else cfg.analysis.tau
    by_m: dict[int, list[RunConfig]] = {}
    if exact and not cfg.families.size:
        raise ValueError("adaptive.statistic: an exact_* statistic needs the families (families.size > 0)")

    def train(m_values: list[int]) -> dict[int, float]:
        cohort = dataclasses.replace(cfg.cohort, m=tuple(m_values))
        members = expand(cfg.run, cohort)
        train_members(members)
        for m in m_values:
            by_m[m] = [c for c in members if c.task.m == m]
        stat = {}
        for m, cs in by_m.items():
            pairs = [(c, read_record(folder_of(c))) for c in cs]
            usable = [(c, r) for c, r in pairs if r is not None and r.get("status") in FINISHED]
            if not usable:
                continue
            worst = [families_of(c).get("worst", float("nan")) for c, _ in usable] if exact else None
            stat[m] = cell_statistic([r for _, r in usable], adaptive.statistic, worst, cfg.analysis.exact)
        return stat

    evaluator = None

    def families_of(c: RunConfig) -> dict:
        nonlocal evaluator
        from counting.evaluation.evaluate import Evaluator, evaluate_families
        from counting.tasks import NUM_SPECIAL

        if evaluator is None:
            evaluator = Evaluator(max(adaptive.m) * 2 ** adaptive.grow + NUM_SPECIAL)  # the largest m it may try
        return evaluate_families(folder_of(c), c, evaluator, cfg.families.size, cfg.families.seed)

    rounds = search(train, tau, adaptive)
    run_cfg = cfg.run
    rows = []
    for r in rounds:
        b = r.bracket
        rows.append({"task": run_cfg.task.name, "d": run_cfg.model.d, "n": run_cfg.task.n, "w": run_cfg.model.w,
                     "statistic": adaptive.statistic,
                     "round": r.index, "m_tried": " ".join(map(str, r.m_tried)), "lo": b.lo, "hi": b.hi,
                     "estimate": b.estimate, "status": b.status or "refining", "tau": tau, "ratio": adaptive.ratio,
                     "models": sum(len(by_m[m]) for m in r.m_tried if m in by_m)})
        say(f"search d={run_cfg.model.d} round {r.index}: m {r.m_tried} -> bracket [{b.lo}, {b.hi}], "
            f"m_thr ~ {b.estimate:.3g} {b.status or '(refining)'}")
    return rows


def members_of(job) -> list[RunConfig]:
    """The members of the search's first round (the coarse grid): what a job is planned and
    checked with before any compute."""
    from counting.sweep.plan import expand

    cohort = dataclasses.replace(job.config.cohort, m=job.config.adaptive.m)
    return expand(job.config.run, CohortConfig.from_dict(dataclasses.asdict(cohort)))


def cell_file(job) -> str:
    """The name of a job's search rows under <experiment>/search/: one file per job (its run
    and its search)."""
    import hashlib

    adaptive = dataclasses.asdict(job.config.adaptive)
    if not adaptive["grow"]:  # the key of a search from before `grow` existed: its folder keeps its name
        del adaptive["grow"]
    key = json.dumps([job.cfg.identity(), adaptive], sort_keys=True, default=list)
    return hashlib.sha256(key.encode()).hexdigest()[:16] + ".json"
