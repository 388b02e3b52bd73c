"""When each test ran on which pytest-xdist worker: a pytest plugin, and a summary of its output.

    PYTHONPATH=benchmarks TEST_TIMELINE=/tmp/timeline python -m pytest -p timeline   # record
    python benchmarks/timeline.py /tmp/timeline                                       # summarise

Each worker appends [nodeid, start, end] (setup to teardown, seconds since the epoch) to
TEST_TIMELINE/<worker>.jsonl. The summary prints, per worker, its busy seconds and when its last
test ended after the first test started anywhere: how far apart the workers finished
(benchmarks/results/test_times.md)."""

import json
import os
import sys
import time
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


if __name__ == "__main__":
    summarise(Path(sys.argv[1]))
