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
    axes = OmegaConf.to_container(raw.get("cohort", {}), resolve=True) or {}
    max_models = axes.pop("max_models", None)
    from counting.plan import check_max_models, expand, group, split_to_fit  # imports jax
    from counting.runner import RERUN

    try:  # everything the run and what follows it read is validated before any training
        after_sweep(raw)
        rerun = str(raw.get("rerun", "stale"))
        if rerun not in RERUN:
            raise ConfigError(f"rerun: unknown value {rerun!r}; allowed: {', '.join(RERUN)}")
        max_models = check_max_models(max_models)
        members = expand(cfg, axes)
        for cohort in group(members):
            split_to_fit(cohort, max_models)  # one member must fit the memory
    except ConfigError as err:
        fail(err)
    from counting.runner import execute_many, folder_of

    report = execute_many(members, max_models=max_models, rerun=rerun)
    if len(members) == 1:
        folder = folder_of(cfg)
        from counting.store import read_record

        record = read_record(folder) or {}
        m = record.get("metrics", {})
        how = "already finished, not retrained" if report.skipped else (
            "copied from experiment " + str(record.get("copied_from")) if report.copied else "trained now")
        print(
            f"{record.get('status')}: {cfg.task.name} m={cfg.task.m} n={cfg.task.n} d={cfg.model.d} "
            f"accuracy={m.get('accuracy', float('nan')):.4f} (baseline {m.get('baseline_accuracy', float('nan')):.4f}) "
            f"after {record.get('steps')} steps, stopped by {record.get('stop_reason')} ({how})"
        )
        print(f"record: {folder / 'record.json'}")
    else:
        print(report.summary())
        print(f"records: {members[0].results_dir}/{members[0].experiment}/runs/")
    if report.failed and HydraConfig.get().mode != RunMode.MULTIRUN:
        sys.exit(1)  # in a sweep, the SweepEnd callback reports failures after every cell ran


if __name__ == "__main__":
    main()
