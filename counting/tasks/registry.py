"""The counting tasks by name: the one list of them, importable without JAX.

A task is one file under counting/tasks (or anywhere importable) holding a `Task` subclass
(counting.tasks.base); it becomes a choice of `task.name` with one line here (or one call of
`register` before the config is read, for a task that lives outside the package):

    TASKS = {..., "parity": "counting.tasks.parity:ParityCount"}

Each entry names the module and class, imported on first use, so the config (which reads its
allowed values from `TASKS`, late-bound: counting.spec.Registry) and the JAX-free parts of the
suite (the LLM probe's config, the analysis) never load JAX to know which tasks exist. This
module imports nothing of the suite: everything may read it.

`host` marks a task's host-side hooks (what the theory, the inspection, the debugger and the LLM
probe ask of a task: numpy on the host, never inside a training step). The numerics fingerprint
(counting.store.fingerprint) leaves a definition marked `host` out of the hash, so adding or
changing such a hook keeps the records of trained runs current; what a training step computes
stays in unmarked code, which the hash covers.
"""

from __future__ import annotations

import importlib
from typing import Any

TASKS: dict[str, str] = {  # task.name -> "module:Class"
    "qc": "counting.tasks.qc:QueryCount",
    "mfe": "counting.tasks.mfe:MostFrequent",
    "histogram": "counting.tasks.histogram:Histogram",
}
DRAWN = ("uniform", "balanced", "partition")  # samplers every task implements (its SAMPLERS dict; partition: Behrens
# et al.'s random-partition sequences)
COMPOSED = ("pairs", "mixture")  # samplers of counting.tasks.mixture, the same for every task: two-token sequences,
# weighted components (task.mixture)
SAMPLERS = (*DRAWN, *COMPOSED)  # task.sampler: the one list of the samplers
COMPONENTS = (*DRAWN, "pairs")  # task.mixture: what a mixture's components may be


def host(fn: Any) -> Any:
    """Marks a host-side hook of a task (numpy, outside training): the fingerprint skips it."""
    return fn


def register(name: str, target: str) -> None:
    """Adds a task defined outside the package ("module:Class") under `name`; call it before
    a config naming the task is read (the config's choices are read from `TASKS` when checked)."""
    if name in TASKS and TASKS[name] != target:
        raise ValueError(f"task.name: {name!r} is already registered to {TASKS[name]}")
    TASKS[name] = target


def class_of(name: str) -> type:
    """The Task subclass registered under `name` (its module imported on first use)."""
    if name not in TASKS:
        raise ValueError(f"task.name: {name!r} is not a task; choose from {', '.join(TASKS)}")
    module, _, attr = TASKS[name].partition(":")
    return getattr(importlib.import_module(module), attr)
