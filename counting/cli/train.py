"""counting-train: train one model, or a cohort of models as one program (Hydra app).

    counting-train task.name=qc task.m=16 task.n=16 model.d=32 train.steps=2000
    counting-train cohort.m=[4,8,16,32] cohort.seed=[0,1,2]
"""

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from counting.cli import after_sweep, fail, hydra_main, prepare, run_config
from counting.config import ConfigError


@hydra_main("config")
def main(raw: DictConfig) -> None:
    prepare()  # again here: a SLURM job runs only this function, in a fresh process
    cfg = run_config(raw)
    try:  # what happens after the sweep is validated before any training
        after_sweep(raw)
    except ConfigError as err:
        fail(err)
    axes = OmegaConf.to_container(raw.get("cohort", {}), resolve=True) or {}
    max_models = axes.pop("max_models", None)
    from counting.cohort import expand  # imports jax: after the first validation

    try:
        members = expand(cfg, axes)
    except ConfigError as err:
        fail(err)
    from counting.runner import execute, execute_many

    if len(members) == 1 and not any(axes.values()):
        folder, record = execute(cfg)
        m = record.get("metrics", {})
        print(
            f"{record['status']}: {cfg.task.name} m={cfg.task.m} n={cfg.task.n} d={cfg.model.d} "
            f"accuracy={m.get('accuracy', float('nan')):.4f} (baseline {m.get('baseline_accuracy', float('nan')):.4f}) "
            f"after {record.get('steps')} steps"
        )
        print(f"record: {folder / 'record.json'}")
        return
    report = execute_many(members, max_models=max_models)
    print(report.summary())
    print(f"records: {members[0].results_dir}/{members[0].experiment}/runs/")
    if report.failed and HydraConfig.get().mode != RunMode.MULTIRUN:
        sys.exit(1)  # in a sweep, the SweepEnd callback reports failures after every cell ran


if __name__ == "__main__":
    main()
