"""The suite's Hydra configs (`pkg://counting.conf`): the root configs config.yaml
(counting-train) and llm.yaml (counting-llm), and hydra/launcher/. The groups task, model,
train and backend, and every default, come from the typed dataclasses (counting.experiment.schema).
The group experiment/ is the repository's top-level experiments/ folder: a wheel ships it here
as counting/conf/experiment/; a source checkout (an editable install) reads experiments/
directly (see counting.cli.experiment_dir)."""
