import jax
import pytest

from counting.devices import use_cpu_devices

use_cpu_devices()  # one XLA CPU device per core, as the commands get: cohorts split over them
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(autouse=True)
def _rank_promotion_raises():
    jax.config.update("jax_numpy_rank_promotion", "raise")
    yield
