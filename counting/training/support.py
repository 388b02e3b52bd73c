"""Exact counting on the training support, watched while a model trains.

At every evaluation a model with `train.stop.watch=support` (or trained under successive halving
with `halving.metric=support`) is also scored on its *validation families*: the families that
are in-support for its training distribution (`counting.tasks.families.support_of`: counts, uniform,
and the two-token sequences where a component draws them), drawn from their own seed
(`SEED`), with the two-token family enumerated over the *validation* pairs (counting.tasks.pairs:
trained like every pair that is not held out, but in no test family), so that selection is on
the training support and never sees a test input (without held-out pairs, at m below `pairs.MIN_M`, the
validation pairs are the training pairs, which are the test's `pairs` too: the record says so in
`support_pairs`); above `CELLS` validation (pair, split) cells a fixed sample of them. `aligned`
is left out: it needs the trained embedding.

- `SupportRule`: the stop rule on the worst validation family: `target` when it reaches
  train.stop.target, `plateau` when it has not risen by more than min_delta for `patience`
  evaluations in a row. A slow approach to exactness is therefore not cut off by a flat
  held-out loss, nor a model stopped on an i.i.d. accuracy its hard inputs do not share.
- `SupportHalving`: successive halving ranking settings by the same worst validation family
  (higher is better), so the chosen optimiser is the one best at what is claimed.
- `Validation`: the per-member validation batches and their compiled evaluation (one forward
  per family, the families in turn, vmapped over the members, split over the devices like the
  cohort).

Each evaluation's row in metrics.jsonl holds `support` (accuracy per validation family) and
`support_worst`; the step at which `support_worst` first reaches `analysis.exact` is the
model's steps to exactness (counting.analysis.exactness).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np

from counting.config import RunConfig, StopConfig
from counting.tasks import Batch, Task
from counting.tasks.families import FAMILIES, holds_out, pairs, support_of
from counting.training.halving import Halving
from counting.training.stop import StopRule
from counting.training.train import make_eval
from counting.runtime.xla import jit

SEED = 7_000_001  # the validation families' own seed (the test families use families.seed)
SIZE = 256  # sequences per sampled validation family
CELLS = 512  # the two-token validation family: every (pair, split) cell of the validation pairs, or this many
# the families a validation set may hold, in the order of their seed index (`Family.validation`)
NAMES = tuple(sorted((f for f, spec in FAMILIES.items() if spec.validation is not None),
                     key=lambda f: FAMILIES[f].validation))


def watches(cfg: RunConfig) -> bool:
    """Whether a run needs its validation families at every evaluation."""
    return cfg.train.stop.watch == "support" or (cfg.halving.active and cfg.halving.metric == "support")


def validation_content(task_cfg) -> dict:
    """The in-support validation families of one task config: name -> families.Content."""
    out = {}
    for name in NAMES:
        if not support_of(task_cfg, name):
            continue
        rng = np.random.default_rng([SEED, FAMILIES[name].validation])
        if name == "pairs":
            content = pairs(task_cfg, 0, rng, "validation" if holds_out(task_cfg) else "train")
            if len(content.q_B) > CELLS:  # a fixed sample of the cells (selection only; the test enumerates)
                pick = np.sort(rng.choice(len(content.q_B), CELLS, replace=False))
                content = type(content)(content.x_BxN[pick], content.q_B[pick])
            out[name] = content
        else:
            out[name] = FAMILIES[name].build(task_cfg, SIZE, rng, None)
    return {k: v for k, v in out.items() if len(v.q_B)}


@dataclasses.dataclass
class SupportRule(StopRule):
    """The stop rule on the worst in-support validation family (`best_loss` holds minus the best
    worst-family accuracy, so that the state is the plain rule's)."""

    def update(self, step: int, metrics: dict) -> None:
        """Takes one evaluation: stops at the target when the worst in-support validation family's accuracy
        `support_worst` reaches it, or on a plateau of that accuracy (no rise by more than min_delta for
        `patience` evaluations)."""
        cfg, worst = self.cfg, float(metrics["support_worst"])
        if cfg.target is not None and worst >= cfg.target:
            return self.stop("target", step)
        if -worst < self.best_loss - cfg.min_delta:
            self.best_loss, self.stale = -worst, 0
        else:
            self.stale += 1
        if cfg.patience is not None and self.stale >= cfg.patience:
            self.stop("plateau", step)


RULES: dict[str, type[StopRule]] = {"heldout": StopRule, "support": SupportRule}  # train.stop.watch -> the rule


def make_rule(cfg: StopConfig, state: dict | None = None) -> StopRule:
    """The stop rule of `cfg` (fresh, or from a checkpoint's state)."""
    cls = RULES[cfg.watch]
    return cls(cfg) if state is None else cls.from_state(cfg, state)


class SupportHalving(Halving):
    """Successive halving on the worst in-support validation family (lower score is better)."""

    def score(self, book, i: int) -> float:
        """Member i's score at a rung: minus its last worst in-support family accuracy; inf when it diverged or
        has none yet."""
        rule, last = book.rules[i], book.last[i]
        if rule.reason == "diverged" or not last or "support_worst" not in last:
            return math.inf
        return -float(last["support_worst"])


def halving_of(cfgs):
    """The cohort's successive-halving search (None without one), ranking by its metric."""
    cls = SupportHalving if cfgs and cfgs[0].halving.metric == "support" else Halving
    return cls.of(cfgs)


class Validation:
    """The validation families of a cohort's members, as one [N, F, B, T] batch on the host,
    and their evaluation (compiled once per program size)."""

    def __init__(self, cohort):
        cfgs, task = cohort.cfgs, cohort.task
        contents = [validation_content(c.task) for c in cfgs]
        self.names = [n for n in NAMES if any(n in c for c in contents)]
        B = max(len(c.q_B) for cs in contents for c in cs.values())
        B = -(-B // 64) * 64
        empty = next(c for cs in contents for c in cs.values())
        per_member = []
        self.present_NxF = np.zeros((len(cfgs), len(self.names)), bool)
        for i, cs in enumerate(contents):
            fams = []
            for f, name in enumerate(self.names):
                content, real = (cs[name], True) if name in cs else (empty, False)
                self.present_NxF[i, f] = real
                fams.append(_padded(task, content, B, real))
            per_member.append(jax.tree.map(lambda *x: np.stack(x), *fams))
        self.batch_N = jax.tree.map(lambda *x: np.stack(x), *per_member)
        self.pairs_set = ["validation" if holds_out(c.task) else "train" for c in cfgs]
        evaluate = make_eval(task, cohort.graphdef)
        self.fn = jit(jax.vmap(lambda p, b_F: jax.lax.map(lambda b: evaluate(p, b), b_F)))  # families in turn
        self._placed: dict = {}

    @classmethod
    def of(cls, cohort) -> Validation | None:
        """The cohort's validation families, or None when no member watches them (`watches`)."""
        return cls(cohort) if any(watches(c) for c in cohort.cfgs) else None

    def evaluate(self, params, rows: list[int], mesh):
        """The device's stats of the members at `rows` (dispatched, not read)."""
        from counting.training.program import spread

        key = (tuple(rows), id(mesh))
        if key not in self._placed:
            idx = np.asarray(rows)
            self._placed = {key: spread(jax.tree.map(lambda x: x[idx], self.batch_N), mesh)}
        return self.fn(params, self._placed[key])

    def summary(self, stats_F: dict, i: int) -> dict:
        """Member i's validation accuracies, from its (host) stats over the families."""
        total_F = np.asarray(stats_F["total_C"]).sum(-1)
        right_F = np.asarray(stats_F["right_C"]).sum(-1)
        acc = {name: float(right_F[f] / max(total_F[f], 1)) for f, name in enumerate(self.names)
               if self.present_NxF[i, f]}
        return {"support": acc, "support_worst": min(acc.values()) if acc else math.nan,
                "support_pairs": self.pairs_set[i]}


def _padded(task: Task, content, B: int, real: bool) -> Batch:
    """A family's batch padded to B rows, the padding (or a family absent for this member)
    masked out."""
    import jax.numpy as jnp

    x_BxN, q_B = content.x_BxN, content.q_B
    pad = B - len(q_B)
    x_BxN = np.concatenate([x_BxN, np.repeat(x_BxN[:1], pad, axis=0)]) if pad else x_BxN
    q_B = np.concatenate([q_B, np.repeat(q_B[:1], pad)]) if pad else q_B
    batch = jax.device_get(task.batch_of(jnp.asarray(x_BxN, jnp.int32), jnp.asarray(q_B, jnp.int32)))
    keep_Bx1 = ((np.arange(B) < len(content.q_B)) & real)[:, None]
    return Batch(np.asarray(batch.tokens_BxT), np.asarray(batch.labels_BxT), np.asarray(batch.mask_BxT) & keep_Bx1)
