"""Looking inside models: which counting mechanism each learned, and how its weights scale.

`diagnose(task_cfg, model)` runs every diagnostic on one model (trained, untrained or
hand-built); `inspect_experiment(results_dir, name)` runs it on every saved model of an
experiment and writes results/<name>/inspect.csv and inspect_fit.csv. One concern per
module: trace (the forward pass read), geometry, attention, scale, probes, label, growth,
load, run.
"""

from counting.inspect.diagnose import DIAGNOSTICS, diagnose
from counting.inspect.label import MECHANISMS, label
from counting.inspect.load import InspectError
from counting.inspect.run import FIT, TABLE, inspect_experiment

__all__ = ["DIAGNOSTICS", "FIT", "MECHANISMS", "TABLE", "InspectError", "diagnose", "inspect_experiment", "label"]
