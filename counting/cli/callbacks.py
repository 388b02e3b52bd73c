"""Hydra callbacks: what happens when a sweep ends."""

import sys

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class SweepEnd(Callback):
    """After a multirun: aggregate the experiment's table, report every failed cell with its
    error, and exit non-zero if any failed (the other cells have run)."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        from counting.aggregate import aggregate, failures

        path, rows = aggregate(config.results_dir, config.experiment)
        failed = failures(rows)
        print(f"sweep {config.experiment}: {len(rows)} models, {len(failed)} failed; table: {path}")
        for r in failed:
            print(f"  FAILED d={r['d']} m={r['m']} n={r['n']} seed={r['seed']} ({r['hash']}): {r['error']}")
        if failed:
            sys.exit(1)
