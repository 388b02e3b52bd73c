"""Looking inside models: which counting mechanism each learned, whether interventions
confirm it, what its weights do in token space, how its weights scale, and how the seeds of
a cell compare.

`diagnose(task_cfg, model, interventions=False)` runs every diagnostic on one model (trained,
untrained or hand-built; a counting.models.transformer.Transformer or a counting.models.behrens.BehrensModel);
`inspect_experiment(results_dir, name, interventions=False)` runs it on every saved model of
an experiment and writes results/<name>/inspect.csv, inspect_fit.csv, inspect_seeds.csv and
inspect_maps.npz. One concern per module: anatomy (the counting layer's pieces per model
class), trace (the forward pass read), geometry, attention, scale, probes, label,
interventions (the causal tests), token_space (weights read on the tokens), seeds (linear
maps between seeds), growth, load, diagnose, run.
"""

from counting.inspect.diagnose import CAUSAL, DIAGNOSTICS, Reading, diagnose, read
from counting.inspect.label import CAUSAL_MECHANISMS, MECHANISMS, causal_label, label
from counting.inspect.load import InspectError
from counting.inspect.run import FIT, MAPS, SEEDS, TABLE, inspect_experiment
from counting.inspect.seeds import seed_pairs
from counting.inspect.token_space import summary as token_summary
from counting.inspect.token_space import token_maps

__all__ = ["CAUSAL", "CAUSAL_MECHANISMS", "DIAGNOSTICS", "FIT", "MAPS", "MECHANISMS", "SEEDS", "TABLE", "InspectError",
           "Reading", "causal_label", "diagnose", "inspect_experiment", "label", "read", "seed_pairs",
           "token_maps", "token_summary"]
