"""Counting tasks, looked up by name (`counting.tasks.registry`: the one list of them).

Importing this package does not import JAX: the registry and `make_task` are JAX-free, and the
task protocol's names (`Task`, `Batch`, the token ids) load counting.tasks.base on first use.
"""

from counting.tasks.registry import COMPOSED, TASKS, class_of, host, register

_BASE = ("BOS_ID", "NUM_SPECIAL", "SEP_ID", "Batch", "Task")


def task_class(cfg) -> type:
    """The class that samples the task config `cfg`: the task's own, or it with composed sampling."""
    cls = class_of(cfg.name)
    if cfg.sampler in COMPOSED:
        from counting.tasks.mixture import mixed

        return mixed(cls)
    return cls


def make_task(cfg):
    """The Task of `cfg` (`task_class`), built."""
    return task_class(cfg)(cfg)


def __getattr__(name: str):
    if name in _BASE:
        from counting.tasks import base

        return getattr(base, name)
    if name == "REGISTRY":  # task.name -> its class, every registered task imported
        return {task: class_of(task) for task in TASKS}
    raise AttributeError(f"module 'counting.tasks' has no attribute {name!r}")


__all__ = ["BOS_ID", "NUM_SPECIAL", "SEP_ID", "Batch", "Task", "COMPOSED", "REGISTRY", "TASKS", "class_of", "host",
           "make_task", "register", "task_class"]
