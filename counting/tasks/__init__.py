"""Counting tasks, looked up by name."""

from counting.config import TaskConfig
from counting.tasks.base import BOS_ID, NUM_SPECIAL, SEP_ID, Batch, Task
from counting.tasks.histogram import Histogram
from counting.tasks.mfe import MostFrequent
from counting.tasks.mixture import mixed
from counting.tasks.qc import QueryCount

REGISTRY: dict[str, type[Task]] = {"qc": QueryCount, "mfe": MostFrequent, "histogram": Histogram}
COMPOSED = ("pairs", "mixture")  # samplers of counting.tasks.mixture, the same for every task


def task_class(cfg: TaskConfig) -> type[Task]:
    """The class that samples `cfg`: the task's own, or it with composed sampling."""
    cls = REGISTRY[cfg.name]
    return mixed(cls) if cfg.sampler in COMPOSED else cls


def make_task(cfg: TaskConfig) -> Task:
    """The Task of cfg (`task_class`), built."""
    return task_class(cfg)(cfg)


__all__ = ["BOS_ID", "NUM_SPECIAL", "SEP_ID", "Batch", "Task", "COMPOSED", "REGISTRY", "make_task", "task_class"]
