"""The suite's Hydra configs (`pkg://counting.conf`): config.yaml and the groups task/,
model/, train/ and hydra/launcher/. The group experiment/ is the repository's top-level
experiments/ folder: a wheel ships it here as counting/conf/experiment/; a source checkout
(an editable install) reads experiments/ directly (see counting.cli.experiment_dir)."""
