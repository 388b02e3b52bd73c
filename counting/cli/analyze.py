"""counting-analyze NAME: thresholds m_thr(d) and the log-log fit for <results-dir>/NAME/table.csv.

    counting-analyze quick                      # out/quick/{cells,thresholds,fit}.csv (your runs)
    counting-analyze quick --results-dir results   # the committed reference
    counting-analyze --table path/table.csv     # any table in that format; outputs beside it
    counting-analyze quick --tau 0.8 --boot 2000
"""

from __future__ import annotations

import argparse
from pathlib import Path

from counting.cli import RESULTS_DIR, fail, prepare
from counting.config import AnalysisConfig, ConfigError


def add_analysis_options(parser: argparse.ArgumentParser) -> None:
    """Adds the analysis options (--tau, --ci, --boot, --seed, --exact, --mix-fingerprints) to a parser, with
    AnalysisConfig's defaults."""
    defaults = AnalysisConfig()
    parser.add_argument("--tau", type=float, default=defaults.tau, help=f"accuracy threshold (default {defaults.tau})")
    parser.add_argument("--ci", type=float, default=defaults.ci, help=f"interval coverage (default {defaults.ci})")
    parser.add_argument("--boot", type=int, default=defaults.boot, help=f"bootstrap replicates (default {defaults.boot})")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="bootstrap seed")
    parser.add_argument("--exact", type=float, default=defaults.exact,
                        help=f"worst-family accuracy that counts as exact (default {defaults.exact})")
    parser.add_argument("--mix-fingerprints", action="store_true",
                        help="analyse rows trained by different versions of the training code together")


def analysis_config(args: argparse.Namespace) -> AnalysisConfig:
    """The AnalysisConfig of the parsed options; a bad value fails with one line."""
    try:
        return AnalysisConfig(tau=args.tau, ci=args.ci, boot=args.boot, seed=args.seed, exact=args.exact,
                              mix_fingerprints=args.mix_fingerprints)
    except ConfigError as err:
        fail(err)


def table_path(args: argparse.Namespace) -> Path:
    """The table to analyse: --table, else <results-dir>/NAME/table.csv; fails with one line when neither is
    given."""
    if args.table:
        return Path(args.table)
    if not args.experiment:
        fail(ConfigError("experiment: give an experiment name or --table CSV"))
    from counting.store import TABLE, Store

    return Store(args.results_dir, args.experiment).path(TABLE)


def main(argv=None) -> None:
    """counting-analyze: analyses the table (cells, thresholds and fit, and exactness where it was measured),
    prints the report and headline, writes the tables beside it (or to --out) and, without --out, the budget
    study where there is one."""
    parser = argparse.ArgumentParser(prog="counting-analyze", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", nargs="?")
    parser.add_argument("--table", help="analyse this CSV instead of results/NAME/table.csv")
    parser.add_argument("--results-dir", default=RESULTS_DIR, help=f"default {RESULTS_DIR}")
    parser.add_argument("--out", help="output folder (default: the table's folder)")
    add_analysis_options(parser)
    args = parser.parse_args(argv)
    cfg = analysis_config(args)
    prepare(devices=False)  # reads tables; no JAX
    path = table_path(args)

    from counting.analysis.analyze import analyze, headline, report, write
    from counting.store.columns import TableError, read_table

    try:
        rows = read_table(path)
        if not rows:
            raise TableError(f"table: {path} holds no finished runs")
        analysis = analyze(rows, cfg)
    except TableError as err:
        fail(err)
    out = Path(args.out) if args.out else path.parent
    paths = write(analysis, out)
    if any("worst" in r or "steps_to_exact" in r for r in rows):  # exact counting was measured
        from counting.analysis import exactness

        paths.update(exactness.write(rows, out, cfg))
    print(report(analysis, cfg))
    print(headline(analysis, cfg))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    if args.out is None:
        budget_study(path.parent, cfg)


def budget_study(folder: Path, cfg) -> None:
    """The budget study, where the table has its budget.csv beside it (phase experiments):
    budget_thresholds.csv and budget_convergence.csv in the same folder."""
    from counting.analysis.budget import BUDGET_TABLE, analyze_budgets, convergence_report
    from counting.store import Store
    from counting.store.columns import TableError

    if not (folder / BUDGET_TABLE).exists():
        return
    try:
        _, rows = analyze_budgets(Store(folder.parent, folder.name), cfg)
    except TableError as err:
        fail(err)
    print(convergence_report(rows))


if __name__ == "__main__":
    main()
