"""The suite's Hydra configs (counting.experiment.compose.config_dir: this folder in a checkout,
counting/conf/ in a wheel): the root configs config.yaml
(counting-train) and llm.yaml (counting-llm), and hydra/launcher/. The groups task, model,
train and backend, and every default, come from the typed dataclasses (counting.experiment.schema).
The group experiment/ is the repository's top-level experiments/ folder (a wheel ships it as
counting/experiment_configs/), registered by counting.experiment.compose."""
