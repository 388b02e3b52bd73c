"""counting-evaluate NAME: out-of-distribution evaluation of an experiment's saved models.

    counting-evaluate ood_length                 # the grid of experiments/ood_length.yaml (ood.n, ood.k)
    counting-evaluate quick --n 8 16 32 --k 4 8  # any grid
    counting-evaluate mine --config-dir ~/my_confs  # the grid of ~/my_confs/experiment/mine.yaml
Writes runs/<hash>/ood.json per model and <results-dir>/NAME/ood.csv; points already evaluated
are not recomputed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from omegaconf import OmegaConf

from counting.cli import RESULTS_DIR, fail, prepare, quiet_libraries
from counting.config import ConfigError, OODConfig
from counting.experiment.compose import experiment_dir, experiment_names, load_yaml


def experiment_grid(name: str, config_dir: str | None = None) -> OODConfig:
    """The `ood` section of experiments/NAME.yaml (or CONFIG_DIR/experiment/NAME.yaml, as
    counting-train --config-dir reads it); ConfigError if there is no such config or it has
    no grid."""
    folders = [experiment_dir()] + ([Path(config_dir) / "experiment"] if config_dir else [])
    path = next((f / f"{name}.yaml" for f in folders if (f / f"{name}.yaml").exists()), None)
    if path is None:
        raise ConfigError(f"experiment: no config {name}.yaml in {' or '.join(map(str, folders))} (known: "
                          f"{', '.join(experiment_names()) or 'none'}); give the grid with --n and/or --k")
    grid = OODConfig.from_dict(OmegaConf.to_container(load_yaml(path)).get("ood") or {})
    if not grid.n and not grid.k:
        raise ConfigError(f"ood: {path} has no ood grid (ood.n, ood.k); give --n and/or --k")
    return grid


def main(argv=None) -> None:
    """counting-evaluate: evaluates every finished model of the experiment at the grid of --n and --k (else the
    experiment's own ood grid) and writes ood.csv."""
    parser = argparse.ArgumentParser(prog="counting-evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment")
    parser.add_argument("--results-dir", default=RESULTS_DIR, help=f"default {RESULTS_DIR}")
    parser.add_argument("--n", type=int, nargs="+", default=None, help="evaluation lengths n'")
    parser.add_argument("--k", type=int, nargs="+", default=None, help="distinct tokens per sequence k'")
    parser.add_argument("--config-dir", help="also read DIR/experiment/NAME.yaml (as counting-train --config-dir)")
    args = parser.parse_args(argv)
    try:
        if args.n is not None or args.k is not None:
            grid = OODConfig(n=args.n or (), k=args.k or ())
        else:
            grid = experiment_grid(args.experiment, args.config_dir)
    except ConfigError as err:
        fail(err)
    from counting.store import Store

    if not Store(args.results_dir, args.experiment).has_runs():
        fail(ConfigError(f"experiment: no runs under {Path(args.results_dir) / args.experiment} (train it first)"))
    prepare()
    quiet_libraries()
    from counting.evaluation.evaluate import evaluate_experiment

    path, rows = evaluate_experiment(args.results_dir, args.experiment, grid)
    bad = [r for r in rows if r["eval_status"] != "complete"]
    print(f"{len(rows)} evaluations ({len(bad)} not run: unsupported or failed) -> {path}")


if __name__ == "__main__":
    main()
