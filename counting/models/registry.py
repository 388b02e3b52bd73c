"""Model classes, looked up by `model.arch` (the allowed names: `counting.config.ARCHS`).

Every class takes `(cfg: ModelConfig, vocab, length, num_classes, rngs)` and maps
tokens_BxT to logits_BxAxC at the answer positions, so the task, the trainer, cohorts, the
stop rule and inspection serve each of them alike.
"""

from __future__ import annotations

from counting.config import ModelConfig
from counting.models.behrens import VARIANTS, BehrensModel
from counting.models.transformer import Transformer

ARCHS = {"transformer": Transformer, **{name: BehrensModel for name in VARIANTS}}


def model_class(cfg: ModelConfig) -> type:
    """The model class of model.arch (ARCHS): the Transformer, or a BehrensModel for a Behrens et al. variant."""
    return ARCHS[cfg.arch]
