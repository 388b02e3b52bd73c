"""Hydra callbacks: what happens when a sweep ends."""

import sys
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from counting.cli import after_sweep
from counting.config import ConfigError


class SweepEnd(Callback):
    """After a multirun: aggregate the experiment's table and report every failed cell with
    its error; evaluate out of distribution where the experiment has an `ood` grid; analyse
    the table (thresholds, fit) and draw the figures. Exit non-zero if any cell failed (the
    other cells have run and are in the table and figures)."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        from counting.aggregate import aggregate, failures

        path, rows = aggregate(config.results_dir, config.experiment)
        failed = failures(rows)
        print(f"sweep {config.experiment}: {len(rows)} models, {len(failed)} failed; table: {path}")
        for r in failed:
            print(f"  FAILED d={r['d']} m={r['m']} n={r['n']} seed={r['seed']} ({r['hash']}): {r['error']}")
        if len(failed) < len(rows):
            finish(config)
        if failed:
            sys.exit(1)


def finish(config: DictConfig) -> None:
    """OOD evaluation, analysis and figures of a finished sweep."""
    try:
        grid, cfg = after_sweep(config)
    except ConfigError as err:  # validated at the entry point already; kept for direct use
        print(f"error: {err}", file=sys.stderr)
        return
    root = Path(config.results_dir) / config.experiment
    if grid.n or grid.k:
        from counting.evaluate import evaluate_experiment

        path, _ = evaluate_experiment(config.results_dir, config.experiment, grid)
        print(f"out-of-distribution table: {path}")
    from counting.analysis.analyze import analyze, report, write
    from counting.analysis.table import read_table
    from counting.cli.plot import draw

    analysis = analyze(read_table(root / "table.csv"), cfg)
    write(analysis, root)
    print(report(analysis, cfg))
    print(draw(root, config.experiment, cfg, analysis=analysis))
