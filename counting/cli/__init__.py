"""Command-line entry points: the only place that reads raw Hydra configs."""

import logging
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from counting.config import AnalysisConfig, ConfigError, OODConfig, RunConfig, analysis_from_dict

CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")  # the project's Hydra config groups


def quiet_libraries() -> None:
    """Hydra sets the root logger to INFO; keep JAX's and Orbax's chatter out of run logs."""
    for name in ("absl", "jax", "orbax"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run_config(raw: DictConfig) -> RunConfig:
    """Raw Hydra config -> validated RunConfig, or one error line and exit status 2."""
    quiet_libraries()
    try:
        return RunConfig.from_dict(OmegaConf.to_container(raw, resolve=True))
    except ConfigError as err:
        fail(err)


def after_sweep(raw: DictConfig) -> tuple[OODConfig, AnalysisConfig]:
    """The `ood` grid and `analysis` settings of a raw config (ConfigError if invalid)."""
    section = lambda key: OmegaConf.to_container(raw[key], resolve=True) if raw.get(key) else None
    return OODConfig.from_dict(section("ood")), analysis_from_dict(section("analysis"))


def fail(err: ConfigError):
    """A user's mistake: one line on stderr, exit status 2, no traceback."""
    print(f"error: {err}", file=sys.stderr)
    sys.exit(2)
