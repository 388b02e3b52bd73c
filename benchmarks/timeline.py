"""When each test ran on which pytest-xdist worker: a pytest plugin, and a summary of its output.

    PYTHONPATH=benchmarks TEST_TIMELINE=/tmp/timeline python -m pytest -p timeline   # record
    python benchmarks/timeline.py /tmp/timeline                                       # summarise
    python benchmarks/timeline.py /tmp/timeline --cache $COUNTING_JAX_CACHE           # + compiles

Run the recording from an empty compilation cache (a new COUNTING_JAX_CACHE folder) to count
what each test file compiles: `--cache` attributes every program the run wrote to the cache to
the tests that were running when its file appeared (shared evenly when both workers were), and
splits them into single jax operations run eagerly (a name jax.lax, jax.numpy or jax.random
defines: each compiles its own small program on first use at a new shape) and the rest.

Each worker appends [nodeid, start, end] (setup to teardown, seconds since the epoch) to
TEST_TIMELINE/<worker>.jsonl. The summary prints, per worker, its busy seconds and when its last
test ended after the first test started anywhere: how far apart the workers finished
(benchmarks/results/test_times.md)."""

import json
import os
import time
from collections import Counter
from pathlib import Path

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    start = time.time()
    yield
    folder = Path(os.environ.get("TEST_TIMELINE", "test_timeline"))
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.jsonl").open("a") as f:
        f.write(json.dumps([item.nodeid, start, time.time()]) + "\n")


def summarise(folder: Path) -> None:
    rows = {p.stem: [json.loads(line) for line in p.open()] for p in sorted(folder.glob("*.jsonl"))}
    first = min(r[1] for worker in rows.values() for r in worker)
    print(f"busy {sum(r[2] - r[1] for worker in rows.values() for r in worker):.0f} worker-seconds in all")
    for name, worker in rows.items():
        print(f"{name}: busy {sum(r[2] - r[1] for r in worker):.0f} s, last test ended at +{max(r[2] for r in worker) - first:.0f} s")


def op_name(entry: str) -> str:
    """A cache entry's function name: "jit_broadcast_in_dim-<key>" -> "broadcast_in_dim"."""
    return entry.split("-", 1)[0].removeprefix("jit_").lstrip("_")


def is_eager_op(name: str) -> bool:
    """Whether a cached program is one of jax's own functions (jax.lax, jax.numpy, jax.random),
    i.e. one called outside any jit (inside one it would be part of that program)."""
    import jax

    return any(hasattr(module, name) for module in (jax.lax, jax.numpy, jax.random))


def compiles(folder: Path, cache: Path, top: int = 20) -> None:
    """Prints the programs in `cache` per test file of the timeline in `folder` (the --cache mode)."""
    tests = [(r[1], r[2], r[0].split("::")[0]) for p in folder.glob("*.jsonl") for r in map(json.loads, p.open())]
    total, eager = Counter(), Counter()
    entries = [e for e in cache.iterdir() if e.is_file()]
    for entry in entries:
        t = entry.stat().st_mtime
        running = [f for start, end, f in tests if start <= t <= end + 0.05] or ["(between tests)"]
        for f in running:
            total[f] += 1 / len(running)
            eager[f] += is_eager_op(op_name(entry.name)) / len(running)
    print(f"{len(entries)} programs in the cache, {sum(eager.values()):.0f} of them single eager jax operations")
    print("programs  eager ops  test file")
    for f, n in total.most_common(top):
        print(f"{n:8.0f}  {eager[f]:9.0f}  {f}")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--cache", type=Path, help="the run's compilation cache folder (an empty one at its start)")
    args = parser.parse_args()
    summarise(args.folder)
    if args.cache:
        compiles(args.folder, args.cache)
