"""Roofline: how close the cohort's training step comes to what this machine can do.

    python benchmarks/roofline.py --out benchmarks/results/roofline      # writes .json and .md
    python benchmarks/roofline.py --d 8 16 --members 1 4 --budget 0.3     # a quick look
    python benchmarks/roofline.py --strategies vmap map                   # both batchings at every d

Three measurements, each on an idle machine (pause background sweeps: kill -STOP <pid>):
  peak       a large float32 matmul (2048 and 4096 square, jitted, one XLA device, whose
             matmul uses every core): the best GFLOP/s of several calls;
  bandwidth  a STREAM-style triad (a + s * b over 64 Mi floats, jitted): the best GB/s, counting
             the two reads and the write;
  cohort     the compiled cohort train chunk of `counting.training.program` (the model of
             benchmarks/cohort.py: QC, d = n = m, L = 1, H = 1, w = 4d, batch 128, AdamW), with
             the CLI's device layout (one XLA CPU device per core, members split over them), at
             each d and number of members, timed over whole chunks after a warm-up call.
The FLOPs and bytes of one member-step come from XLA's cost analysis of the compiled program
(`Compiled.cost_analysis()`). XLA counts a loop's body once, not times its trip count, so the
FLOPs are those of a one-member program (its body is one step of one member: the arithmetic a
member-step costs whatever the batching), and the bytes those of the program as compiled (its
body is one step of the members that run side by side on a device: `members_per_call`),
divided by those members. Achieved GFLOP/s = model-steps/s x FLOPs per member-step; the
fraction of peak compares it with the matmul's; bytes/s with the triad's.

`--strategies`: `auto` is what the suite runs (`members_per_call`: vmap up to
CPU_VMAP_MAX_D on the CPU, turns above); `vmap` forces all of a device's members side by side,
`map` one at a time. The output names the CPU model, the date and the command.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def best_seconds(fn, budget_s: float, least: int = 3) -> float:
    """The fastest of repeated calls of `fn` (which blocks until its result is ready)."""
    fn()  # warm-up: compile, first touch
    times, spent = [], 0.0
    while len(times) < least or spent < budget_s:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        spent += times[-1]
    return min(times)


def peak(budget_s: float) -> dict:
    """Matmul GFLOP/s and triad GB/s on one XLA device (its kernels use every core)."""
    import jax
    import jax.numpy as jnp

    out = {"matmul_gflops": {}, "device": jax.devices()[0].device_kind, "xla_devices": len(jax.devices())}
    for size in (2048, 4096):
        a = jax.random.normal(jax.random.PRNGKey(0), (size, size), jnp.float32)
        b = jax.random.normal(jax.random.PRNGKey(1), (size, size), jnp.float32)
        mm = jax.jit(lambda x, y: x @ y)
        s = best_seconds(lambda: mm(a, b).block_until_ready(), budget_s)
        out["matmul_gflops"][size] = 2 * size**3 / s / 1e9
    size = 64 * 2**20
    a = jnp.ones((size,), jnp.float32)
    b = jnp.ones((size,), jnp.float32)
    triad = jax.jit(lambda x, y: x + 1.5 * y)
    s = best_seconds(lambda: triad(a, b).block_until_ready(), budget_s)
    out["triad_gbs"] = 3 * 4 * size / s / 1e9
    out["peak_gflops"] = max(out["matmul_gflops"].values())
    return out


def cohort_point(d: int, members: int, strategy: str, budget_s: float, model_steps: int) -> dict:
    """One cohort program: model-steps/s and XLA's FLOPs and bytes per member-step."""
    import jax
    import jax.numpy as jnp
    from cohort import run_config

    from counting.sweep.plan import expand
    from counting.training.program import cohort_mesh, compile_program, members_per_call, prepare_cohort, spread

    def program(N: int, steps: int, per_call):
        cohort, state = prepare_cohort(expand(run_config(d, steps), {"seed": list(range(N))}))
        mesh = cohort_mesh(N)
        state = spread(state, mesh)
        inputs = cohort.inputs(list(range(N)), mesh)
        local = N if mesh is None else N // mesh.size
        per = {"auto": None, "vmap": local, "map": 1}[per_call] if isinstance(per_call, str) else per_call
        prog = compile_program(cohort, state, inputs, mesh, per)
        (chunk,) = prog.chunks.values()
        return prog, chunk, state, inputs, mesh

    _, one_chunk, *_ = program(1, 1, 1)
    flops = one_chunk.cost_analysis()["flops"]  # the body: one step of one member
    steps = max(8, min(2000, model_steps // members))
    prog, chunk, state, inputs, mesh = program(members, steps, strategy)
    cost = chunk.cost_analysis()
    per_call = prog.layout["members_per_call"]
    devices = prog.layout["devices"]
    bytes_per = cost["bytes accessed"] / per_call  # the body: one step of one device's side-by-side members
    active = spread(jnp.ones((members,), bool), mesh)
    holder = {"state": state}

    def call():
        holder["state"], losses = chunk(holder["state"], inputs.m_N, inputs.k_N, active)
        losses.block_until_ready()

    s = best_seconds(call, budget_s, least=2)
    rate = members * steps / s
    return {"d": d, "members": members, "strategy": strategy, "members_per_call": per_call, "devices": devices,
            "auto_members_per_call": min(members_per_call(d, members // devices if members % devices == 0 else members),
                                         members),
            "steps_per_call": steps, "model_steps_per_s": rate, "flops_per_member_step": flops,
            "bytes_per_member_step": bytes_per, "gflops": rate * flops / 1e9, "gbs": rate * bytes_per / 1e9,
            "arithmetic_intensity": flops / bytes_per, "backend": jax.default_backend()}


def child(args) -> None:
    """Runs in a fresh process: either the peak (one XLA device) or the cohort points."""
    if args.child == "peak":
        print(json.dumps(peak(args.budget)))
        return
    from counting.runtime.devices import use_cpu_devices

    use_cpu_devices()  # the CLI's layout: one XLA CPU device per core
    rows = []
    for d in args.d:
        for members in args.members:
            for strategy in args.strategies:
                rows.append(cohort_point(d, members, strategy, args.budget, args.model_steps))
                r = rows[-1]
                print(f"d={d:3d} members={members:3d} {strategy:>4} (per call {r['members_per_call']:2d}): "
                      f"{r['model_steps_per_s']:9.0f} model-steps/s, {r['gflops']:6.1f} GFLOP/s, "
                      f"{r['gbs']:6.1f} GB/s, {r['flops_per_member_step'] / 1e6:6.1f} MFLOP and "
                      f"{r['bytes_per_member_step'] / 1e6:6.1f} MB per member-step", file=sys.stderr, flush=True)
    print(json.dumps(rows))


def run_child(kind: str, args, env: dict | None = None) -> object:
    cmd = [sys.executable, __file__, "--child", kind, "--budget", str(args.budget), "--model-steps", str(args.model_steps),
           "--d", *map(str, args.d), "--members", *map(str, args.members), "--strategies", *args.strategies]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)
    if proc.returncode:
        raise SystemExit(f"roofline {kind}: exit {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(meta: dict, machine: dict, rows: list[dict]) -> str:
    lines = [f"# Roofline of the cohort train step: {meta['cpu']}", "",
             f"Measured {meta['date']} with `{meta['command']}` ({meta['cores']} cores, jax {meta['jax']}).", "",
             (f"Peak: float32 matmul {', '.join(f'{k}^2 {v:.1f}' for k, v in machine['matmul_gflops'].items())} GFLOP/s "
             f"(peak {machine['peak_gflops']:.1f}); triad {machine['triad_gbs']:.1f} GB/s."), "",
             "FLOPs and bytes per member-step from XLA's cost analysis (see benchmarks/roofline.py).", "",
             "| d | members | batching | per call | model-steps/s | GFLOP/s | % of peak | GB/s | % of triad | FLOP/byte |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['d']} | {r['members']} | {r['strategy']} | {r['members_per_call']} | "
                     f"{r['model_steps_per_s']:.0f} | {r['gflops']:.1f} | {100 * r['gflops'] / machine['peak_gflops']:.1f} | "
                     f"{r['gbs']:.1f} | {100 * r['gbs'] / machine['triad_gbs']:.0f} | {r['arithmetic_intensity']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--d", type=int, nargs="*", default=[8, 16, 32, 64])
    parser.add_argument("--members", type=int, nargs="*", default=[1, 4, 16, 64])
    parser.add_argument("--strategies", nargs="*", default=["auto"], choices=["auto", "vmap", "map"])
    parser.add_argument("--budget", type=float, default=1.5, help="seconds of timed calls per point (at least 2-3 calls)")
    parser.add_argument("--model-steps", type=int, default=4000, help="model-steps per timed call (steps = this / members)")
    parser.add_argument("--out", help="write PREFIX.json and PREFIX.md")
    parser.add_argument("--child", choices=["peak", "cohort"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    import jax

    env = {k: v for k, v in os.environ.items() if k not in ("COUNTING_CPU_DEVICES",)}
    machine = run_child("peak", args, env)
    print(f"peak: matmul {machine['matmul_gflops']} GFLOP/s, triad {machine['triad_gbs']:.1f} GB/s", flush=True)
    rows = run_child("cohort", args)
    meta = {"cpu": cpu_model(), "cores": os.cpu_count(), "date": datetime.date.today().isoformat(),
            "jax": jax.__version__, "command": "python benchmarks/roofline.py " + " ".join(sys.argv[1:])}
    text = table(meta, machine, rows)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out + ".json").write_text(json.dumps({"meta": meta, "machine": machine, "rows": rows}, indent=1))
        Path(args.out + ".md").write_text(text)
        print(f"wrote {args.out}.json and {args.out}.md")


if __name__ == "__main__":
    main()
