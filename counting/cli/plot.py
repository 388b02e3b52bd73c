"""counting-plot NAME: the experiment's figures, as PNG and PDF, in results/NAME/figures/.

    counting-plot quick
    counting-plot quick --only phase_diagram accuracy_vs_m --tau 0.8
"""

from __future__ import annotations

import argparse
from pathlib import Path

from counting.cli import fail, prepare
from counting.cli.analyze import add_analysis_options, analysis_config
from counting.config import ConfigError
from counting.plots import FIGURES, load, plot_all

NAMES = tuple(FIGURES)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="counting-plot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment")
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--only", nargs="+", metavar="FIGURE", help=f"subset of: {', '.join(NAMES)}")
    add_analysis_options(parser)
    args = parser.parse_args(argv)
    cfg = analysis_config(args)
    prepare()
    for name in args.only or ():
        if name not in NAMES:
            fail(ConfigError(f"--only: unknown figure {name!r}; allowed: {', '.join(NAMES)}"))
    root = Path(args.results_dir) / args.experiment
    if not (root / "table.csv").exists():
        fail(ConfigError(f"experiment: {root / 'table.csv'} does not exist (run the sweep or counting-aggregate first)"))
    print(draw(root, args.experiment, cfg, args.only))


def draw(root: Path, experiment: str, cfg, names=None, analysis=None, budget=None) -> str:
    """Draws the figures (from the analyses when the caller has them); returns the summary line."""
    written = plot_all(load(root, experiment, cfg, analysis, budget), names)
    files = [p for paths in written.values() for p in paths if p.suffix == ".png"]
    skipped = [n for n, paths in written.items() if not paths]
    line = f"{len(files)} figures (PNG + PDF) in {root / 'figures'}"
    return line + (f"; no data for: {', '.join(skipped)}" if skipped else "")


if __name__ == "__main__":
    main()
