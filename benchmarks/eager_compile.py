"""What one jax operation run eagerly costs the first time it meets a shape: each such call
compiles its own small XLA program. Most programs the fast test tier compiles are of this kind
(`python benchmarks/timeline.py ... --cache`), so this is the price of each.

    python benchmarks/eager_compile.py [--shapes 200]

Runs four eager operations (ones, multiply, add, sum) at each of --shapes distinct shapes in a
fresh process per arm: without the persistent compilation cache, into an empty cache folder, and
again from that folder; prints seconds in all and per compiled program."""

import argparse
import subprocess
import sys
import tempfile
import time

OPS_PER_SHAPE = 4


def arm(shapes: int, cache: str | None) -> None:
    import jax.numpy as jnp

    from counting.runtime.devices import use_compilation_cache

    if cache:
        use_compilation_cache(cache)  # as the suite's commands and tests turn it on
    start = time.perf_counter()
    for n in range(1, shapes + 1):
        (jnp.ones((n, 3)) * 2 + 1).sum().block_until_ready()
    print(time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", type=int, default=200)
    parser.add_argument("--arm", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        return arm(args.shapes, args.cache)
    programs = OPS_PER_SHAPE * args.shapes
    with tempfile.TemporaryDirectory() as cache:
        for label, extra in (("no persistent cache", []), ("into an empty cache", ["--cache", cache]),
                             ("from that cache", ["--cache", cache])):
            out = subprocess.run([sys.executable, __file__, "--arm", "1", "--shapes", str(args.shapes), *extra],
                                 check=True, capture_output=True, text=True).stdout
            seconds = float(out.split()[-1])
            print(f"{label:22s} {seconds:6.2f} s for {programs} programs, {1000 * seconds / programs:5.1f} ms each")


if __name__ == "__main__":
    main()
