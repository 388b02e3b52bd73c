"""Configs of an experiment, composed with Hydra's public API: the apps' schema, the experiment
files, and the cells of a sweep.

Configs: the typed dataclasses' defaults, stored in Hydra's ConfigStore (`counting.experiment.schema`),
the top-level `conf/` (config.yaml, llm.yaml, hydra/launcher; a wheel ships it as
`counting/conf/`) and the group `experiment`, whose
files are the repository's top-level `experiments/*.yaml` (a wheel ships them as
`counting/experiment_configs/`): each is read once and stored in the ConfigStore as
`experiment/NAME` (package `_global_`), so `experiment=NAME` works from a source checkout and
from a wheel alike, and a user's own folder added with `hydra.searchpath=[file://DIR]`
(holding `DIR/experiment/NAME.yaml`) is found by Hydra as usual.

A sweep's cells are the product of its sweep overrides (`hydra.sweeper.params` of the
experiment, then the command line's `key=a,b,c`), in the order Hydra's basic sweeper launches
them.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from counting.spec import ConfigError

EXPERIMENT = "experiment"  # the config group of experiments/*.yaml
PACKAGE_HEADER = re.compile(r"^#\s*@package\s+(\S+)", re.MULTILINE)


def experiment_dir() -> Path:
    """The experiment configs: counting/experiment_configs/ in an installed wheel (setup.py ships the
    top-level experiments/ there), the top-level experiments/ folder in a source checkout."""
    package = Path(__file__).resolve().parents[1]
    shipped = package / "experiment_configs"
    return shipped if shipped.is_dir() else package.parent / "experiments"


def config_dir() -> Path:
    """The Hydra configs (config.yaml, llm.yaml and their groups): counting/conf/ in an
    installed wheel (setup.py ships the top-level conf/ there), the top-level conf/ in a source
    checkout. One folder either way: nothing is copied."""
    package = Path(__file__).resolve().parents[1]
    shipped = package / "conf"
    return shipped if shipped.is_dir() else package.parent / "conf"


CONF = str(config_dir())  # absolute, for hydra.main and initialize_config_dir


def experiment_names() -> list[str]:
    return sorted(p.stem for p in experiment_dir().glob("*.yaml"))


def load_yaml(path: Path) -> DictConfig:
    """A YAML config file, or a one-line ConfigError naming the file and where it is broken."""
    try:
        cfg = OmegaConf.load(path)
    except Exception as err:  # yaml.YAMLError and OmegaConf's own, each with a multi-line message
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = (getattr(err, "problem", None) or str(err).strip().splitlines()[0]).strip()
        raise ConfigError(f"{path}: not valid YAML{where}: {what}") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{path}: expected a mapping of config keys, got a {type(cfg).__name__}")
    return cfg


@functools.cache
def _experiment_nodes(folder: Path) -> tuple[tuple[str, DictConfig, str | None], ...]:
    out = []
    for path in sorted(folder.glob("*.yaml")):
        header = PACKAGE_HEADER.search(path.read_text())
        out.append((path.stem, load_yaml(path), header.group(1) if header else None))
    return tuple(out)


def register_configs(config_name: str) -> None:
    """Before Hydra composes `config_name` (config: counting-train, llm: counting-llm): the
    dataclasses' defaults as its schema and the experiment files as the group `experiment`."""
    from hydra.core.config_store import ConfigStore

    from counting.experiment import schema

    schema.register(config_name)
    store = ConfigStore.instance()
    for name, node, package in _experiment_nodes(experiment_dir()):
        store.store(name=name, node=node, group=EXPERIMENT, package=package)


def compose(overrides: Sequence[str] = (), config_name: str = "config", return_hydra_config: bool = False) -> DictConfig:
    """The config a counting-train (or counting-llm) command line would get, without the
    command line: for scripts, notebooks and tests. Sweep overrides (key=a,b) are not
    expanded here (see `cells`)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_configs(config_name)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(CONF, version_base="1.3"):
            return hydra_compose(config_name, list(overrides), return_hydra_config=return_hydra_config)
    finally:
        GlobalHydra.instance().clear()


def sweep_arguments(config: DictConfig) -> list[str]:
    """The sweep's arguments as Hydra's basic sweeper combines them: the config's
    hydra.sweeper.params first, then the command line's overrides."""
    params = config.hydra.sweeper.get("params") or {}
    return [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)


def split_cells(arguments: Sequence[str]) -> list[list[str]]:
    """Override lists, one per cell, as Hydra's basic sweeper makes them: every discrete sweep
    override (key=a,b,c) takes each of its values in turn, the last key varying fastest; a key
    given again keeps its first place and takes its last value."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    final: dict[str, list[str]] = {}
    for override in OverridesParser.create().parse_overrides(list(arguments)):
        key = override.get_key_element()
        if override.is_sweep_override():
            if not override.is_discrete_sweep():
                raise ConfigError(f"{key}: only discrete sweeps (a,b,c or range/choice) are supported, "
                                  f"got {override.input_line!r}")
            final[key] = [f"{key}={v}" for v in override.sweep_string_iterator()]
        else:
            final[key] = [f"{key}={override.get_value_element_as_str()}"]
    return [list(combo) for combo in itertools.product(*final.values())]
