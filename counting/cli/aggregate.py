"""counting-aggregate NAME: collect results/NAME/runs/*/record.json into results/NAME/table.csv."""

import argparse
import sys

from counting.cli import RESULTS_DIR, fail, prepare
from counting.store.aggregate import AggregateError, aggregate, failures


def main(argv=None) -> None:
    """counting-aggregate: writes the experiment's table.csv and counts.csv from its run records and lists the
    failed runs."""
    parser = argparse.ArgumentParser(prog="counting-aggregate", description=__doc__)
    parser.add_argument("experiment")
    parser.add_argument("--results-dir", default=RESULTS_DIR, help=f"default {RESULTS_DIR}")
    args = parser.parse_args(argv)
    prepare(devices=False)  # reads records; no JAX
    try:
        path, rows = aggregate(args.results_dir, args.experiment)
    except AggregateError as err:
        fail(err)
    failed = failures(rows)
    print(f"{len(rows)} runs ({len(failed)} failed) -> {path}")
    for r in failed:
        print(f"  FAILED d={r['d']} m={r['m']} n={r['n']} seed={r['seed']} ({r['hash']}): {r['error']}", file=sys.stderr)


if __name__ == "__main__":
    main()
