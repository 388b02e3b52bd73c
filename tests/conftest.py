import sys

import jax
import pytest

from counting.runtime.devices import use_compilation_cache, use_cpu_devices

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
