"""counting-theory: regenerate the theory tables (CSV) and figures (PNG, PDF).

    counting-theory                      # results/theory/, about 6 minutes on a 2-core CPU
    counting-theory --quick --out /tmp/t # the same pipeline on tiny grids (tests)
    counting-theory --only precision     # one part

Parts: constructions, positional, width, precision, coherence, readouts, margin, coherent
(the fits table is written whenever width, margin and coherent all ran). Everything is
deterministic on CPU: fixed seeds, fixed grids (`counting.theory.settings`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from counting.cli import prepare
from counting.store import write_table
from counting.sweep.progress import Heartbeat
from counting.theory import figures, tables
from counting.theory.settings import SETTINGS

PARTS = {
    "constructions": (tables.constructions_table, None),
    "positional": (tables.positional_table, None),
    "width": (tables.width_table, "countattend_width"),
    "precision": (tables.precision_table, None),
    "coherence": (tables.coherence_table, None),
    "readouts": (tables.readouts_table, "interference_readouts"),
    "margin": (tables.margin_table, "interference_margin"),
    "coherent": (tables.coherent_table, "countattend_coherent"),
}

FIGURES = {
    "width": lambda t, out: figures.countattend_cost(t["width"], out),
    "precision": lambda t, out: figures.precision(t["precision"], out),
    "coherence": lambda t, out: figures.coherence(t["coherence"], out),
    "coherent": lambda t, out: figures.countattend_coherent(t["coherent"], out),
}


def main(argv=None) -> None:
    """counting-theory: computes each part's table (or those of --only) into --out with its figures, then the
    growth fits when the width, margin and coherent parts ran."""
    parser = argparse.ArgumentParser(prog="counting-theory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="results/theory", help="output folder (default results/theory)")
    parser.add_argument("--quick", action="store_true", help="tiny grids, for tests")
    parser.add_argument("--only", nargs="+", choices=list(PARTS), help="run only these parts")
    args = parser.parse_args(argv)
    prepare()
    settings = SETTINGS["quick" if args.quick else "full"]
    out = Path(args.out)
    results: dict[str, list[dict]] = {}
    parts = args.only or list(PARTS)
    for i, part in enumerate(parts):
        compute, stem = PARTS[part]
        start = time.time()
        with Heartbeat(f"theory part {i + 1}/{len(parts)} {part}"):  # a line every 30 s while it runs
            results[part] = compute(settings)
        write_table(out / f"{stem or part}.csv", results[part], digits=6)
        if part in FIGURES:
            FIGURES[part](results, out)
        print(f"{part}: {len(results[part])} rows in {time.time() - start:.1f} s", flush=True)
    if all(k in results for k in ("width", "margin", "coherent")):
        results["fits"] = tables.fits_table(results["width"], results["margin"], results["coherent"])
        write_table(out / "fits.csv", results["fits"], digits=6)
        figures.interference(results["margin"], results["fits"], out)
    print(f"written to {out}/")


if __name__ == "__main__":
    main()
