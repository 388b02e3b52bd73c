"""The typed config dataclasses as Hydra's schema: the one home of every default.

Before Hydra composes a config, `register(config_name)` stores, in Hydra's ConfigStore, each
dataclass's defaults as a config node:

- counting-train (`config`): the groups task (qc, mfe, histogram: `TaskConfig` with that
  name), model/default (`ModelConfig`), train/default (`TrainConfig`, its stop rule
  included), and the root node `run_defaults`: experiment, results_dir, name, rerun, the
  cohort axes (`counting.plan.AXES`, each an empty list, and max_models), ood (`OODConfig`)
  and analysis (`AnalysisConfig`);
- counting-llm (`llm`): the group backend (hf, openai: `counting.llm.config.BACKEND_CONFIGS`)
  and the root node `llm_defaults` (`LLMConfig` without its backend).

The YAML files (counting/conf/config.yaml, llm.yaml, experiments/*.yaml) hold only what
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
    from counting.config import TASKS, AnalysisConfig, ModelConfig, OODConfig, RunConfig, TaskConfig, TrainConfig
    from counting.plan import AXES
    from counting.runner import RERUN

    run = RunConfig()
    nodes = {f"task/{name}": node(TaskConfig(name=name)) for name in TASKS}
    nodes["model/default"] = node(ModelConfig())
    nodes["train/default"] = node(TrainConfig())
    nodes[RUN_ROOT] = {
        "experiment": run.experiment,  # records go to <results_dir>/<experiment>/runs/<config hash>/
        "results_dir": run.results_dir,
        "name": None,  # another results folder for this run (results/<name>/), e.g. a variant
        "rerun": RERUN[0],  # a record from other code: stale = retrain it; never = keep; all = retrain all
        "cohort": {**{axis: [] for axis in AXES}, "max_models": None},  # members of one XLA program
        "ood": node(OODConfig()),  # after a sweep: lengths n' and distinct tokens k' to evaluate
        "analysis": node(AnalysisConfig()),  # after a sweep: thresholds, fits, budget study
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
