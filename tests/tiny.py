"""The tests' one tiny config: every test that trains builds its runs from `tiny(...)`, giving
only what differs from it (a field per section), so the sizes the tests rely on live here."""

import dataclasses

from counting.config import ModelConfig, RunConfig, StopConfig, TaskConfig, TrainConfig

TINY = RunConfig(
    task=TaskConfig(name="qc", m=3, n=4, eval_size=64),
    model=ModelConfig(d=8, L=1, H=1, w=16),
    train=TrainConfig(steps=20, batch=16, eval_every=10, seed=0),
)


def tiny(task: dict | None = None, model: dict | None = None, train: dict | None = None, stop: dict | None = None,
         base: RunConfig = TINY, **top) -> RunConfig:
    """TINY (or `base`) with fields replaced per section: tiny(task={"m": 5}, train={"steps": 60},
    stop={"patience": 2}, results_dir=..., experiment=...)."""
    t = dataclasses.replace(base.train, **(train or {}))
    if stop is not None:
        t = dataclasses.replace(t, stop=StopConfig(**stop))
    return dataclasses.replace(base, task=dataclasses.replace(base.task, **(task or {})),
                               model=dataclasses.replace(base.model, **(model or {})), train=t, **top)
