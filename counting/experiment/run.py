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
        """The run the job's members derive from."""
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
    from counting.experiment.steps import check

    check(config.after)  # ConfigError naming `after` when a step does not resolve
    return Job(config, members)


def train_job(job: Job, show_progress: bool = True, on_members: Callable[[list], None] | None = None):
    """Trains what the job's members need (see counting.sweep.runner), or runs its adaptive search
    round by round (counting.sweep.search: its rows go to <experiment>/search/); returns the
    SweepReport. `on_members(hashes)`: told the run ids of every round before it trains."""
    from counting.sweep.runner import SweepReport, execute_many

    def train(members):
        if on_members is not None:
            on_members([m.hash() for m in members])
        return execute_many(members, job.config.cohort, show_progress=show_progress, rerun=job.config.rerun)

    if not job.config.adaptive.active:
        return train(job.members)
    from counting.store import SEARCH, Store
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
    atomic_write_json(store.path(SEARCH) / search.cell_file(job), rows)
    return total


@dataclasses.dataclass
class Plan:
    """Every cell of an experiment, composed and checked."""

    name: str  # the results folder's name
    results_dir: str
    cells: list[tuple[list[str], Job]]  # (the cell's sweep overrides, its job)

    @property
    def hashes(self) -> set[str]:
        """The run hashes of every member of every cell."""
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
        """Whether nothing failed (no failed cell or step)."""
        return not self.failed

    @property
    def thresholds(self) -> list[dict]:
        """The analysis's threshold rows m_thr(d), none without an analysis."""
        return self.analysis.threshold_rows if self.analysis is not None else []


def finish(results_dir: str | Path, name: str, job: JobConfig, own: set[str] | None = None,
           say: Callable[[str], None] = print) -> ExperimentResult:
    """After a sweep: the job's `after` steps in order (counting.experiment.steps; by default
    the worst-case families and their support, the table, the search's table, out of
    distribution where `job.ood` has a grid, the analysis, exactness, the budget study and the
    figures), reporting this sweep's failed cells (the run ids in `own`; None: every row). A
    step that raises is reported (`failed`) and the steps that do not need it still run."""
    from counting.experiment.steps import Finish, resolve
    from counting.store import Store

    store = Store(results_dir, name)
    result = ExperimentResult(name, store.root)
    shared = Finish(store, job, own, result, say)
    for step_name in job.after:
        resolve(step_name)(shared)
    return result


def run_experiment(name: str, overrides: Sequence[str] = (), results_dir: str | Path | None = None,
                   show_progress: bool = True, say: Callable[[str], None] = print) -> ExperimentResult:
    """Runs experiment `name` (experiments/NAME.yaml, with Hydra-style overrides; sweep
    overrides key=a,b add cells) from Python: plans every cell before any compute, trains
    them cell by cell, then `finish`. Sets JAX's CPU devices as the commands do (one per core)
    when JAX has not started yet, and warns in one line when it started with another count, so
    a notebook gets the CLI's numbers without a setup call; turns on the commands' persistent
    compilation cache unless the caller chose a cache folder (it changes no number). Raises ConfigError (a bad value) or DiskError (too
    little room) before any compute; a failed cell or step is in the result's `failed`."""
    import jax

    from counting.runtime.devices import use_compilation_cache, use_cpu_devices
    from counting.sweep.runner import check_disk

    use_cpu_devices()  # the CLI's layout (a cohort over one device per core), so its numbers; one line if JAX started otherwise
    if jax.config.jax_compilation_cache_dir is None:
        use_compilation_cache()  # as the commands do: a program compiled once is loaded next time
    plan = plan_experiment(name, overrides, results_dir)
    check_disk([m for _, job in plan.cells for m in job.members], plan.cells[0][1].config.rerun)
    for _, job in plan.cells:
        report = train_job(job, show_progress)
        if report.failed:
            say(report.summary())
    return finish(plan.results_dir, plan.name, plan.cells[0][1].config, plan.hashes, say)  # hashes: every round
