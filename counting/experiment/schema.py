"""The typed config dataclasses as Hydra's schema: the one home of every default.

Before Hydra composes a config, `register(config_name)` stores, in Hydra's ConfigStore, each
dataclass's defaults as a config node:

- counting-train (`config`): the groups task (qc, mfe, histogram: `TaskConfig` with that
  name), model/default (`ModelConfig`), train/default (`TrainConfig`, its stop rule
  included), and the root node `run_defaults`: experiment, results_dir, name, rerun, the
  cohort axes (`counting.sweep.plan.AXES`, each an empty list, and max_models), ood (`OODConfig`)
  and analysis (`AnalysisConfig`);
- counting-llm (`llm`): the group backend (hf, openai: `counting.llm.config.BACKEND_CONFIGS`)
  and the root node `llm_defaults` (`LLMConfig` without its backend).

The YAML files (conf/config.yaml, llm.yaml, experiments/*.yaml) hold only what
differs from these and what Hydra itself needs (defaults lists, callbacks, output folders).
The nodes are untyped on purpose: values are checked once, by the dataclasses'
`from_dict`, whose errors are one line naming the field and the allowed values.
`counting-train --cfg job` prints the composed result.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hydra.core.config_store import ConfigStore

RUN_ROOT = "run_defaults"
LLM_ROOT = "llm_defaults"


def node(obj: Any) -> Any:
    """A dataclass instance as plain YAML-like data (tuples become lists)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: node(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [node(v) for v in obj]
    return obj


def run_nodes() -> dict[str, dict[str, Any]]:
    """counting-train's nodes: {"group/name" or root name: node}."""
    from counting.config import TASKS, JobConfig, ModelConfig, TaskConfig, TrainConfig

    job = JobConfig()
    nodes = {f"task/{name}": node(TaskConfig(name=name)) for name in TASKS}
    nodes["model/default"] = node(ModelConfig())
    nodes["train/default"] = node(TrainConfig())
    nodes[RUN_ROOT] = {
        "experiment": job.run.experiment,  # records go to <results_dir>/<experiment>/runs/<config hash>/
        "results_dir": job.run.results_dir,
        "halving": node(job.run.halving),  # successive halving over the optimiser (part of a run's identity)
        **{k: v for k, v in node(job).items() if k != "run"},  # cohort, ood, analysis, rerun, name
    }
    return nodes


def llm_nodes() -> dict[str, dict[str, Any]]:
    """counting-llm's nodes."""
    from counting.llm.config import BACKEND_CONFIGS, LLMConfig

    nodes = {f"backend/{name}": node(cls()) for name, cls in BACKEND_CONFIGS.items()}
    root = node(LLMConfig())
    root.pop("backend")  # chosen in the defaults list (backend: hf)
    nodes[LLM_ROOT] = root
    return nodes


NODES = {"config": run_nodes, "llm": llm_nodes}


def register(config_name: str) -> None:
    """Stores the schema nodes of the app whose root config is `config_name` (idempotent)."""
    store = ConfigStore.instance()
    for path, value in NODES[config_name]().items():
        group, _, name = path.rpartition("/")
        store.store(name=name, node=value, group=group or None)
