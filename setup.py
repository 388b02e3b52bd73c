"""Packaging that pyproject.toml cannot say: the top-level experiments/ folder ships inside the
package as counting/experiment_configs/ (registered as Hydra's config group `experiment` by
counting.experiment.compose). Everything else is in pyproject.toml."""

from setuptools import find_namespace_packages, setup

setup(
    packages=[*find_namespace_packages(include=["counting", "counting.*"], exclude=["*.__pycache__"]),
              "counting.experiment_configs"],
    package_dir={"counting.experiment_configs": "experiments"},
)
