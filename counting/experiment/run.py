"""An experiment end to end, as functions: plan every cell, train, then aggregate, evaluate
out of distribution, analyse, run the budget study and draw the figures.

    from counting.experiment import run_experiment
    result = run_experiment("quick", ["model.d=4,8", "train.steps=200"], results_dir="out")
    result.rows, result.thresholds, result.paths["figures"]

`counting-train -m experiment=NAME` is the same pipeline driven by Hydra (one job per cell,
through any launcher: local, SLURM): each job calls `plan_job` and `train_job`, and the
sweep's end calls `finish`. The library trains cell by cell as Hydra's jobs do, so both give
the same table.
"""

from __future__ import annotations

import dataclasses
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from counting.config import ConfigError, JobConfig, RunConfig
from counting.experiment.compose import compose, split_cells, sweep_arguments


@dataclasses.dataclass
class Job:
    """What one job (one cell of a sweep) trains: checked, before any compute."""

    config: JobConfig
    members: list[RunConfig]

    @property
    def cfg(self) -> RunConfig:
        return self.config.run


def plan_job(raw: DictConfig | Mapping[str, Any]) -> Job:
    """A composed config -> Job, or a ConfigError: every field of the run, the cohort axes,
    what follows the sweep (ood, analysis), the rerun policy, and that one member fits in
    memory."""
    if isinstance(raw, DictConfig):
        raw = OmegaConf.to_container(OmegaConf.masked_copy(raw, [k for k in raw if k != "hydra"]), resolve=True)
    config = JobConfig.from_dict({k: v for k, v in raw.items() if k != "hydra"})
    from counting.sweep.plan import expand, group, split_to_fit  # imports jax

    if config.adaptive.active:  # the first round (the coarse grid); later rounds refine inside it
        from counting.sweep.search import members_of

        members = members_of(Job(config, []))
    else:
        members = expand(config.run, config.cohort)
    for cohort in group(members):
        split_to_fit(cohort, config.cohort.max_models)  # ConfigError when one member does not fit
    return Job(config, members)


def train_job(job: Job, show_progress: bool = True, on_members: Callable[[list], None] | None = None):
    """Trains what the job's members need (see counting.sweep.runner), or runs its adaptive search
    round by round (counting.sweep.search: its rows go to <experiment>/search/); returns the
    SweepReport. `on_members(hashes)`: told the run ids of every round before it trains."""
    from counting.sweep.runner import SweepReport, execute_many

    def train(members):
        if on_members is not None:
            on_members([m.hash() for m in members])
        return execute_many(members, max_models=job.config.cohort.max_models, show_progress=show_progress,
                            rerun=job.config.rerun, compact=job.config.cohort.compact,
                            per_call=job.config.cohort.per_call, sizes=job.config.cohort.compact_sizes)

    if not job.config.adaptive.active:
        return train(job.members)
    from counting.store import Store
    from counting.store.atomic import atomic_write_json
    from counting.sweep import search

    total = SweepReport()

    def train_round(members):
        report = train(members)
        for field in ("trained", "skipped", "copied", "failed"):
            getattr(total, field).extend(getattr(report, field))
        for why, count in report.retrained.items():
            total.retrained[why] = total.retrained.get(why, 0) + count
        job.members = list(dict.fromkeys([*job.members, *members]))

    rows = search.run(job, train_round)
    store = Store(job.cfg.results_dir, job.cfg.experiment)
    atomic_write_json(store.path(SEARCH_DIR) / search.cell_file(job), rows)
    return total


SEARCH_DIR, SEARCH_TABLE = "search", "search.csv"


@dataclasses.dataclass
class Plan:
    """Every cell of an experiment, composed and checked."""

    name: str  # the results folder's name
    results_dir: str
    cells: list[tuple[list[str], Job]]  # (the cell's sweep overrides, its job)

    @property
    def hashes(self) -> set[str]:
        return {m.hash() for _, job in self.cells for m in job.members}


def plan_experiment(name: str, overrides: Sequence[str] = (), results_dir: str | Path | None = None) -> Plan:
    """Composes and checks every cell of experiment `name` (sweep overrides key=a,b expand into
    cells) before any compute; ConfigError naming the first bad cell."""
    overrides = list(overrides) + ([f"results_dir={results_dir}"] if results_dir is not None else [])
    base = [o for o in overrides if not _is_sweep(o)]
    master = compose([f"experiment={name}", *base], return_hydra_config=True)
    arguments = [a for a in sweep_arguments(master) if not a.startswith("experiment=")] + overrides
    cells = []
    grid = split_cells(arguments)
    for i, cell in enumerate(grid):
        try:
            job = plan_job(compose([f"experiment={name}", *cell]))
        except ConfigError as err:
            shown = " ".join(o for o in cell if not o.startswith(("hydra.", "results_dir=")))
            raise ConfigError(f"cell {i + 1}/{len(grid)} ({shown}): {err}") from None
        cells.append(([o for o in cell if o not in base], job))
    first = cells[0][1].cfg
    return Plan(first.experiment, first.results_dir, cells)


def _is_sweep(override: str) -> bool:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_override(override).is_sweep_override()


@dataclasses.dataclass
class ExperimentResult:
    """What an experiment wrote: its table, analysis and files, and what went wrong."""

    name: str
    root: Path
    rows: list[dict] = dataclasses.field(default_factory=list)  # table.csv, one row per model
    analysis: Any = None  # counting.analysis.analyze.Analysis
    paths: dict[str, Path] = dataclasses.field(default_factory=dict)  # table, cells, thresholds, fit, figures, ...
    figures: list[Path] = dataclasses.field(default_factory=list)  # the PNG files
    failed: list[str] = dataclasses.field(default_factory=list)  # failed cells and failed steps, one line each
    lines: list[str] = dataclasses.field(default_factory=list)  # the summary, as printed

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def thresholds(self) -> list[dict]:
        return self.analysis.threshold_rows if self.analysis is not None else []


def finish(results_dir: str | Path, name: str, job: JobConfig, own: set[str] | None = None,
           say: Callable[[str], None] = print) -> ExperimentResult:
    """After a sweep: aggregate the experiment's table; report this sweep's failed cells (the
    run ids in `own`; None: every row); evaluate out of distribution where `job.ood` has a
    grid; analyse the table (thresholds, fit, budget study); draw the figures. A step that
    raises is reported (`failed`) and the steps that do not need it still run."""
    from counting.store import Store
    from counting.store.aggregate import aggregate, failures

    store = Store(results_dir, name)
    result = ExperimentResult(name, store.root)
    families = job.families

    def tell(line: str) -> None:
        result.lines.append(line)
        say(line)

    def step(label: str, fn):
        try:
            return fn()
        except Exception as err:  # report (on stderr), keep going with the steps that do not need it
            line = f"sweep {name}: step '{label}' failed: {type(err).__name__}: {err}"
            result.lines.append(line)
            print(line, file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            result.failed.append(f"step {label}: {type(err).__name__}: {err}")
            return None

    if families.size and store.has_runs():  # before the table: its rows carry each model's worst family
        from counting.evaluation.evaluate import families_experiment

        out = step("families", lambda: families_experiment(results_dir, name, families.size, families.seed, log=tell))
        if out is not None:
            result.paths["families"] = out[0]
        from counting.evaluation.exposure import support_table  # each family's class: its share of the training data
        from counting.store import FINISHED, read_record

        records = [read_record(f) for f in store.run_folders()]
        cfgs = [RunConfig.from_record(r["config"]) for r in records if r and r.get("status") in FINISHED]
        out = step("support", lambda: support_table(store.root, cfgs))
        if out is not None:
            result.paths["support"] = out
    out = step("aggregate", lambda: aggregate(results_dir, name))
    if out is None:
        return result
    searched = step("search table", lambda: search_table(store))
    if searched:
        result.paths["search"] = searched
    result.paths["table"], result.rows = out
    mine = [r for r in result.rows if own is None or r["hash"] in own]
    failed = failures(mine)
    missing = sorted((own or set()) - {r["hash"] for r in result.rows})
    tell(f"sweep {name}: {len(mine)} models of this sweep, {len(failed) + len(missing)} failed; "
         f"table ({len(result.rows)} models): {result.paths['table']}")
    for r in failed:
        tell(f"  FAILED d={r['d']} m={r['m']} n={r['n']} seed={r['seed']} ({r['hash']}): {r['error']}")
        result.failed.append(f"cell {r['hash']}: {r['error']}")
    for h in missing:
        tell(f"  FAILED {h}: no record (the job did not get to it)")
        result.failed.append(f"cell {h}: no record")
    if len(failures(result.rows)) == len(result.rows):
        return result
    _after(store, job, result, step, tell)
    return result


def search_table(store) -> Path | None:
    """search.csv from the adaptive search's rows of every job (<experiment>/search/*.json)."""
    import json

    from counting.store import write_table

    files = sorted(store.path(SEARCH_DIR).glob("*.json"))
    if not files:
        return None
    rows = [r for f in files for r in json.loads(f.read_text())]
    rows.sort(key=lambda r: (r["task"], r["n"], r["w"], r["d"], r.get("statistic", ""), r["round"]))
    path = store.path(SEARCH_TABLE)
    write_table(path, rows, ["task", "n", "w", "d", "statistic", "round", "m_tried", "lo", "hi", "estimate", "status"],
                digits=6)
    return path


def _after(store, job: JobConfig, result: ExperimentResult, step, tell) -> None:
    from counting.analysis.analyze import analyze, headline, report, write
    from counting.analysis.budget import analyze_budgets, convergence_report, write_budget_table
    from counting.columns import read_table
    from counting.store import TABLE

    cfg, grid = job.analysis, job.ood
    if grid.n or grid.k:
        from counting.evaluation.evaluate import evaluate_experiment

        out = step("evaluate", lambda: evaluate_experiment(store.results_dir, store.experiment, grid, log=tell))
        if out is not None:
            result.paths["ood"] = out[0]
            tell(f"out-of-distribution table: {out[0]}")
    result.analysis = step("analyze", lambda: analyze(read_table(store.path(TABLE)), cfg))
    if result.analysis is None:
        return
    paths = step("write analysis", lambda: write(result.analysis, store.root))
    result.paths.update(paths or {})
    if any("worst" in r or "steps_to_exact" in r for r in result.rows):  # exact counting was measured
        from counting.analysis import exactness

        paths = step("exactness", lambda: exactness.write(read_table(store.path(TABLE)), store.root, cfg))
        result.paths.update(paths or {})
    for line in report(result.analysis, cfg).splitlines():
        tell(line)
    budget = None
    if cfg.budgets:
        result.paths["budget"] = step("budget table", lambda: write_budget_table(store, cfg.budgets))
        budget = step("budget study", lambda: analyze_budgets(store, cfg))
        if budget is not None:
            for line in convergence_report(budget[1]).splitlines():
                tell(line)
    from counting.plots import draw

    drawn = step("figures", lambda: draw(store.root, store.experiment, cfg, analysis=result.analysis,
                                         budget=None if budget is None else budget[0]))
    if drawn is not None:
        result.figures, line = drawn
        result.paths["figures"] = store.root / "figures"
        tell(line)
    tell(headline(result.analysis, cfg))


def run_experiment(name: str, overrides: Sequence[str] = (), results_dir: str | Path | None = None,
                   show_progress: bool = True, say: Callable[[str], None] = print) -> ExperimentResult:
    """Runs experiment `name` (experiments/NAME.yaml, with Hydra-style overrides; sweep
    overrides key=a,b add cells) from Python: plans every cell before any compute, trains
    them cell by cell, then `finish`. Sets JAX's CPU devices as the commands do (one per core)
    when JAX has not started yet, and warns in one line when it started with another count, so
    a notebook gets the CLI's numbers without a setup call. Raises ConfigError (a bad value) or DiskError (too
    little room) before any compute; a failed cell or step is in the result's `failed`."""
    from counting.runtime.devices import use_cpu_devices
    from counting.sweep.runner import check_disk

    use_cpu_devices()  # the CLI's layout (a cohort over one device per core), so its numbers; one line if JAX started otherwise
    plan = plan_experiment(name, overrides, results_dir)
    check_disk([m for _, job in plan.cells for m in job.members], plan.cells[0][1].config.rerun)
    for _, job in plan.cells:
        report = train_job(job, show_progress)
        if report.failed:
            say(report.summary())
    return finish(plan.results_dir, plan.name, plan.cells[0][1].config, plan.hashes, say)  # hashes: every round
