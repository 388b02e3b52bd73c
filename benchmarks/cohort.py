"""Cohort benchmark: model-steps per second of one cohort program against per-run loops.

    python benchmarks/cohort.py --out benchmarks/cohort.json
    python benchmarks/cohort.py --configs qc-16 qc-64 qc-16-x64 qc-16-x256 --out gpu.json   # on a GPU
    python benchmarks/cohort.py --configs tiny --repeats 1    # seconds: what tests/test_benchmarks.py runs

On a GPU the JAX modes and the PyTorch loop all run on it (torch with CUDA installed); the
GPU targets are cohorts of 64 and 256 models (qc-16-x64, qc-16-x256) against the PyTorch
per-run loop. Exits with status 1 when any run of any mode fails (after the others ran).

For each configuration (QC balanced, L = 1, H = 1, w = 4d, learned positions, pre-LN, AdamW,
batch 128) it measures, each in a fresh subprocess (so peak RSS belongs to that mode alone):
  single  the project's own per-run loop: `counting.sweep.cohort.train_cohort` on a cohort of one,
          model by model;
  cohort  `counting.sweep.cohort.train_cohort`: all models as one scanned XLA program;
  torch   an idiomatic PyTorch eager loop per run (same model and sampler), when torch is
          installed (`pip install torch`); skipped otherwise;
  ensemble  PyTorch's own ensemble training (torch.func: stack_module_state + functional_call
          under vmap, one fresh batch per member, the same AdamW and per-member clipping), eager;
  ensemble_compiled  the same with the vmapped gradient under torch.compile (its compilation,
          a warm-up call before the loop, is compile_s, kept out of the rate as the cohort's is).
model_steps_per_s excludes compilation (reported as compile_s); wall_s includes it.
Each mode runs `--repeats` times (default 3), alternating modes so that slow phases of a
shared machine hit all of them; every run is a row of the JSON (with its `repeat` index),
and the comparison uses the median run of each mode (also a row, `repeat` = "median").
gflops counts the FLOPs of the full-sequence model (what the PyTorch loop computes) so that
modes compare on equal work; the JAX model skips the last block's non-answer positions, so
its executed FLOP rate is lower (exec_gflops).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

CONFIGS = {  # name: (d = n = m, models, steps per model)
    "qc-16": (16, 12, 600),
    "qc-64": (64, 8, 150),
    "qc-16-x64": (16, 64, 600),  # the GPU target's cohort of 64 models: --configs qc-16-x64
    "qc-16-x256": (16, 256, 600),  # a cohort of 256 models (GPU)
    "tiny": (4, 2, 20),  # a smoke test of every mode
}
DEFAULT = ["qc-16", "qc-64"]
MODES = ["single", "cohort", "torch", "ensemble", "ensemble_compiled"]
TORCH_MODES = ("torch", "ensemble", "ensemble_compiled")
BATCH = 128


def flops_per_step(d: int, n: int, batch: int, answer_only: bool) -> float:
    """Forward + backward (3x forward) matmul FLOPs of one training step of one model."""
    T, C, w = n + 2, n + 1, 4 * d  # BOS, n tokens, query
    kv = 2 * 2 * d * d * T  # key and value projections at every position
    per_q = 2 * 2 * d * d + 2 * 2 * T * d + 2 * 2 * d * w + 2 * d * C  # query, out, scores+AV, MLP, head
    A = 1 if answer_only else T
    return 3 * batch * (kv + A * per_q)


def run_config(d: int, steps: int):
    from counting.config import ModelConfig, RunConfig, TaskConfig, TrainConfig

    return RunConfig(
        task=TaskConfig(name="qc", m=d, n=d, sampler="balanced", eval_size=512),
        model=ModelConfig(d=d, L=1, H=1, w=4 * d, pos="learned", norm="pre_ln", causal=False, attention="softmax"),
        train=TrainConfig(steps=steps, batch=BATCH, eval_every=steps, warmup=10),
    )


def measure_jax(mode: str, d: int, models: int, steps: int) -> dict:
    import dataclasses

    import jax

    from counting.runtime.devices import use_compilation_cache, use_cpu_devices

    use_cpu_devices()  # one XLA CPU device per core, as counting-train gets
    use_compilation_cache()  # as the commands: compile_s is what a second run of the same shapes pays

    from counting.sweep.cohort import train_cohort
    from counting.sweep.plan import expand

    cfg = run_config(d, steps)
    t0 = time.perf_counter()
    if mode == "cohort":
        results = train_cohort(expand(cfg, {"seed": list(range(models))}))
        train_s, compile_s = results[0].train_s, results[0].compile_s
    else:  # the per-run loop: a cohort of one, model by model
        train_s = compile_s = 0.0
        for seed in range(models):
            (r,) = train_cohort([dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=seed))])
            train_s, compile_s = train_s + r.train_s, compile_s + r.compile_s
    return {"train_s": train_s, "compile_s": compile_s, "wall_s": time.perf_counter() - t0,
            "device": jax.devices()[0].device_kind}


def measure_torch(d: int, models: int, steps: int, mode: str = "torch") -> dict:
    import torch
    from torch_reference import device, train_ensemble, train_one

    torch.set_num_threads(os.cpu_count() or 1)
    t0 = time.perf_counter()
    compile_s = 0.0
    if mode == "torch":
        train_s = sum(train_one(d=d, n=d, m=d, batch=BATCH, steps=steps, seed=seed) for seed in range(models))
    else:
        train_s, compile_s = train_ensemble(d=d, n=d, m=d, batch=BATCH, steps=steps, models=models,
                                            compile=mode == "ensemble_compiled")
    name = torch.cuda.get_device_name() if device() == "cuda" else "cpu"
    return {"train_s": train_s, "compile_s": compile_s, "wall_s": time.perf_counter() - t0, "device": name}


def one(name: str, mode: str) -> dict:
    d, models, steps = CONFIGS[name]
    out = measure_torch(d, models, steps, mode) if mode in TORCH_MODES else measure_jax(mode, d, models, steps)
    rate = models * steps / out["train_s"]
    return {
        "name": name, "mode": mode, "models": models, "d": d, "n": d, "m": d, "batch": BATCH, "steps": steps,
        "model_steps_per_s": rate,
        "gflops": rate * flops_per_step(d, d, BATCH, answer_only=False) / 1e9,
        "exec_gflops": rate * flops_per_step(d, d, BATCH, answer_only=mode not in TORCH_MODES) / 1e9,
        "compile_s": out["compile_s"], "wall_s": out["wall_s"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "device": out["device"],
    }


def report(r: dict) -> None:
    print(f"{r['name']:>6} {r['mode']:>6} [{r['repeat']}]: {r['model_steps_per_s']:8.1f} model-steps/s, "
          f"{r['gflops']:6.1f} GFLOP/s full-model equivalent (executed {r['exec_gflops']:5.1f}), compile {r['compile_s']:5.1f}s, "
          f"wall {r['wall_s']:6.1f}s, peak RSS {r['peak_rss_mb']:6.0f} MB [{r['device']}]", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="write the rows as a JSON list to this file")
    parser.add_argument("--configs", nargs="*", default=DEFAULT, choices=list(CONFIGS))
    parser.add_argument("--modes", nargs="*", default=["single", "cohort", "torch"], choices=MODES)
    parser.add_argument("--repeats", type=int, default=3, help="runs per mode (alternating); the median is compared")
    parser.add_argument("--one", nargs=2, metavar=("NAME", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(*args.one)))
        return

    modes = list(args.modes)
    if any(mode in TORCH_MODES for mode in modes):
        try:
            import torch  # noqa: F401
        except ImportError:
            print("torch: skipped (torch is not installed)", file=sys.stderr)
            modes = [mode for mode in modes if mode not in TORCH_MODES]
    runs, rows, failed = [], [], []
    for name in args.configs:
        for repeat in range(args.repeats):
            for mode in modes:
                proc = subprocess.run([sys.executable, __file__, "--one", name, mode], capture_output=True, text=True,
                                      cwd=os.path.dirname(os.path.abspath(__file__)))
                if proc.returncode:
                    print(f"{name} {mode} failed:\n{proc.stderr}", file=sys.stderr)
                    failed.append(f"{name} {mode}")
                    continue
                runs.append({**json.loads(proc.stdout.strip().splitlines()[-1]), "repeat": repeat})
                report(runs[-1])
        for mode in modes:
            mine = sorted((r for r in runs if r["name"] == name and r["mode"] == mode), key=lambda r: r["model_steps_per_s"])
            if mine:
                rows.append({**mine[(len(mine) - 1) // 2], "repeat": "median"})
    print("\nmedian runs:")
    for r in rows:
        report(r)

    print()
    print(f"{'config':>6} {'models':>6} {'cohort/single':>14} {'cohort/torch':>13} {'cohort/ensemble':>16} "
          f"{'cohort/compiled':>16}  cohort wall vs single wall")
    for name in args.configs:
        by = {r["mode"]: r for r in rows if r["name"] == name}
        if "cohort" not in by:
            continue
        ratio = lambda other: (f"{by['cohort']['model_steps_per_s'] / by[other]['model_steps_per_s']:.2f}x"
                               if other in by else "-")
        wall = (f"{by['single']['wall_s'] / by['cohort']['wall_s']:.2f}x faster" if "single" in by else "-")
        print(f"{name:>6} {by['cohort']['models']:>6} {ratio('single'):>14} {ratio('torch'):>13} "
              f"{ratio('ensemble'):>16} {ratio('ensemble_compiled'):>16}  {wall}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(runs + rows, f, indent=2)
        print(f"\nwrote {args.out}")
    if failed:
        print(f"\nFAILED: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
