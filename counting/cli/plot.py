"""counting-plot NAME: the experiment's figures, as PNG and PDF, in <results-dir>/NAME/figures/.

    counting-plot quick                          # out/quick/figures/ (your own runs)
    counting-plot quick --results-dir results    # the committed reference's figures
    counting-plot quick --only phase_diagram accuracy_vs_m --tau 0.8
"""

from __future__ import annotations

import argparse
from pathlib import Path

from counting.cli import RESULTS_DIR, fail, prepare
from counting.cli.analyze import add_analysis_options, analysis_config
from counting.config import ConfigError
from counting.plots import FIGURES, draw
from counting.store import TABLE
from counting.store.columns import TableError

NAMES = tuple(FIGURES)


def main(argv=None) -> None:
    """counting-plot: draws the experiment's figures (or those of --only) from its table."""
    parser = argparse.ArgumentParser(prog="counting-plot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment")
    parser.add_argument("--results-dir", default=RESULTS_DIR, help=f"default {RESULTS_DIR}")
    parser.add_argument("--only", nargs="+", metavar="FIGURE", help=f"subset of: {', '.join(NAMES)}")
    add_analysis_options(parser)
    args = parser.parse_args(argv)
    cfg = analysis_config(args)
    prepare(devices=False)  # reads tables; no JAX
    for name in args.only or ():
        if name not in NAMES:
            fail(ConfigError(f"--only: unknown figure {name!r}; allowed: {', '.join(NAMES)}"))
    root = Path(args.results_dir) / args.experiment
    if not (root / TABLE).exists():
        fail(ConfigError(f"experiment: {root / TABLE} does not exist (run the sweep or counting-aggregate first)"))
    try:
        print(draw(root, args.experiment, cfg, args.only)[1])
    except TableError as err:
        fail(err)


if __name__ == "__main__":
    main()
