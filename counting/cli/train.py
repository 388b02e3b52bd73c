"""counting-train: train one model, or a cohort of models as one program (Hydra app).

    counting-train task.name=qc task.m=16 task.n=16 model.d=32 train.steps=2000
    counting-train cohort.m=[4,8,16,32] cohort.seed=[0,1,2]
"""

import dataclasses
import sys

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from counting.cli import after_sweep, fail, hydra_main, prepare, quiet_libraries
from counting.config import ConfigError, RunConfig


@dataclasses.dataclass
class Job:
    """What one job (one cell of a sweep) trains: validated, before any compute."""

    cfg: RunConfig
    members: list[RunConfig]
    max_models: int | None
    rerun: str


def plan_job(raw: DictConfig) -> Job:
    """Raw config -> Job, or a ConfigError: every field of the run, the cohort axes, what
    follows the sweep (ood, analysis), the rerun policy, and that one member fits in memory."""
    raw = OmegaConf.masked_copy(raw, [k for k in raw if k != "hydra"])  # Hydra's own node: not ours to read
    cfg = RunConfig.from_dict(OmegaConf.to_container(raw, resolve=True))
    after_sweep(raw)
    axes = OmegaConf.to_container(raw.get("cohort", {}), resolve=True) or {}
    from counting.plan import check_max_models, expand, group, split_to_fit  # imports jax
    from counting.runner import RERUN

    max_models = check_max_models(axes.pop("max_models", None))
    rerun = str(raw.get("rerun", "stale"))
    if rerun not in RERUN:
        raise ConfigError(f"rerun: unknown value {rerun!r}; allowed: {', '.join(RERUN)}")
    members = expand(cfg, axes)
    for cohort in group(members):
        split_to_fit(cohort, max_models)  # ConfigError when one member does not fit
    return Job(cfg, members, max_models, rerun)


@hydra_main("config")
def main(raw: DictConfig) -> None:
    prepare()  # again here: a SLURM job runs only this function, in a fresh process
    quiet_libraries()
    try:
        job = plan_job(raw)
    except ConfigError as err:
        fail(err)
    from counting.cli.callbacks import record_cells
    from counting.runner import execute_many, folder_of

    record_cells([m.hash() for m in job.members])  # the sweep judges its own cells (SweepEnd)
    report = execute_many(job.members, max_models=job.max_models, rerun=job.rerun)
    if len(job.members) == 1:
        from counting.store import read_record

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
        print(f"record: {folder / 'record.json'}")
    else:
        print(report.summary())
        print(f"records: {job.cfg.results_dir}/{job.cfg.experiment}/runs/")
    if report.failed and HydraConfig.get().mode != RunMode.MULTIRUN:
        sys.exit(1)  # in a sweep, the SweepEnd callback reports failures after every cell ran


if __name__ == "__main__":
    main()
