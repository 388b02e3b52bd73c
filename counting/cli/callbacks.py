"""Hydra callbacks of counting-train's sweeps: every cell checked before the first job starts,
and the library's `finish` (aggregate, OOD evaluation, analysis, budget study, figures) when
the last one ends."""

import sys

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf


def results_name(config: DictConfig) -> str:
    """The results folder's name: `name` when the command line sets it, else the experiment's."""
    return config.get("name") or config.experiment


def validate_cells(config: DictConfig) -> None:
    """Composes and checks every cell of the sweep; one line naming the first bad cell and
    its field, exit status 2, before the first job starts."""
    from hydra.core.global_hydra import GlobalHydra

    from counting.cli import fail, quiet_libraries
    from counting.config import ConfigError
    from counting.experiment.compose import split_cells, sweep_arguments
    from counting.experiment.run import plan_job
    from counting.sweep.runner import DiskError, check_disk

    quiet_libraries()
    loader = GlobalHydra.instance().config_loader()
    try:
        cells = split_cells(sweep_arguments(config))
    except ConfigError as err:
        fail(err)
    jobs = []
    for i, cell in enumerate(cells):
        try:
            jobs.append(plan_job(loader.load_sweep_config(config, cell)))
        except ConfigError as err:
            shown = " ".join(o for o in cell if "=" in o and not o.startswith(("hydra.", "results_dir=")))
            fail(ConfigError(f"cell {i + 1}/{len(cells)} ({shown}): {err}"))
    try:
        check_disk([m for job in jobs for m in job.members], jobs[0].config.rerun if jobs else "stale")
    except DiskError as err:
        fail(err)


class SweepStart(Callback):
    """Before a multirun: every cell checked (see validate_cells), and a manifest of this
    invocation's own (see counting.cli.manifest)."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        """Checks every cell of the sweep, then starts this invocation's manifest in the sweep folder."""
        from counting.cli.manifest import start_manifest

        validate_cells(config)
        start_manifest(config.hydra.sweep.dir)


class SweepEnd(Callback):
    """After a multirun: `counting.experiment.finish` on this sweep's cells (the manifest);
    exits non-zero when a cell of this sweep failed or a step raised."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        """Runs `finish` on the cells of this sweep's manifest; exits 1 when a cell failed or a step raised."""
        from counting.cli.manifest import sweep_cells
        from counting.config import JobConfig
        from counting.experiment.run import finish

        raw = OmegaConf.to_container(OmegaConf.masked_copy(config, [k for k in config if k != "hydra"]), resolve=True)
        result = finish(config.results_dir, results_name(config), JobConfig.from_dict(raw),
                        sweep_cells(config.hydra.sweep.dir))
        if not result.ok:
            sys.exit(1)
