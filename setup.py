"""Packaging that pyproject.toml cannot say: the top-level experiments/ folder ships inside the
package as counting/conf/experiment/, Hydra's config group `experiment` (counting.cli).
Everything else is in pyproject.toml."""

from setuptools import find_namespace_packages, setup

setup(
    packages=[*find_namespace_packages(include=["counting", "counting.*"], exclude=["*.__pycache__"]),
              "counting.conf.experiment"],
    package_dir={"counting.conf.experiment": "experiments"},
)
