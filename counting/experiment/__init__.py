"""The pipeline as a library: an experiment planned, trained, aggregated, analysed and drawn
from Python, with the same results as `counting-train -m experiment=NAME`.

    from counting.experiment import run_experiment
    result = run_experiment("quick", ["model.d=4", "train.steps=200"], results_dir="out")

Modules: `compose` (Hydra's public compose API over the package's configs and the experiment
files; the cells of a sweep), `run` (plan, train, finish), `reproduce` (a committed experiment
retrained and compared, exactly or within a stated tolerance).
"""

from counting.experiment.compose import compose, experiment_dir, experiment_names
from counting.experiment.run import (
                                     ExperimentResult,
                                     Job,
                                     Plan,
                                     finish,
                                     plan_experiment,
                                     plan_job,
                                     run_experiment,
                                     train_job,
)

__all__ = ["ExperimentResult", "Job", "Plan", "compose", "experiment_dir", "experiment_names", "finish",
           "plan_experiment", "plan_job", "run_experiment", "train_job"]
