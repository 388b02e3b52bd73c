"""Counting tasks, looked up by name."""

from counting.config import TaskConfig
from counting.tasks.base import BOS_ID, NUM_SPECIAL, SEP_ID, Batch, Task
from counting.tasks.histogram import Histogram
from counting.tasks.mfe import MostFrequent
from counting.tasks.qc import QueryCount

REGISTRY: dict[str, type[Task]] = {"qc": QueryCount, "mfe": MostFrequent, "histogram": Histogram}


def make_task(cfg: TaskConfig) -> Task:
    return REGISTRY[cfg.name](cfg)


__all__ = ["BOS_ID", "NUM_SPECIAL", "SEP_ID", "Batch", "Task", "REGISTRY", "make_task"]
