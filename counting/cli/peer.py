"""counting-peer: our results beside a published peer's, per cell.

    counting-peer behrens      # results/peer_behrens/compare.csv, dip.csv and figures/compare.{png,pdf}

Reads the peer's published numbers (results/peer_behrens/published.csv, each row citing its
notebook and cell) and our tables of the same cells (results/peer_behrens_t64_d/table.csv and
results/peer_behrens_t64_p/table.csv: `counting-train -m experiment=peer_behrens_t64_d
results_dir=results` and ..._p; the p = 128 cell trained on its own as peer_behrens_t64_p128:
`counting-train -m experiment=peer_behrens_t64_p model.w=128 name=peer_behrens_t64_p128
results_dir=results`), the cells at their full length (peer_behrens_t64_full, peer_behrens_t64_p_full) and the
reduced T = 32 diagram at 50 and 500 epochs (peer_behrens_t32*, beside their digitised figure), writes the
comparison (one row per distinct published cell: the tests and verdict of the agreement rule
in counting.analysis.peer, margin and alpha fixed there; --margin and --alpha only explore,
and compare.csv records what they were), the dip test (dip.csv) and its figure. The
comparison itself is `counting.analysis.peer.compare_peer`; this is its command line.
"""

from __future__ import annotations

import argparse

from counting.cli import fail, prepare


def main(argv=None) -> None:
    """counting-peer: compares the suite's committed results with a peer's published ones, prints the verdicts
    and writes the comparison table and figures."""
    from counting.analysis.peer import ALPHA, MARGIN, PEERS, Rule, compare_peer

    parser = argparse.ArgumentParser(prog="counting-peer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("peer", help=f"one of: {', '.join(PEERS)}")
    parser.add_argument("--results-dir", default="results", help="where the committed folders are (default results)")
    parser.add_argument("--tolerance", type=float, default=0.02,
                        help="their mean agrees when inside our seed range widened by this (default 0.02; "
                             "the descriptive column agrees, not the verdict)")
    parser.add_argument("--margin", type=float, default=None,
                        help="explore: the equivalence margin (default: the rule's, counting.analysis.peer.MARGIN)")
    parser.add_argument("--alpha", type=float, default=None,
                        help="explore: the tests' level (default: the rule's, counting.analysis.peer.ALPHA)")
    args = parser.parse_args(argv)
    prepare(devices=False)
    from counting.config import ConfigError
    from counting.plots.peer import compare_figure, diagram_figure
    from counting.store.columns import TableError

    rule = Rule(margin=MARGIN if args.margin is None else args.margin,
                alpha=ALPHA if args.alpha is None else args.alpha)
    try:
        result = compare_peer(args.results_dir, args.peer, args.tolerance, rule)
    except (ConfigError, TableError) as err:
        fail(err)
    figures = compare_figure(result.rows, result.root / "figures")
    if result.diagram:
        figures += diagram_figure(result.diagram, result.root / "figures")
    for line in result.lines():
        print(line)
    print(f"wrote {result.paths['compare']} and {len(figures)} figure files in {result.root / 'figures'}")


if __name__ == "__main__":
    main()
