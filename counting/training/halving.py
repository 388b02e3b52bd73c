"""Successive halving over the optimiser, inside a cohort (`halving.*`, HalvingConfig).

A search's members are every (setting, seed) of a cell, where a setting is one (lr,
weight_decay) of the declared space and a cell is everything else (m, k, the rest of the run).
They train side by side in one cohort. At each rung (the first evaluation at or after a
fraction of the step budget) the settings of each cell still in the race are ranked by their
mean held-out loss (or accuracy) over seeds; the best ceil(alive / eta) go on and the members
of the others stop with stop_reason `pruned`. A member that stopped on its own (target,
plateau, diverged) before a rung keeps its setting in the race with its final metric (a
diverged one ranks last). The rule is deterministic (ties go to the earlier setting of the
space) and runs on the host, so a pruned member is an ordinary record of where it stopped.

Why the held-out loss by default: accuracy saturates (many settings reach 1.0 early, and ties
say nothing), while the loss keeps ranking them.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence

from counting.config import RunConfig


def cell_key(cfg: RunConfig) -> str:
    """What the members of one race share: the identity without the searched values and seed."""
    d = cfg.identity()
    for name in ("lr", "weight_decay", "seed"):
        d["train"].pop(name)
    return json.dumps(d, sort_keys=True)


def setting_of(cfg: RunConfig) -> tuple[float, float]:
    """The member's searched setting (lr, weight_decay)."""
    return (cfg.train.lr, cfg.train.weight_decay)


@dataclasses.dataclass
class Halving:
    """The race of one cohort: rung steps, the settings still in it per cell, each member's rung."""

    cfgs: list[RunConfig]
    rung_steps: list[int]
    applied: int = 0  # rungs applied so far
    alive: dict = dataclasses.field(default_factory=dict)  # cell -> settings still in the race
    rung_of: list[int] = dataclasses.field(default_factory=list)  # per member: the last rung it passed

    @classmethod
    def of(cls, cfgs: Sequence[RunConfig]) -> "Halving | None":
        """The race of a cohort whose members run under a halving search; None otherwise."""
        cfgs = list(cfgs)
        h = cfgs[0].halving
        if not h.active:
            return None
        total, every = cfgs[0].train.total_steps, cfgs[0].train.eval_every
        steps = sorted({min(total, every * math.ceil(f * total / every)) for f in h.rungs} - {total})
        alive: dict[str, list] = {}
        for c in cfgs:
            settings = alive.setdefault(cell_key(c), [])
            if setting_of(c) not in settings:
                settings.append(setting_of(c))
        return cls(cfgs, steps, 0, alive, [0] * len(cfgs))

    def score(self, book, i: int) -> float:
        """Member i's score (lower is better): its last held-out loss, or minus its accuracy;
        a diverged member scores +inf."""
        rule, last = book.rules[i], book.last[i]
        if rule.reason == "diverged" or not last:
            return math.inf
        if self.cfgs[i].halving.metric == "accuracy":
            return -float(last["accuracy"])
        loss = float(last["loss"])
        return loss if math.isfinite(loss) else math.inf

    def after(self, step: int, book) -> list[int]:
        """Applies the rungs reached by `step`; returns the members it pruned."""
        pruned = []
        while self.applied < len(self.rung_steps) and step >= self.rung_steps[self.applied]:
            eta = self.cfgs[0].halving.eta
            for cell, settings in self.alive.items():
                members = {s: [i for i, c in enumerate(self.cfgs) if cell_key(c) == cell and setting_of(c) == s]
                           for s in settings}
                mean = {s: sum(self.score(book, i) for i in ms) / len(ms) for s, ms in members.items()}
                keep = sorted(settings, key=lambda s: (mean[s], settings.index(s)))[: math.ceil(len(settings) / eta)]
                for s, ms in members.items():
                    for i in ms:
                        if s in keep:
                            self.rung_of[i] = self.applied + 1
                        elif book.rules[i].active:
                            book.rules[i].stop("pruned", step)
                            pruned.append(i)
                self.alive[cell] = [s for s in settings if s in keep]
            self.applied += 1
        return pruned

    def record(self, i: int) -> dict:
        """What member i's record says of the search: the rungs, the one it passed last, and
        whether its setting won every rung (it trained to the end of the race)."""
        c = self.cfgs[i]
        return {"rung": self.rung_of[i], "rungs": self.rung_steps,
                "promoted": setting_of(c) in self.alive[cell_key(c)]}

    def state(self) -> dict:
        """The race's state, JSON-able (for checkpoints): the rungs applied, the settings still in it per cell,
        each member's last rung."""
        return {"applied": self.applied, "alive": {k: [list(s) for s in v] for k, v in self.alive.items()},
                "rung_of": self.rung_of}

    def load(self, state: dict) -> None:
        """Restores the race's state from `state()` (a checkpoint's)."""
        self.applied = state["applied"]
        self.alive = {k: [tuple(s) for s in v] for k, v in state["alive"].items()}
        self.rung_of = list(state["rung_of"])
