"""counting-peer: our results beside a published peer's, per cell.

    counting-peer behrens      # results/peer_behrens/compare.csv, dip.csv and figures/compare.{png,pdf}

Reads the peer's published numbers (results/peer_behrens/published.csv, each row citing its
notebook and cell) and our tables of the same cells (results/peer_behrens_t64_d/table.csv and
results/peer_behrens_t64_p/table.csv: `counting-train -m experiment=peer_behrens_t64_d
results_dir=results` and ..._p; the p = 128 cell trained on its own as peer_behrens_t64_p128:
`counting-train -m experiment=peer_behrens_t64_p model.w=128 name=peer_behrens_t64_p128
results_dir=results`), and the cells at their full length (peer_behrens_t64_full), writes the
comparison (one row per distinct published cell: the tests and verdict of the agreement rule
in counting.analysis.peer, margin and alpha fixed there; --margin and --alpha only explore,
and compare.csv records what they were), the dip test (dip.csv) and its figure.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from counting.cli import fail, prepare
from counting.config import ConfigError

PEERS = {"behrens": ("peer_behrens", ("peer_behrens_t64_d", "peer_behrens_t64_p", "peer_behrens_t64_p128"))}
FULL = {"behrens": ("peer_behrens_t64_full",)}  # the same cells at their full training length
DIAGRAMS = {"behrens": ("peer_behrens_t32", "peer_behrens_t32_bos")}  # their Fig. 1/2, reduced: no published numbers


def main(argv=None) -> None:
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
    if args.peer not in PEERS:
        fail(ConfigError(f"peer: unknown peer {args.peer!r}; allowed: {', '.join(PEERS)}"))
    prepare(devices=False)
    from counting.analysis.peer import (
        ALPHA,
        COMPARE,
        DIP,
        MARGIN,
        PUBLISHED,
        TESTS,
        Rule,
        compare,
        counts,
        dip,
        ours_by_budget,
        ours_by_cell,
        read_published,
    )
    from counting.columns import TableError, read_table
    from counting.plots.peer import compare_figure, diagram_figure
    from counting.store import write_table

    folder, experiments = PEERS[args.peer]
    root = Path(args.results_dir) / folder
    try:
        published = read_published(root / PUBLISHED)
        ours_rows = [r for e in experiments if (Path(args.results_dir) / e / "table.csv").exists()
                     for r in read_table(Path(args.results_dir) / e / "table.csv")]
        budget_rows = [r for e in experiments if (Path(args.results_dir) / e / "budget.csv").exists()
                       for r in read_table(Path(args.results_dir) / e / "budget.csv")]
        full_rows = [r for e in FULL.get(args.peer, ()) if (Path(args.results_dir) / e / "table.csv").exists()
                     for r in read_table(Path(args.results_dir) / e / "table.csv")]
        full_budget_rows = [r for e in FULL.get(args.peer, ()) if (Path(args.results_dir) / e / "budget.csv").exists()
                            for r in read_table(Path(args.results_dir) / e / "budget.csv")]
    except TableError as err:
        fail(err)
    if not ours_rows:
        fail(ConfigError(f"results: no table of {', '.join(experiments)} under {args.results_dir} (train them first)"))
    ours_rows = list({r.get("hash") or id(r): r for r in ours_rows}.values())  # a cell trained in two folders counts once
    budget_rows = list({(r.get("hash") or id(r), r["budget"]): r for r in budget_rows}.values())
    rule = Rule(margin=MARGIN if args.margin is None else args.margin,
                alpha=ALPHA if args.alpha is None else args.alpha)
    if not (rule.margin > 0 and 0 < rule.alpha < 1):
        fail(ConfigError(f"peer: --margin must be > 0 and --alpha in (0, 1), got {rule.margin} and {rule.alpha}"))
    ours, full = ours_by_cell(ours_rows), ours_by_cell(full_rows) if full_rows else None
    try:
        rows = compare(published, ours, args.tolerance, ours_by_budget(budget_rows), full, rule)
    except TableError as err:
        fail(err)
    at = sorted({k for r in rows for k in r if k.startswith("ours_at_")}, key=lambda k: int(k.rsplit("_", 1)[1]))
    approach = ours_by_budget(full_budget_rows)  # at their length: the approach to it, budget by budget
    for r in rows:
        r.update({k.replace("ours_at_", "ours_full_at_"): v
                  for k, v in approach.get((r["variant"], r["T"], r["L"], r["d"], r["p"]), {}).items()})
    full_at = sorted({k for r in rows for k in r if k.startswith("ours_full_at_")}, key=lambda k: int(k.rsplit("_", 1)[1]))
    full_columns = ["ours_full", "ours_full_low", "ours_full_high", "ours_full_min", "ours_full_max", "difference_full",
                    "agrees_full", *(f"{c}_full" for c in TESTS), *full_at, "our_seeds_full"] if full_rows else []
    write_table(root / COMPARE, rows, ["figure", "figures", "variant", "T", "L", "d", "p", "theirs", "their_std",
                                       "ours", "ours_low", "ours_high", "ours_min", "ours_max", "difference", "agrees",
                                       *TESTS, "margin", "alpha", "power", *at, *full_columns, "their_seeds",
                                       "our_seeds", "source"],
                digits=6)
    dips = dip(published, ours, full, rule)
    if dips:
        write_table(root / DIP, dips, digits=6)
    figures = compare_figure(rows, root / "figures")
    diagram = [r for e in DIAGRAMS.get(args.peer, ()) if (Path(args.results_dir) / e / "table.csv").exists()
               for r in read_table(Path(args.results_dir) / e / "table.csv")]
    if diagram:  # (d, p) cells of the reduced phase diagram: ours only (their cells live in wandb)
        cells = [{"variant": key[0], "T": key[1], "L": key[2], "d": key[3], "p": key[4],
                  **{k: v for k, v in mine.items() if k != "accuracies"}}
                 for key, mine in sorted(ours_by_cell(diagram).items())]
        write_table(root / "diagram_t32.csv", cells, ["variant", "T", "L", "d", "p", "ours", "ours_low", "ours_high",
                                                      "ours_min", "ours_max", "our_seeds"], digits=6)
        figures += diagram_figure(cells, root / "figures")
        print(f"{args.peer}: reduced phase diagram, {len(cells)} cells: {root / 'diagram_t32.csv'}")
    matched = [r for r in rows if r["agrees"] != ""]
    agree = sum(bool(r["agrees"]) for r in matched)
    print(f"{args.peer}: {len(matched)} of {len(rows)} distinct published cells trained here; {agree} agree (their "
          f"mean inside our seed range +- {args.tolerance}); mean |difference| "
          f"{sum(abs(r['difference']) for r in matched) / max(len(matched), 1):.3f}")
    rule_text = f"margin {rule.margin:g}, alpha {rule.alpha:g}, Holm over the cells of each length"
    n = counts(rows)
    print(f"{args.peer}: 150 epochs: {n['equivalent']} of {n['cells']} distinct cells equivalent, "
          f"{n['differs']} differ, {n['undecided']} undecided ({rule_text})")
    full_cells = [r for r in rows if r.get("agrees_full", "") != ""]
    if full_cells:
        n = counts(rows, "_full")
        print(f"{args.peer}: at their full length {len(full_cells)} cells: " + "; ".join(
            f"d = {r['d']}, p = {r['p']}: theirs {r['theirs']:.3f}, ours {r['ours_full']:.3f} "
            f"(150 epochs {r['ours']:.3f}), {r['verdict_full']}" for r in full_cells)
            + f"; {n['equivalent']} of {n['cells']} equivalent, {n['differs']} differ, {n['undecided']} undecided")
    for r in dips:
        print(f"{args.peer}: dip d = {r['d_low']} -> {r['d_high']} ({r['length']}): ours {r['our_drop']:+.4f}, theirs "
              f"{r['their_drop']:+.4f}; difference {r['estimate']:+.4f}, t = {r['t']:.2f}, df = {r['df']:.1f}, "
              f"p = {r['p_value']:.3g}: {root / DIP}")
    print(f"wrote {root / COMPARE} and {len(figures)} figure files in {root / 'figures'}")


if __name__ == "__main__":
    main()
