"""counting-inspect NAME: which counting mechanism each saved model of an experiment learned,
and how its weights scale; writes results/NAME/inspect.csv (one row per model, joins with
table.csv on hash; its token-space summaries tok_*), inspect_fit.csv (weight-norm exponents
against m/d), inspect_seeds.csv (the seeds of every cell compared: alignment of their token
embeddings and residual streams), inspect_maps.npz (each model's token-space maps) and the
figures inspect_coherence, inspect_attention, inspect_norms, inspect_mechanism,
inspect_token_maps, inspect_seeds (and, for top-k experiments, topk_accuracy_per_count) in
results/NAME/figures/. With --interventions, also the causal tests (counting.inspect.
interventions): their success rates, null controls and the causal_mechanism label per model.

    counting-inspect quick
    counting-inspect quick --interventions
    counting-inspect phase_qc --results-dir /data/results --sequences 256

With --serve, writes nothing: starts the debugger page (counting.serve) on 127.0.0.1 at a free
port (or --host/--port) and prints its address; choose a model, type or draw a sequence, see
its prediction, attention, residual and readout curve, and intervene (needs the serve extra:
pip install -e '.[serve]').

    counting-inspect quick --serve
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from counting.cli import RESULTS_DIR, fail, prepare, quiet_libraries
from counting.cli.analyze import add_analysis_options, analysis_config
from counting.config import ConfigError
from counting.store import INSPECT_FIT, INSPECT_MAPS, INSPECT_SEEDS, TABLE


def main(argv=None) -> None:
    """counting-inspect: inspects every finished model of the experiment (diagnostics, mechanism labels, with
    --interventions the causal tests), writes its tables and figures, or with --serve starts the debugger page."""
    parser = argparse.ArgumentParser(prog="counting-inspect", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment")
    parser.add_argument("--results-dir", default=RESULTS_DIR, help=f"default {RESULTS_DIR}")
    parser.add_argument("--sequences", type=int, default=512, help="held-out sequences per model (default 512)")
    parser.add_argument("--interventions", action="store_true",
                        help="run the causal tests too (CountAttend and histogram interventions, null controls)")
    parser.add_argument("--no-figures", action="store_true", help="write the tables only")
    parser.add_argument("--serve", action="store_true",
                        help="start the debugger page on the experiment's models instead (local web page, offline)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="--serve: the address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=0, help="--serve: the port (default 0: a free one)")
    add_analysis_options(parser)  # same options as counting-analyze (the figures' table analysis)
    args = parser.parse_args(argv)
    cfg = analysis_config(args)
    prepare()
    if args.sequences < 8:
        fail(ConfigError(f"--sequences: must be >= 8, got {args.sequences}"))
    quiet_libraries()
    if args.serve:
        serve(args)
        return
    start = time.time()

    from counting.inspect import InspectError, inspect_experiment

    log = lambda line: print(line, file=sys.stderr, flush=True)
    try:
        path, rows = inspect_experiment(args.results_dir, args.experiment, log, args.sequences, args.seed,
                                        args.interventions, cfg.tau)
    except InspectError as err:
        fail(err)
    done = [r for r in rows if r["inspect_status"] == "complete"]
    counts = {name: sum(r["mechanism"] == name for r in done) for name in ("histogram", "count_attend", "neither")}
    print(f"{len(done)}/{len(rows)} models inspected: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if args.interventions:
        causal = {name: sum(r.get("causal_mechanism") == name for r in done)
                  for name in ("histogram", "count_attend", "unconfirmed")}
        print("interventions: " + ", ".join(f"{k} {v}" for k, v in causal.items()))
    print(f"wrote {path}, " + ", ".join(str(path.with_name(f)) for f in (INSPECT_FIT, INSPECT_SEEDS, INSPECT_MAPS)))
    root = Path(args.results_dir) / args.experiment
    if not args.no_figures:
        if (root / TABLE).exists():
            from counting.cli.plot import draw
            from counting.plots.inspect import INSPECT_FIGURES

            print(draw(root, args.experiment, cfg, list(INSPECT_FIGURES))[1])
        else:
            print(f"no figures: {root / TABLE} does not exist (run counting-aggregate {args.experiment})")
    print(f"{time.time() - start:.0f} s")


def serve(args) -> None:
    """--serve: the debugger page until Ctrl-C; a missing extra, experiment or port is one line."""
    if not 0 <= args.port <= 65535:
        fail(ConfigError(f"--port: must be in 0..65535, got {args.port}"))
    try:
        from counting.serve.app import serve as serve_page
    except ImportError as err:
        fail(ConfigError(f"--serve: needs the serve extra ({err.name or err} is not installed): "
                         f"pip install -e '.[serve]'"))
    from counting.serve.debugger import ServeError

    try:
        serve_page(args.results_dir, args.experiment, args.host, args.port)
    except ServeError as err:
        fail(err)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
