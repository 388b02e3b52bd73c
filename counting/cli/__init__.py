"""Command-line entry points: the only place that reads raw Hydra configs.

Configs: the typed dataclasses' defaults, stored in Hydra's ConfigStore (`counting.cli.schema`:
the groups task, model, train, backend and the root defaults), `counting/conf/` (config.yaml,
llm.yaml, hydra/launcher) and the group `experiment`, whose files are the repository's
top-level `experiments/*.yaml` (see `experiment_dir`). Every command starts with `prepare()`.
"""

import functools
import logging
import os
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from counting.config import AnalysisConfig, ConfigError, OODConfig, RunConfig, analysis_from_dict

CONF = "pkg://counting.conf"  # the package's Hydra configs (counting/conf/)
EXPERIMENT = "experiment"  # the config group of experiments/*.yaml


def experiment_dir() -> Path:
    """The experiment configs: counting/conf/experiment/ in an installed wheel (setup.py ships
    experiments/ there), the top-level experiments/ folder in a source checkout."""
    package = Path(__file__).resolve().parents[1]
    shipped = package / "conf" / EXPERIMENT
    return shipped if shipped.is_dir() else package.parent / "experiments"


def experiment_names() -> list[str]:
    return sorted(p.stem for p in experiment_dir().glob("*.yaml"))


def prepare(devices: bool = True) -> None:
    """What every counting-* command does first: the XLA CPU devices (one per core, see
    counting.devices; `devices=False` in commands that never run JAX, which then need not
    import it) and, on a machine without a display, matplotlib's file-only backend."""
    if devices:
        from counting.devices import use_cpu_devices

        try:
            use_cpu_devices()
        except ValueError as err:
            fail(ConfigError(str(err)))
    headless_plots()


def headless_plots() -> None:
    """Agg when nothing could show a window (no DISPLAY or WAYLAND_DISPLAY on Linux) and the
    user has not chosen a backend (MPLBACKEND)."""
    display = sys.platform in ("win32", "darwin") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if not display and not os.environ.get("MPLBACKEND"):
        import matplotlib

        matplotlib.use("Agg")


def hydra_main(config_name: str = "config"):
    """`hydra.main` over the package's configs with the experiment group wired in; the app
    calls `prepare()` before Hydra starts. Use it as @hydra_main("config")."""
    import hydra

    register_configs(config_name)

    def decorate(task):
        app = hydra.main(version_base="1.3", config_path=CONF, config_name=config_name)(task)

        @functools.wraps(task)
        def entry(*args, **kwargs):
            prepare()
            return app(*args, **kwargs)

        return entry

    return decorate


def compose(overrides: list[str] = (), config_name: str = "config", return_hydra_config: bool = False) -> DictConfig:
    """The config a counting-train command line would get (Hydra's compose API; tests, notebooks)."""
    from hydra import compose as hydra_compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    register_configs(config_name)
    GlobalHydra.instance().clear()
    with initialize_config_module(CONF.removeprefix("pkg://"), version_base="1.3"):
        return hydra_compose(config_name, list(overrides), return_hydra_config=return_hydra_config)


def register_configs(config_name: str) -> None:
    """Before Hydra composes `config_name`: the dataclasses' defaults as its schema
    (`counting.cli.schema`) and, in a source checkout, the config source that reads
    experiments/ as the group `experiment` (a wheel has it in counting/conf/ already)."""
    from hydra.core.plugins import Plugins

    from counting.cli import schema
    from counting.cli.hydra_sources import ExperimentSearchPath, ExperimentSource

    schema.register(config_name)

    Plugins.instance().register(ExperimentSource)
    Plugins.instance().register(ExperimentSearchPath)


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
