"""Hydra callbacks: what happens when a sweep ends.

Each job of a multirun writes the run ids (hashes) it was asked for into the sweep's
manifest (`<hydra.sweep.dir>/manifest.jsonl`), before it trains. When the sweep ends, the
experiment's table is aggregated from every record in results/<experiment>/, but the sweep
is judged on its own cells only: a failed record from an earlier sweep that this one did not
ask for is not reported, and one of this sweep's cells that has no finished record is.
"""

import json
import sys
import traceback
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from counting.cli import after_sweep

MANIFEST = "manifest.jsonl"


def results_name(config: DictConfig) -> str:
    """The results folder's name: `name` when the command line sets it, else the experiment's."""
    return config.get("name") or config.experiment


def record_cells(hashes: list[str]) -> None:
    """Called by a multirun job: appends its run ids to the sweep's manifest."""
    try:
        hc = HydraConfig.get()
    except ValueError:
        return
    if hc.mode.name != "MULTIRUN":
        return
    path = Path(hc.sweep.dir) / MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:  # one short line per job, appended
        f.write(json.dumps({"job": hc.job.num, "hashes": hashes}) + "\n")


def sweep_cells(sweep_dir: str) -> set[str] | None:
    """The run ids of this sweep, or None when no job wrote the manifest."""
    path = Path(sweep_dir) / MANIFEST
    if not path.exists():
        return None
    out = set()
    for line in path.read_text().splitlines():
        try:
            out.update(json.loads(line)["hashes"])
        except (json.JSONDecodeError, KeyError):
            continue
    return out


def sweep_cells_overrides(config: DictConfig) -> list[list[str]]:
    """The override lists of the cells Hydra's basic sweeper will launch: the experiment's
    hydra.sweeper.params first, then the command line's (as the sweeper combines them)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = config.hydra.sweeper.get("params") or {}
    arguments = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
    parsed = OverridesParser.create().parse_overrides(arguments)
    return [cell for batch in BasicSweeper.split_arguments(parsed, None) for cell in batch]


def validate_cells(config: DictConfig) -> None:
    """Composes and validates every cell of the sweep; one line naming the first bad cell and
    its field, exit status 2, before the first job starts."""
    from hydra.core.global_hydra import GlobalHydra

    from counting.cli import fail, quiet_libraries
    from counting.cli.train import plan_job
    from counting.config import ConfigError

    quiet_libraries()
    loader = GlobalHydra.instance().config_loader()
    cells = sweep_cells_overrides(config)
    for i, cell in enumerate(cells):
        raw = loader.load_sweep_config(config, cell)
        try:
            plan_job(raw)
        except ConfigError as err:
            shown = " ".join(o for o in cell if "=" in o and not o.startswith(("hydra.", "results_dir=")))
            fail(ConfigError(f"cell {i + 1}/{len(cells)} ({shown}): {err}"))


class SweepStart(Callback):
    """Before a multirun: every cell validated (see validate_cells)."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        validate_cells(config)


class SweepEnd(Callback):
    """After a multirun: aggregate the table; report this sweep's failed cells; evaluate out
    of distribution where the experiment has an `ood` grid; analyse the table (thresholds,
    fit, the budget study); draw the figures. Exits non-zero when a cell of this sweep
    failed or when any of these steps raised (naming the step)."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        broken = []

        def step(name, fn):
            try:
                return fn()
            except Exception as err:  # report, keep going with the steps that do not need it
                print(f"sweep {results_name(config)}: step '{name}' failed: {type(err).__name__}: {err}", file=sys.stderr)
                traceback.print_exc()
                broken.append(name)
                return None

        from counting.aggregate import aggregate, failures

        out = step("aggregate", lambda: aggregate(config.results_dir, results_name(config)))
        if out is not None:
            path, rows = out
            mine = sweep_cells(config.hydra.sweep.dir)
            own = [r for r in rows if mine is None or r["hash"] in mine]
            failed = failures(own)
            missing = sorted((mine or set()) - {r["hash"] for r in rows})
            print(f"sweep {results_name(config)}: {len(own)} models of this sweep, {len(failed) + len(missing)} failed; "
                  f"table ({len(rows)} models): {path}")
            for r in failed:
                print(f"  FAILED d={r['d']} m={r['m']} n={r['n']} seed={r['seed']} ({r['hash']}): {r['error']}")
            for h in missing:
                print(f"  FAILED {h}: no record (the job did not get to it)")
            if len(failures(rows)) < len(rows):
                finish(config, step)
            if failed or missing:
                broken.append("cells")
        if broken:
            sys.exit(1)


def finish(config: DictConfig, step) -> None:
    """OOD evaluation, analysis, budget study and figures of a finished sweep; each step
    through `step(name, fn)`, which reports and records a failure."""
    grid, cfg = after_sweep(config)  # validated at the entry point already
    from counting.store import Store, TABLE

    store = Store(config.results_dir, results_name(config))
    if grid.n or grid.k:
        from counting.evaluate import evaluate_experiment

        out = step("evaluate", lambda: evaluate_experiment(config.results_dir, results_name(config), grid))
        if out is not None:
            print(f"out-of-distribution table: {out[0]}")
    from counting.analysis.analyze import analyze, report, write
    from counting.analysis.budget import analyze_budgets, convergence_report, write_budget_table
    from counting.analysis.table import read_table
    from counting.cli.plot import draw

    analysis = step("analyze", lambda: analyze(read_table(store.path(TABLE)), cfg))
    if analysis is None:
        return
    step("write analysis", lambda: write(analysis, store.root))
    print(report(analysis, cfg))
    budget = None
    if cfg.budgets:
        step("budget table", lambda: write_budget_table(store, cfg.budgets))
        budget = step("budget study", lambda: analyze_budgets(store, cfg))
        if budget is not None:
            print(convergence_report(budget[1]))
    line = step("figures", lambda: draw(store.root, results_name(config), cfg, analysis=analysis,
                                        budget=None if budget is None else budget[0]))
    if line:
        print(line)
