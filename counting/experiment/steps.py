"""The steps after a sweep, as a declared list: a job's `after` (default `DEFAULT`) names them
in order, each a function of the `Finish` they share, registered here with `@step(name)`.

    after: [families, support, aggregate, search, evaluate, analyze, exactness, budget, figures]

An experiment extends the list in its YAML: a registered name, or `module:function` for a
step of its own (imported when the sweep ends; it receives the same `Finish`). A step that
raises is reported (`result.failed`) and the others still run; a step whose input is missing
(no table, no analysis) does nothing.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import traceback
from collections.abc import Callable
from typing import Any

from counting.spec import ConfigError

STEPS: dict[str, Callable[[Finish], None]] = {}


def step(name: str):
    """Registers a post-sweep step under `name`."""
    def register(fn: Callable[[Finish], None]) -> Callable[[Finish], None]:
        STEPS[name] = fn
        return fn
    return register


def resolve(name: str) -> Callable[[Finish], None]:
    """A step by its registered name or as `module:function`; ConfigError naming `after`."""
    if name in STEPS:
        return STEPS[name]
    module, _, attr = name.partition(":")
    if attr:
        try:
            fn = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as err:
            raise ConfigError(f"after: cannot load step {name!r} ({type(err).__name__}: {err})") from None
        if callable(fn):
            return fn
    raise ConfigError(f"after: unknown step {name!r}; allowed: {', '.join(STEPS)}, or module:function")


def check(names) -> None:
    """Every name of a job's `after` resolves (before any compute)."""
    for name in names:
        resolve(name)


@dataclasses.dataclass
class Finish:
    """What the steps share: the experiment's store, the job's config, this sweep's run ids
    (`own`; None: every row), the result being built, and how to report."""

    store: Any  # counting.store.Store
    job: Any  # counting.config.JobConfig
    own: set[str] | None
    result: Any  # counting.experiment.run.ExperimentResult
    say: Callable[[str], None] = print
    budget: Any = None  # the budget study's analysis, for the figures

    def tell(self, line: str) -> None:
        """Says one line of the summary (and keeps it in the result's lines)."""
        self.result.lines.append(line)
        self.say(line)

    def run(self, label: str, fn: Callable[[], Any]) -> Any:
        """fn(), or None after reporting (on stderr, and in result.failed) what it raised."""
        try:
            return fn()
        except Exception as err:  # report, keep going with the steps that do not need it
            line = f"sweep {self.store.experiment}: step '{label}' failed: {type(err).__name__}: {err}"
            self.result.lines.append(line)
            print(line, file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            self.result.failed.append(f"step {label}: {type(err).__name__}: {err}")
            return None

    @property
    def trained(self) -> bool:
        """The table exists and not every model in it failed."""
        from counting.store.aggregate import failures

        rows = self.result.rows
        return bool(rows) and len(failures(rows)) < len(rows)


@step("families")
def families(f: Finish) -> None:
    """Every finished model on the worst-case families (before the table: its rows carry each
    model's worst family)."""
    cfg = f.job.families
    if not (cfg.size and f.store.has_runs()):
        return
    from counting.evaluation.evaluate import families_experiment

    out = f.run("families", lambda: families_experiment(f.store.results_dir, f.store.experiment, cfg.size, cfg.seed,
                                                        log=f.tell))
    if out is not None:
        f.result.paths["families"] = out[0]


@step("support")
def support(f: Finish) -> None:
    """Each family's class: its share of the training data (support.csv)."""
    if not (f.job.families.size and f.store.has_runs()):
        return
    from counting.config import RunConfig
    from counting.evaluation.exposure import support_table

    cfgs = [RunConfig.from_record(r["config"]) for r in f.store.finished().values()]
    out = f.run("support", lambda: support_table(f.store.root, cfgs))
    if out is not None:
        f.result.paths["support"] = out


@step("aggregate")
def aggregate(f: Finish) -> None:
    """table.csv and counts.csv; this sweep's failed models, one line each."""
    from counting.store.aggregate import aggregate as aggregate_table
    from counting.store.aggregate import failures

    out = f.run("aggregate", lambda: aggregate_table(f.store.results_dir, f.store.experiment))
    if out is None:
        return
    f.result.paths["table"], f.result.rows = out
    own, name = f.own, f.store.experiment
    mine = [r for r in f.result.rows if own is None or r["hash"] in own]
    failed = failures(mine)
    missing = sorted((own or set()) - {r["hash"] for r in f.result.rows})
    f.tell(f"sweep {name}: {len(mine)} models of this sweep, {len(failed) + len(missing)} failed; "
           f"table ({len(f.result.rows)} models): {f.result.paths['table']}")
    for r in failed:
        f.tell(f"  FAILED d={r['d']} m={r['m']} n={r['n']} seed={r['seed']} ({r['hash']}): {r['error']}")
        f.result.failed.append(f"cell {r['hash']}: {r['error']}")
    for h in missing:
        f.tell(f"  FAILED {h}: no record (the job did not get to it)")
        f.result.failed.append(f"cell {h}: no record")


@step("search")
def search(f: Finish) -> None:
    """search.csv from the adaptive search's rows of every job (<experiment>/search/*.json)."""
    if not f.result.rows:
        return
    import json

    from counting.store import SEARCH, SEARCH_TABLE, write_table

    def table():
        files = sorted(f.store.path(SEARCH).glob("*.json"))
        if not files:
            return None
        rows = [r for path in files for r in json.loads(path.read_text())]
        rows.sort(key=lambda r: (r["task"], r["n"], r["w"], r["d"], r.get("statistic", ""), r["round"]))
        path = f.store.path(SEARCH_TABLE)
        write_table(path, rows, ["task", "n", "w", "d", "statistic", "round", "m_tried", "lo", "hi", "estimate",
                                 "status"], digits=6)
        return path

    out = f.run("search table", table)
    if out:
        f.result.paths["search"] = out


@step("evaluate")
def evaluate(f: Finish) -> None:
    """Out of distribution, where the job's `ood` has a grid (ood.csv)."""
    grid = f.job.ood
    if not (f.trained and (grid.n or grid.k)):
        return
    from counting.evaluation.evaluate import evaluate_experiment

    out = f.run("evaluate", lambda: evaluate_experiment(f.store.results_dir, f.store.experiment, grid, log=f.tell))
    if out is not None:
        f.result.paths["ood"] = out[0]
        f.tell(f"out-of-distribution table: {out[0]}")


def _table(f: Finish) -> list[dict]:
    from counting.store import TABLE
    from counting.store.columns import read_table

    return read_table(f.store.path(TABLE))


@step("analyze")
def analyze(f: Finish) -> None:
    """Thresholds and fits (cells.csv, thresholds.csv, fit.csv), and their report."""
    if not f.trained:
        return
    from counting.analysis.analyze import analyze as analyze_table
    from counting.analysis.analyze import report, write

    cfg = f.job.analysis
    f.result.analysis = f.run("analyze", lambda: analyze_table(_table(f), cfg))
    if f.result.analysis is None:
        return
    f.result.paths.update(f.run("write analysis", lambda: write(f.result.analysis, f.store.root)) or {})
    for line in report(f.result.analysis, cfg).splitlines():
        f.tell(line)


@step("exactness")
def exactness(f: Finish) -> None:
    """Stops, steps to exactness and the logistic exact thresholds, where exact counting was
    measured (stops.csv, exactness.csv, exact_fit.csv)."""
    if not (f.trained and f.result.analysis is not None
            and any("worst" in r or "steps_to_exact" in r for r in f.result.rows)):
        return
    from counting.analysis import exactness as exact

    f.result.paths.update(f.run("exactness", lambda: exact.write(_table(f), f.store.root, f.job.analysis)) or {})


@step("budget")
def budget(f: Finish) -> None:
    """The budget study, where `analysis.budgets` names budgets (budget*.csv)."""
    cfg = f.job.analysis
    if not (f.trained and f.result.analysis is not None and cfg.budgets):
        return
    from counting.analysis.budget import analyze_budgets, convergence_report, write_budget_table

    f.result.paths["budget"] = f.run("budget table", lambda: write_budget_table(f.store, cfg.budgets))
    out = f.run("budget study", lambda: analyze_budgets(f.store, cfg))
    if out is not None:
        f.budget = out[0]
        for line in convergence_report(out[1]).splitlines():
            f.tell(line)


@step("figures")
def figures(f: Finish) -> None:
    """The experiment's figures (figures/), then the headline line."""
    if not (f.trained and f.result.analysis is not None):
        return
    from counting.analysis.analyze import headline
    from counting.plots import draw

    cfg = f.job.analysis
    drawn = f.run("figures", lambda: draw(f.store.root, f.store.experiment, cfg, analysis=f.result.analysis,
                                          budget=f.budget))
    if drawn is not None:
        f.result.figures, line = drawn
        f.result.paths["figures"] = f.store.root / "figures"
        f.tell(line)
    f.tell(headline(f.result.analysis, cfg))
