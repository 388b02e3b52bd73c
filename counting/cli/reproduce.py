"""counting-reproduce NAME: retrain a sample of a committed experiment and say, per cell,
whether it reproduces exactly, within the stated tolerance, or differs.

    counting-reproduce quick                     # the first cell of results/quick (model.d=4)
    counting-reproduce quick --cells all         # every cell
    counting-reproduce phase_qc --cells 2 --tolerance 0.03
    counting-reproduce phase_qc --name phase_qc_n32 -- task.n=32 model.w=32 train.steps=8000

Exact where the committed rows were trained by the same code on the same kind of machine
with the same jax/jaxlib and layout; statistical elsewhere (counting.experiment.reproduce).
The retrained models go to a fresh temporary folder (or --work-dir), never into the
reference. Exit status 0 when nothing differs, 1 when a cell or threshold differs, 2 on bad
input.
"""

from __future__ import annotations

import argparse

from counting.cli import fail, prepare, quiet_libraries
from counting.config import ConfigError


def main(argv=None) -> None:
    """counting-reproduce: retrains a sample of the experiment's cells (--cells) and compares them with the
    committed folder; exits 1 unless every cell and threshold reproduces."""
    from counting.experiment.reproduce import RATIO, TOLERANCE

    parser = argparse.ArgumentParser(prog="counting-reproduce", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", help="the experiment config (experiments/NAME.yaml)")
    parser.add_argument("overrides", nargs="*", help="overrides the committed folder was made with")
    parser.add_argument("--name", help="the committed folder's name when it differs from the experiment's (name=...)")
    parser.add_argument("--reference-dir", default="results", help="where the committed folders are (default results)")
    parser.add_argument("--cells", default="1", help="how many cells of the sweep to retrain, or 'all' (default 1)")
    parser.add_argument("--work-dir", help="where to train (default: a fresh temporary folder)")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE,
                        help=f"accuracy tolerance of the statistical comparison (default {TOLERANCE})")
    parser.add_argument("--ratio", type=float, default=RATIO,
                        help=f"threshold tolerance: the interval widened by the factor 1 + ratio (default {RATIO})")
    args = parser.parse_args(argv)
    if args.cells != "all" and not (args.cells.isdigit() and int(args.cells) >= 1):
        fail(ConfigError(f"--cells: a number >= 1 or 'all', got {args.cells!r}"))
    if not 0 <= args.tolerance < 1 or args.ratio < 0:
        fail(ConfigError(f"--tolerance: must be in [0, 1) and --ratio >= 0, got {args.tolerance} and {args.ratio}"))
    prepare()
    quiet_libraries()
    from counting.experiment.reproduce import reproduce
    from counting.store.columns import TableError
    from counting.sweep.runner import DiskError

    overrides = list(args.overrides) + ([f"name={args.name}"] if args.name else [])
    try:
        out = reproduce(args.experiment, overrides, args.reference_dir, None if args.cells == "all" else int(args.cells),
                        args.work_dir, args.tolerance, args.ratio)
    except (ConfigError, TableError, DiskError, ValueError) as err:
        fail(err)
    print(out.report())
    raise SystemExit(0 if out.ok else 1)


if __name__ == "__main__":
    main()
