"""A tiny experiment from Python, with no Hydra command line: the `quick` experiment shrunk to
two vocabulary sizes, two seeds and 100 steps at d = 4 and 8, trained, analysed and drawn
through `counting.experiment`; then one figure of our own from its table.

    python examples/tiny_experiment.py [RESULTS_DIR]     # default: out/examples (about two minutes on 2 cores)

The same experiment from the command line writes the same table:
    counting-train -m experiment=quick model.d=4,8 'cohort.m=[2,8]' 'cohort.seed=[0,1]' \\
        train.steps=100 task.eval_size=256 name=tiny_example results_dir=out/examples
"""

import sys

import jax  # noqa: F401  (the devices must be set before the first JAX operation)

from counting.runtime.devices import use_cpu_devices

use_cpu_devices()  # one XLA CPU device per core, as the counting-* commands do

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from counting.experiment import run_experiment

OVERRIDES = ["model.d=4,8", "cohort.m=[2,8]", "cohort.seed=[0,1]", "train.steps=100", "task.eval_size=256",
             "name=tiny_example"]


def main(results_dir: str = "out/examples") -> None:
    result = run_experiment("quick", OVERRIDES, results_dir=results_dir, show_progress=False)
    if not result.ok:
        sys.exit("failed: " + "; ".join(result.failed))
    print(f"{len(result.rows)} models; thresholds:")
    for r in result.thresholds:
        print(f"  d={r['d']} m_thr={r['m_thr']:.3g} [{r['m_thr_low']:.3g}, {r['m_thr_high']:.3g}] ({r['method']})")

    fig, ax = plt.subplots(figsize=(4, 3))  # a figure of our own: accuracy against m, one curve per d
    for d in sorted({r["d"] for r in result.rows}):
        cells = sorted((c for c in result.analysis.cell_rows if c["d"] == d), key=lambda c: c["m"])
        ax.plot([c["m"] for c in cells], [c["accuracy"] for c in cells], marker="o", label=f"d = {d}")
    ax.set(xscale="log", xlabel="vocabulary size m", ylabel="held-out accuracy")
    ax.legend()
    path = result.root / "figures" / "example_accuracy_vs_m.png"
    fig.savefig(path, dpi=100, metadata={"Software": None})
    print(f"figures: {result.paths['figures']} and {path}")


if __name__ == "__main__":
    main(*sys.argv[1:])
