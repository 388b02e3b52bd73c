"""Packaging that pyproject.toml cannot say: the top-level conf/ (the Hydra configs) and
experiments/ folders ship inside the package as counting/conf/ and counting/experiment_configs/
(read by counting.experiment.compose; experiments/ is registered as Hydra's config group
`experiment`). Everything else is in pyproject.toml."""

from setuptools import find_namespace_packages, setup

setup(
    packages=[*find_namespace_packages(include=["counting", "counting.*"], exclude=["*.__pycache__"]),
              "counting.conf", "counting.experiment_configs"],
    package_dir={"counting.conf": "conf", "counting.experiment_configs": "experiments"},
)
