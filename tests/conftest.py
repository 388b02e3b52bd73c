import counting  # noqa: F401  (first: sets up one XLA host device per core)
import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(autouse=True)
def _rank_promotion_raises():
    jax.config.update("jax_numpy_rank_promotion", "raise")
    yield
