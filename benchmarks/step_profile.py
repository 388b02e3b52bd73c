"""Where a cohort step's time goes on this machine, by taking the step apart.

    python benchmarks/step_profile.py                  # d = 8 (vmapped) and d = 32 (members take turns)
    python benchmarks/step_profile.py --d 8 --members 12 --steps 400

For a cohort of QC members (n = 16, w = 64, batch 128, the phase protocol's model), each part
of the train step runs alone as a scanned, compiled program over the same members and the
same number of steps: sampling a batch; the forward pass; forward and backward; the optimiser
update on fixed gradients; the full step (what training runs); and the evaluation with its
host transfer (what happens every `eval_every` steps). Times are medians of `--repeats` runs,
in ms per step per cohort, with the model-steps per second of the full step. The parts overlap
(forward and backward contains the forward), so the shares do not add up to one.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp


def parts(d: int, members: int, steps: int, batch: int):
    import optax
    from flax import nnx

    from counting.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
    from counting.sweep.plan import expand
    from counting.training.metrics import loss_fn
    from counting.training.program import cohort_mesh, compile_program, members_per_call, prepare_cohort, spread

    cfg = RunConfig(task=TaskConfig(m=d, n=16, eval_size=1024), model=ModelConfig(d=d, w=64),
                    train=TrainConfig(steps=steps, batch=batch, eval_every=steps))
    cfgs = expand(cfg, {"seed": list(range(members))})
    cohort, state = prepare_cohort(cfgs)
    mesh = cohort_mesh(members)
    state = spread(state, mesh)
    inputs = cohort.inputs(range(members), mesh)
    local = members if mesh is None else members // mesh.size
    per_call = members_per_call(d, local)
    task, graphdef, tx = cohort.task, cohort.graphdef, cohort.tx
    at_A = task.answer_positions
    m_N, k_N = inputs.m_N, inputs.k_N

    def over_members(fn):
        """fn(state_one, m, k) scanned `steps` times, vmapped over the members (as the cohort)."""
        def one(s, m, k):
            return jax.lax.scan(lambda c, _: (fn(c, m, k), None), s, None, length=steps)[0]
        return jax.jit(jax.vmap(one))

    def sample(s, m, k):
        key, sub = jax.random.split(s.key)
        data = task.sample(sub, batch, m, k)
        return s._replace(key=key, step=s.step + data.tokens_BxT[0, 0])

    fixed = jax.vmap(lambda m, k: task.sample(jax.random.PRNGKey(0), batch, m, k))(m_N, k_N)

    def forward(s, m, k, data):
        logits = nnx.merge(graphdef, s.params)(data.tokens_BxT, at_A)
        return s._replace(step=s.step + (logits.sum() > 1e30).astype(jnp.int32))  # kept: XLA cannot fold it away

    def fwd_bwd(s, m, k, data):
        grads = jax.grad(lambda p: loss_fn(nnx.merge(graphdef, p)(data.tokens_BxT, at_A), data, at_A))(s.params)
        return s._replace(params=jax.tree.map(lambda p, g: p - 0.0 * g, s.params, grads))

    def update(s, m, k):
        updates, opt_state = tx.update(s.params, s.opt_state, s.params)
        return s._replace(params=optax.apply_updates(s.params, updates), opt_state=opt_state)

    def with_data(fn):
        def run(s, m, k, data):
            return jax.lax.scan(lambda c, _: (fn(c, m, k, data), None), s, None, length=steps)[0]
        return jax.jit(jax.vmap(run))

    program = compile_program(cohort, state, inputs, mesh, per_call)
    chunk = program.chunks[steps]
    active = spread(jnp.ones((members,), bool), mesh)
    evaluate = program.evaluate
    jitted = {"sample": over_members(sample), "forward": with_data(forward), "forward+backward": with_data(fwd_bwd),
              "optimiser update": over_members(update)}
    return {
        "sample": lambda: jitted["sample"](state, m_N, k_N),
        "forward": lambda: jitted["forward"](state, m_N, k_N, fixed),
        "forward+backward": lambda: jitted["forward+backward"](state, m_N, k_N, fixed),
        "optimiser update": lambda: jitted["optimiser update"](state, m_N, k_N),
        "full step (training)": lambda: chunk(jax.tree.map(jnp.copy, state), m_N, k_N, active),
        "evaluation + host transfer": lambda: jax.device_get((evaluate(state.params, inputs.eval_N), state.params)),
    }, per_call, mesh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--d", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--members", type=int, default=12)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from counting.runtime.devices import use_compilation_cache, use_cpu_devices

    use_cpu_devices()
    use_compilation_cache()
    for d in args.d:
        fns, per_call, mesh = parts(d, args.members, args.steps, args.batch)
        print(f"d = {d}, {args.members} members ({'vmapped' if per_call > 1 else 'taking turns'}, "
              f"{per_call} per call, {1 if mesh is None else mesh.size} devices), batch {args.batch}, n = 16, w = 64:")
        full = None
        for name, fn in fns.items():
            jax.block_until_ready(fn())  # compile and warm up
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                jax.block_until_ready(fn())
                times.append(time.perf_counter() - t0)
            per = statistics.median(times) / (1 if name.startswith("evaluation") else args.steps) * 1e3
            if name.startswith("full"):
                full = per
            unit = "ms per evaluation" if name.startswith("evaluation") else "ms per step"
            print(f"  {name:<28} {per:8.3f} {unit}")
        print(f"  full step: {args.members / full * 1e3:,.0f} model-steps/s")


if __name__ == "__main__":
    main()
