"""Model classes by `model.arch`: the one list of them, importable without JAX.

Every class takes `(cfg: ModelConfig, vocab, length, num_classes, rngs)` and maps
tokens_BxT to logits_BxAxC at the answer positions, so the task, the trainer, cohorts, the
stop rule and inspection serve each of them alike. Each entry names the module and class
("module:Class"), imported on first use; the config reads its allowed values from `MODELS`
(late-bound: counting.spec.Registry). A new model class is one file and one line here.
"""

from __future__ import annotations

import importlib

# the six one-layer variants of Behrens, Biggio and Zdeborova (counting.models.behrens.VARIANTS),
# named as they name them
PEER = ("linear", "linear+softmax", "dot", "dot+softmax", "dotBOS", "dotBOS+softmax")
MODELS: dict[str, str] = {  # model.arch -> "module:Class"
    "transformer": "counting.models.transformer:Transformer",
    **{name: "counting.models.behrens:BehrensModel" for name in PEER},
}


def model_class(cfg) -> type:
    """The model class of model.arch (MODELS): the Transformer, or a BehrensModel for a Behrens et al. variant."""
    module, _, attr = MODELS[cfg.arch].partition(":")
    return getattr(importlib.import_module(module), attr)
