"""The top-level experiments/ folder as Hydra's config group `experiment`, without a symlink.

A wheel ships experiments/*.yaml as counting/conf/experiment/ (setup.py), where Hydra finds
them under pkg://counting.conf like any group. A source checkout has no such folder; there
`ExperimentSearchPath` adds `ExperimentSource`, which serves experiments/NAME.yaml as
experiment/NAME, behind the package's own configs. Registered by counting.cli.hydra_main.
"""

from __future__ import annotations

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from hydra.plugins.search_path_plugin import SearchPathPlugin

from hydra._internal.core_plugins.file_config_source import FileConfigSource

from counting.cli import CONF, EXPERIMENT, experiment_dir


class ExperimentSource(ConfigSource):
    """A folder of YAML files served as the config group `experiment`."""

    def __init__(self, provider: str, path: str) -> None:
        super().__init__(provider=provider, path=path)
        self.folder = FileConfigSource(provider=provider, path=f"file://{self.path}")

    @staticmethod
    def scheme() -> str:
        return "counting-experiments"

    @staticmethod
    def _inside(config_path: str) -> str | None:
        """'experiment/NAME' -> 'NAME', 'experiment' -> '', anything else -> None."""
        head, _, rest = config_path.strip("/").partition("/")
        return rest if head == EXPERIMENT else None

    def load_config(self, config_path: str) -> ConfigResult:
        inside = self._inside(config_path)
        if inside is None:
            raise ConfigLoadError(f"Config not found : {config_path}")
        return self.folder.load_config(inside)

    def available(self) -> bool:
        return self.folder.available()

    def is_group(self, config_path: str) -> bool:
        if config_path.strip("/") == "":
            return self.available()
        inside = self._inside(config_path)
        return inside is not None and self.folder.is_group(inside)

    def is_config(self, config_path: str) -> bool:
        inside = self._inside(config_path)
        return bool(inside) and self.folder.is_config(inside)

    def list(self, config_path: str, results_filter: ObjectType | None) -> list[str]:
        if config_path.strip("/") == "":
            return [EXPERIMENT] if self.available() and results_filter in (None, ObjectType.GROUP) else []
        inside = self._inside(config_path)
        return self.folder.list(inside, results_filter) if inside is not None and self.folder.is_group(inside) else []


class ExperimentSearchPath(SearchPathPlugin):
    """Adds the source checkout's experiments/ folder to the counting apps' search path
    (other Hydra apps in the same environment are left alone)."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        if not any(entry.path == CONF for entry in search_path.get_path()):
            return
        folder = experiment_dir()
        if folder.name == "experiments":  # a wheel's counting/conf/experiment/ is found already
            search_path.append("counting-experiments", f"{ExperimentSource.scheme()}://{folder}")
