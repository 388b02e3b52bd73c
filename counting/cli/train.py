"""counting-train: train one model, or a cohort of models as one program (Hydra app).

    counting-train task.name=qc task.m=16 task.n=16 model.d=32 train.steps=2000
    counting-train cohort.m=[4,8,16,32] cohort.seed=[0,1,2]
    counting-train -m experiment=quick          # a sweep: one job per cell, then the analysis

A thin wrapper: each job is `counting.experiment.plan_job` then `train_job`; the sweep's end is
`counting.experiment.finish` (the SweepEnd callback).
"""

import sys

from omegaconf import DictConfig

from counting.cli import fail, hydra_main, prepare, quiet_libraries
from counting.config import ConfigError


@hydra_main("config")
def main(raw: DictConfig) -> None:
    """counting-train (Hydra app): trains one job (a cell of a sweep), then prints its model's result or the
    sweep report; outside a multirun exits 1 when a member failed."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    prepare()  # again here: a SLURM job runs only this function, in a fresh process
    quiet_libraries()
    from counting.cli.manifest import record_cells
    from counting.experiment import plan_job, train_job
    from counting.store import RECORD, read_record
    from counting.sweep.runner import DiskError, folder_of

    try:
        job = plan_job(raw)
        report = train_job(job, on_members=record_cells)  # the sweep judges its own cells (SweepEnd)
    except (ConfigError, DiskError) as err:
        fail(err)
    if len(job.members) == 1:
        cfg, folder = job.cfg, folder_of(job.members[0])
        record = read_record(folder) or {}
        m = record.get("metrics", {})
        how = "already finished, not retrained" if report.skipped else (
            f"copied from experiment {record.get('copied_from')}" if report.copied else "trained now")
        print(
            f"{record.get('status')}: {cfg.task.name} m={cfg.task.m} n={cfg.task.n} d={cfg.model.d} "
            f"accuracy={m.get('accuracy', float('nan')):.4f} (baseline {m.get('baseline_accuracy', float('nan')):.4f}) "
            f"after {record.get('steps')} steps, stopped by {record.get('stop_reason')} ({how})"
        )
        print(f"record: {folder / RECORD}")
    else:
        print(report.summary())
        print(f"records: {job.cfg.results_dir}/{job.cfg.experiment}/runs/")
    if report.failed and HydraConfig.get().mode != RunMode.MULTIRUN:
        sys.exit(1)  # in a sweep, the SweepEnd callback reports failures after every cell ran


if __name__ == "__main__":
    main()
