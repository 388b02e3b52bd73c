import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import jax
import pytest

from counting.runtime.devices import use_compilation_cache, use_cpu_devices
from counting.runtime.machine import xla_opt_level

# Every program the tests compile, in this process and in the commands they start, is compiled
# without LLVM's optimisations (XLA_FLAGS, read when the backend starts): a test trains a few
# dozen steps, so compiling is most of its time (benchmarks/results/compile_profile.md), and
# level 0 compiles faster (the suite's times at both levels: benchmarks/results/test_times.md).
# The floats can differ from the default level's in the last digits, so the level is part of a
# record's arithmetic (counting.runtime.machine.arithmetic): comparisons with the committed
# results are within tolerance, not exact. tests/golden.json holds a level-0 entry beside the
# default level's (`XLA_FLAGS=--xla_backend_optimization_level=0 python tests/test_golden.py
# --update`), so the golden run is still compared bit for bit on that machine kind.
# A level already in XLA_FLAGS is kept.
if xla_opt_level() is None:
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()

use_cpu_devices()  # one XLA CPU device per core, as the commands get: cohorts split over them
use_compilation_cache()  # as the commands do: a program compiled by one test (or an earlier run) is loaded by the next
jax.config.update("jax_numpy_rank_promotion", "raise")


def _absl_handler_off_capture_streams():
    """absl.logging makes its handler at import, bound to the sys.stderr of that moment: under
    pytest, the capture file of whichever test first imports flax or orbax. Every Hydra app run
    in process (logging.config.dictConfig) closes all live handlers, and absl's handler then
    closes its stream unless it is the current sys.stderr/stdout, which under capsys or
    redirect_stderr it is not: pytest's own capture file got closed and the session crashed
    (output lost, "I/O operation on closed file"). Bind it to the process's stderr instead, as
    outside pytest; nothing logs through it unless absl.app installs it."""
    try:
        from absl import logging as absl_logging
    except ImportError:
        return
    absl_logging.get_absl_handler().python_handler.setStream(sys.__stderr__)


_absl_handler_off_capture_streams()


@pytest.fixture(autouse=True)
def _rank_promotion_raises():
    jax.config.update("jax_numpy_rank_promotion", "raise")
    yield


# The order the test files run in: longest first, so that with one worker per core (pytest-xdist,
# a file on one worker) the short files fill the end and no worker waits idle on another's last
# long file. The seconds are each test's setup + call + teardown from a whole-suite run with an
# empty compilation cache, written by `python -m pytest --write-durations` (a fast-tier run
# updates only the tests it ran); a test missing from the file counts as DEFAULT_S.
DURATIONS = Path(__file__).with_name("durations.json")
DEFAULT_S = 1.0


def pytest_addoption(parser):
    parser.addoption("--write-durations", action="store_true",
                     help=f"write each test's seconds to {DURATIONS.name}, the run order of later runs")


@pytest.hookimpl(trylast=True)  # after -m and -k have deselected: the weights are of what runs
def pytest_collection_modifyitems(config, items):
    seconds = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    per_file = defaultdict(float)
    for item in items:
        per_file[item.path] += seconds.get(item.nodeid, DEFAULT_S)
    items.sort(key=lambda item: -per_file[item.path])  # stable: a file's own order kept


_measured = defaultdict(float)


def pytest_runtest_logreport(report):
    _measured[report.nodeid] += report.duration  # setup, call and teardown; on the controller under xdist


def pytest_sessionfinish(session):
    config = session.config
    if not config.getoption("--write-durations") or hasattr(config, "workerinput"):
        return  # xdist's workers leave it to the controller, which sees every report
    seconds = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    seconds.update({nodeid: round(s, 2) for nodeid, s in _measured.items()})
    DURATIONS.write_text(json.dumps(dict(sorted(seconds.items())), indent=0) + "\n")
