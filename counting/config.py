"""The typed, frozen configuration of a run, of a job (a cell of a sweep) and of its analysis.

Every field is declared once, here, with its type, default, allowed values and bounds
(`counting.spec.option`); values are checked when an object is built (`counting.spec.Checked`),
whatever builds it. The raw Hydra config is turned into a `JobConfig` once, at the entry point
(`JobConfig.from_dict`); nothing below reads the raw config. A stored record's config is read
by `RunConfig.from_record`, which also upgrades fields written by earlier versions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any, ClassVar

from counting.spec import Checked, ConfigError, Registry, coerce, option

TASKS = Registry("counting.tasks.registry:TASKS")  # task.name: the tasks' registry, read when checked

SAMPLERS = Registry("counting.tasks.registry:SAMPLERS")  # task.sampler: the samplers' registry
COMPONENTS = Registry("counting.tasks.registry:COMPONENTS")  # task.mixture: what a mixture's components may be
QUERIES = ("last", "sep")
POSITIONS = ("none", "learned", "sinusoidal", "rope")
ATTENTIONS = ("softmax", "linear", "topk")  # model.attention; topk keeps the model.topk largest scores
NORMS = ("none", "pre_ln")
# model.arch: the model classes of counting.models.registry: the paper's transformer, and the six
# one-layer variants of Behrens, Biggio and Zdeborova (counting.models.behrens), named as they name them
ARCHS = Registry("counting.models.registry:MODELS")
PEER_ARCHS = Registry("counting.models.registry:PEER")
SCHEDULES = ("cosine", "constant")
RERUN = ("stale", "never", "all")
LOGGERS = ("jsonl", "tensorboard", "wandb")  # logger: the metrics sinks beside metrics.jsonl (counting.store.trackers)
# after: the default steps after a sweep (their registry: counting.experiment.steps.STEPS)
AFTER = ("families", "support", "aggregate", "search", "evaluate", "analyze", "exactness", "budget", "figures")
COMPACT_SIZES = Registry("counting.sweep.sizes:SIZES")  # cohort.compact_sizes: the program-size rules after compaction


@dataclasses.dataclass(frozen=True)
class TaskConfig(Checked):
    """The task a model is trained on: which count it answers (QC, MFE or histogram), the vocabulary m, the
    length n, the distinct tokens k of a sequence, how training sequences are drawn, and the held-out set."""

    SECTION: ClassVar[str] = "task"

    name: str = option("qc", choices=TASKS, help="the task: Query Count, Most Frequent Element, histogram")
    m: int = option(16, ge=2, help="vocabulary size: number of distinct token types")
    n: int = option(16, ge=1, help="context length: number of counted tokens")
    k: int | None = option(None, help="distinct tokens allowed in one sequence; null means m")
    sampler: str = option("balanced", choices=SAMPLERS,
                         help="uniform: i.i.d. tokens; balanced: the answer drawn first; partition: counts from a random partition of n")
    bos: bool = option(True, help="a BOS token in front of every sequence")
    query: str = option("last", choices=QUERIES, help="QC only: the query right after the tokens, or after a separator")
    eval_size: int = option(2048, ge=1, help="sequences in the held-out set")
    eval_seed: int = option(1_000_003, help="the held-out set's own seed, never used for training")
    mixture: tuple[str, ...] = option((), choices=COMPONENTS, since="0.3",
                                      help="sampler=mixture: its components, each a sampler (pairs: two-token sequences)")
    weights: tuple[float, ...] = option((), gt=0, since="0.3", help="sampler=mixture: each component's weight")
    holdout_pairs: float = option(0.0, ge=0, lt=0.5, since="0.3",
                                  help="fraction of unordered token pairs held out of two-token training sequences "
                                       "(and as many again kept for validation); 0 = off")
    pairs_seed: int = option(0, since="0.3", help="the seed that chooses the held-out and validation pairs")

    def check(self) -> None:
        """ConfigError unless k lies in 2..m (or is unset), a mixture sampler comes with its components, and
        every component has one weight."""
        if self.k is not None and not 2 <= self.k <= self.m:
            raise ConfigError(f"task.k: must be in 2..task.m ({self.m}) or null (= m), got {self.k}")
        if (self.sampler == "mixture") != bool(self.mixture):
            raise ConfigError(f"task.mixture: a list of components ({', '.join(COMPONENTS)}) with sampler=mixture, "
                              f"empty otherwise; got {list(self.mixture)} with sampler={self.sampler}")
        if len(self.weights) != len(self.mixture):
            raise ConfigError(f"task.weights: one positive weight per component of task.mixture "
                              f"({len(self.mixture)}), got {list(self.weights)}")

    @property
    def components(self) -> tuple[tuple[str, float], ...]:
        """The training distribution as (sampler, probability) pairs: one component of weight 1
        unless sampler=mixture."""
        if self.sampler != "mixture":
            return ((self.sampler, 1.0),)
        total = sum(self.weights)
        return tuple((s, w / total) for s, w in zip(self.mixture, self.weights))

    @property
    def k_eff(self) -> int:
        """k, the distinct tokens a sequence may use: task.k, or m when unset."""
        return self.m if self.k is None else self.k


@dataclasses.dataclass(frozen=True)
class ModelConfig(Checked):
    """The model: its class (the paper's transformer or a Behrens et al. variant), the dimension d, layers L,
    heads H, MLP width w, positions, mask, norm and attention."""

    SECTION: ClassVar[str] = "model"

    arch: str = option("transformer", choices=ARCHS, since="0.2",
                       help="the model class: the paper's transformer, or a Behrens et al. variant (counting.models.behrens)")
    d: int = option(32, ge=1, help="embedding (model) dimension")
    L: int = option(1, ge=1, help="layers")
    H: int = option(1, ge=1, help="attention heads")
    w: int = option(128, ge=1, help="MLP hidden width")
    pos: str = option("learned", choices=POSITIONS, help="positional scheme")
    causal: bool = option(False, help="causal attention mask")
    norm: str = option("pre_ln", choices=NORMS, help="pre-LayerNorm blocks and a final LayerNorm, or none")
    attention: str = option("softmax", choices=ATTENTIONS,
                            help="softmax; linear (raw scores averaged); topk (softmax over the model.topk largest)")
    topk: int | None = option(None, ge=1, help="keys each query keeps when attention = topk; null otherwise")

    def check(self) -> None:
        """ConfigError unless a Behrens et al. variant keeps its fixed one-layer shape, H divides d, topk is set
        exactly with attention = topk, and rope has an even head dimension d/H."""
        if self.arch in PEER_ARCHS:
            fixed = {"L": 1, "H": 1, "pos": "none", "causal": False, "norm": "none", "attention": "softmax", "topk": None}
            for name, value in fixed.items():
                if getattr(self, name) != value:
                    raise ConfigError(f"model.{name}: the {self.arch} model of Behrens et al. has {name} = {value} "
                                      f"(one layer and head, no positions, no norm; its softmax is in its name), "
                                      f"got {getattr(self, name)}")
        if self.d % self.H:
            raise ConfigError(f"model.d: must be divisible by model.H ({self.H}), got {self.d}")
        if (self.attention == "topk") != (self.topk is not None):
            raise ConfigError(f"model.topk: an integer >= 1 with model.attention=topk, null otherwise; "
                              f"got {self.topk} with {self.attention}")
        if self.pos == "rope" and (self.d // self.H) % 2:
            raise ConfigError(f"model.d: rope needs an even head dimension d/H, got {self.d}/{self.H}")

    @staticmethod
    def upgrade(raw: Mapping[str, Any]) -> dict[str, Any]:
        """A stored model section written before the rename ({"softmax": bool}) in today's
        fields ({"attention": "softmax" | "linear"}); anything else unchanged."""
        raw = dict(raw)
        if "softmax" in raw and "attention" not in raw:
            flag = raw.pop("softmax")
            raw["attention"] = "softmax" if flag in (True, "true", "True") else "linear"
        return raw


@dataclasses.dataclass(frozen=True)
class StopConfig(Checked):
    """When a model stops training before its step budget (checked at every evaluation, on
    the held-out set): `target` held-out accuracy reached, or no improvement of the held-out
    loss by more than `min_delta` for `patience` evaluations in a row (a plateau). `budget`
    caps the steps (null: train.steps) and sets the learning-rate schedule's horizon. With
    neither target nor patience set, a model trains for exactly its budget (fixed steps)."""

    SECTION: ClassVar[str] = "train.stop"

    target: float | None = option(None, gt=0, le=1, help="stop at this held-out accuracy")
    patience: int | None = option(None, ge=1, help="stop after this many evaluations without improvement")
    min_delta: float = option(0.0, ge=0, help="the held-out loss must fall by more than this to count")
    budget: int | None = option(None, ge=1, help="step cap; null = train.steps")
    watch: str = option("heldout", choices=("heldout", "support"), since="0.3",
                     help="what target and plateau watch: the held-out set (accuracy, loss), or the worst "
                          "in-support validation family's accuracy (counting.training.support)")

    @property
    def active(self) -> bool:
        """Whether a stop rule is set (a target or a patience): without one a model trains for its budget."""
        return self.target is not None or self.patience is not None


@dataclasses.dataclass(frozen=True)
class TrainConfig(Checked):
    """How a model is trained: the steps, batch, AdamW's learning rate, schedule and moments, the seed, gradient
    clipping, the evaluation cadence and the stop rule."""

    SECTION: ClassVar[str] = "train"

    steps: int = option(3000, ge=0, help="training steps (the budget unless train.stop.budget is set)")
    batch: int = option(128, ge=1, help="sequences per step (fresh samples every step)")
    lr: float = option(3e-3, gt=0, help="peak learning rate (AdamW)")
    seed: int = option(0, help="initialisation and data stream")
    warmup: int = option(100, ge=0, help="linear warmup steps")
    schedule: str = option("cosine", choices=SCHEDULES, help="after warmup: cosine decay to 0.1, or constant")
    weight_decay: float = option(0.01, ge=0, help="AdamW's decoupled weight decay")
    clip: float | None = option(1.0, gt=0, help="global gradient-norm clip; null: none")
    b1: float = option(0.9, ge=0, lt=1, since="0.2", help="Adam's first-moment decay")
    b2: float = option(0.999, ge=0, lt=1, since="0.2", help="Adam's second-moment decay")
    eps: float = option(1e-8, gt=0, since="0.2", help="Adam's epsilon")
    eval_every: int = option(500, ge=1, help="steps between held-out evaluations")
    stop: StopConfig = StopConfig()

    @property
    def total_steps(self) -> int:
        """The step budget: train.stop.budget when set, else train.steps."""
        return self.steps if self.stop.budget is None else self.stop.budget


@dataclasses.dataclass(frozen=True)
class HalvingConfig(Checked):
    """Successive halving over the optimiser (counting.training.halving): every setting of the declared
    space (lr x weight_decay) trains with every seed inside one cohort; at each rung (a
    fraction of the step budget) the settings of a cell (the same m, k and everything but the
    searched values and the seed) are ranked by `metric` (mean over their seeds) and only the
    best 1/eta continue; the others stop with stop_reason `pruned`. Part of every member's
    identity when active: a pruned model is not the same model as one trained to the budget."""

    SECTION: ClassVar[str] = "halving"

    lr: tuple[float, ...] = option((), gt=0, help="learning rates searched (empty: train.lr)")
    weight_decay: tuple[float, ...] = option((), ge=0, help="weight decays searched (empty: train.weight_decay)")
    eta: int = option(3, ge=2, help="keep the best 1/eta of the settings at each rung")
    rungs: tuple[float, ...] = option((1 / 9, 1 / 3), gt=0, lt=1, help="rungs as fractions of the step budget")
    metric: str = option("loss", choices=("loss", "accuracy", "support"),
                         help="held-out loss (default: graded, not saturated at 1) or accuracy; support: the "
                              "worst in-support validation family's accuracy (counting.training.support)")

    @property
    def active(self) -> bool:
        """Whether the halving searches anything (an lr or a weight decay is declared)."""
        return bool(self.lr or self.weight_decay)

    def check(self) -> None:
        """ConfigError unless the rungs are increasing and distinct."""
        if list(self.rungs) != sorted(set(self.rungs)):
            raise ConfigError(f"halving.rungs: must be increasing fractions in (0, 1), got {list(self.rungs)}")

    def settings(self, lr: float, weight_decay: float) -> list[tuple[float, float]]:
        """Every (lr, weight_decay) of the space; a hyperparameter not searched keeps its value."""
        return [(a, b) for a in (self.lr or (lr,)) for b in (self.weight_decay or (weight_decay,))]


def _since_defaults(cls: type, values: dict) -> None:
    """Drops, in place, the fields a later version added while they hold their default."""
    for f in dataclasses.fields(cls):
        if f.name not in values:
            continue
        default = dataclasses.asdict(f.default) if dataclasses.is_dataclass(f.default) else f.default
        if f.metadata.get("since") and values[f.name] == default:
            values.pop(f.name)
        elif isinstance(values[f.name], dict) and dataclasses.is_dataclass(f.default):
            _since_defaults(type(f.default), values[f.name])


@dataclasses.dataclass(frozen=True)
class RunConfig(Checked):
    """One model: what defines it (task, model, train) and where its record is stored."""

    task: TaskConfig = TaskConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    halving: HalvingConfig = option(HalvingConfig(), since="0.2", help="successive halving over the optimiser")
    experiment: str = option("default", help="the results folder: <results_dir>/<experiment>/")
    results_dir: str = option("out", help="where results folders go (the committed reference is results/)")
    logger: str = option("jsonl", choices=LOGGERS, since="0.3",
                         help="where evaluations go beside metrics.jsonl (always written, the tables' source): "
                              "jsonl = nowhere else; tensorboard = <results_dir>/<experiment>/tensorboard/; "
                              "wandb = W&B, offline (counting.store.trackers)")

    def check(self) -> None:
        """ConfigError unless the experiment is a plain name, and a Behrens et al. variant has BOS exactly when
        it is a dotBOS model."""
        if not self.experiment or "/" in self.experiment:
            raise ConfigError(f"experiment: must be a non-empty name without '/', got {self.experiment!r}")
        arch = self.model.arch
        if arch in PEER_ARCHS and self.task.bos != arch.startswith("dotBOS"):
            raise ConfigError(f"task.bos: the {arch} model of Behrens et al. has {'a' if arch.startswith('dotBOS') else 'no'} "
                              f"BOS token, so task.bos must be {str(arch.startswith('dotBOS')).lower()}; got "
                              f"{str(self.task.bos).lower()}")

    @classmethod
    def from_record(cls, raw: Mapping[str, Any]) -> RunConfig:
        """The config stored in a record (record.json, config.json), upgraded from the fields
        of earlier versions (model.softmax -> model.attention)."""
        raw = dict(raw)
        if isinstance(raw.get("model"), Mapping):
            raw["model"] = ModelConfig.upgrade(raw["model"])
        return cls.from_dict(raw)

    def to_dict(self) -> dict[str, Any]:
        """Every field as nested plain dicts (dataclasses.asdict)."""
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """What defines the trained model, and nothing else: every task field (the held-out
        set's size and seed included: they define the record's metrics), every model field,
        and the train fields that change the trained weights, with the budget resolved
        (train.steps, or train.stop.budget when set). Left out: where the record is stored
        (`experiment`, `results_dir`), where else its evaluations go (`logger`), the logging
        cadence `train.eval_every` and the stop
        rule unless a rule is set (it is checked at every evaluation), the halving section unless
        it searches something, and fields added by a later version while they hold their
        default (`option(since=...)`). A record trained
        under one experiment is therefore found by any other that asks for the same model."""
        d = self.to_dict()
        d.pop("results_dir")
        d.pop("logger")
        d.pop("experiment")
        d["task"]["k"] = self.task.k_eff
        train = d["train"]
        train["steps"] = self.train.total_steps
        stop = train.pop("stop")
        eval_every = train.pop("eval_every")
        if self.train.stop.active:
            stop.pop("budget")
            train["stop"], train["eval_every"] = stop, eval_every
        _since_defaults(RunConfig, d)
        if not self.halving.active:  # an unused search's settings define nothing
            d.pop("halving", None)
        return d

    def hash(self) -> str:
        """Stable hash of the run's identity: insensitive to key order."""
        blob = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def with_values(cfg: RunConfig, values: Mapping[str, Any]) -> RunConfig:
    """A copy of cfg with dotted fields replaced ({"task.m": 8, "train.seed": 1}), checked."""
    raw = cfg.to_dict()
    for dotted, value in values.items():
        *path, field = dotted.split(".")
        node = raw
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if path[:1] not in (["task"], ["model"], ["train"], ["halving"]) or not isinstance(node, dict) or field not in node:
            raise ConfigError(f"{dotted}: unknown field")
        node[field] = value
    return RunConfig.from_dict(raw)


# --- what a job does around its runs ------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CohortConfig(Checked):
    """The cohort axes of a job: every combination of their values is one member (model), and
    members that share array shapes train together as one XLA program (counting.sweep.cohort). An
    empty axis keeps the run's own value."""

    SECTION: ClassVar[str] = "cohort"
    AXES: ClassVar[dict[str, str]] = {"m": "task.m", "k": "task.k", "seed": "train.seed", "lr": "train.lr",
                                      "weight_decay": "train.weight_decay"}  # axis -> the run field it sets

    m: tuple[int, ...] = option((), ge=2, help="vocabulary sizes")
    k: tuple[int, ...] = option((), ge=2, help="distinct tokens per sequence")
    seed: tuple[int, ...] = option((), help="seeds")
    lr: tuple[float, ...] = option((), gt=0, help="learning rates")
    weight_decay: tuple[float, ...] = option((), ge=0, help="weight decays")
    max_models: int | None = option(None, ge=1, help="at most this many members per program (null: as many as fit)")
    compact: bool = option(True, help="members that stopped leave the program (a smaller one continues)")
    compact_sizes: str = option("pow2", choices=COMPACT_SIZES, since="0.2",
                                help="program sizes compaction re-packs into: pow2 = 1, 2, 4, 8, ...; pow2_3 = "
                                     "1, 2, 3, 4, 6, 8, 12, ... (less padding, more compiles); exact = the "
                                     "active members, rounded up to divide over the devices (a compile per size)")
    compile_ahead: bool | None = option(None, help="the program sizes a compaction can reach next compile in a "
                                                   "background thread while the cohort trains (false: each when it is "
                                                   "needed; null: on for accelerators, off on the CPU, where the "
                                                   "compiles take the training's own cores)")
    per_call: int | None = option(None, ge=1, help="members vmapped side by side on a device (null: the default rule "
                                                   "of counting.training.program.members_per_call)")

    def axes(self) -> dict[str, tuple]:
        """The non-empty axes, in declaration order."""
        return {name: getattr(self, name) for name in self.AXES if getattr(self, name)}


@dataclasses.dataclass(frozen=True)
class AnalysisConfig(Checked):
    """How a results table is turned into thresholds (counting-analyze, counting-plot).

    tau = 0.9 is the suite's default accuracy threshold: far above the trivial baseline of a
    balanced sampler (about 1/n) and below the 1.0 that d >= m cells reach, leaving room for
    seed noise. The paper publishes no threshold.
    """

    SECTION: ClassVar[str] = "analysis"

    tau: float = option(0.9, gt=0, lt=1, help="m_thr(d): the largest m whose accuracy stays >= tau")
    ci: float = option(0.95, gt=0, lt=1, help="coverage of every bootstrap interval")
    boot: int = option(1000, ge=10, help="bootstrap replicates (seeds resampled within each cell)")
    seed: int = option(0, help="the bootstrap's random seed")
    budgets: tuple[int, ...] = option((), ge=1, help="budget study: m_thr read at these step counts")
    exact: float = option(0.99, gt=0, le=1, help="a model counts exactly when its worst-family accuracy reaches this")
    mix_fingerprints: bool = option(False, help="analyse rows trained by different code together (normally refused)")


@dataclasses.dataclass(frozen=True)
class OODConfig(Checked):
    """The out-of-distribution grid evaluated after a sweep: lengths n' (at the training k)
    and distinct tokens per sequence k' (at the training n). Empty: no evaluation."""

    SECTION: ClassVar[str] = "ood"

    n: tuple[int, ...] = option((), ge=1, help="evaluation lengths n'")
    k: tuple[int, ...] = option((), ge=2, help="distinct tokens per sequence k'")


@dataclasses.dataclass(frozen=True)
class FamiliesConfig(Checked):
    """The worst-case test families every finished model is evaluated on after a sweep
    (counting.tasks.families): `size` sequences per family (0: none), built from `seed`."""

    SECTION: ClassVar[str] = "families"

    size: int = option(1024, ge=0, help="sequences per family (0: no family evaluation)")
    seed: int = option(0, help="the families' own seed")


@dataclasses.dataclass(frozen=True)
class AdaptiveConfig(Checked):
    """The adaptive search for m_thr of a job (counting.sweep.search): train a coarse grid in log m,
    bracket the first m whose statistic falls below tau, then refine inside the bracket in
    rounds (each round one cohort of `per_round` new m values) until the bracket's ends are
    within the factor 1 + `ratio` (or neighbouring integers), or m_thr is censored at the
    grid's edge; with `grow`, a grid whose every m passes first doubles its largest m (so a
    small coarse grid does not pay for large m far past the threshold). Every cell it trains
    is an ordinary record of the experiment."""

    SECTION: ClassVar[str] = "adaptive"

    m: tuple[int, ...] = option((), ge=2, help="the coarse grid in m (empty: no adaptive search)")
    ratio: float = option(0.1, gt=0, help="stop when the bracket's ends are within the factor 1 + ratio")
    per_round: int = option(4, ge=1, help="new vocabulary sizes per refinement round (one cohort)")
    rounds: int = option(6, ge=1, help="at most this many refinement rounds")
    integer: bool = option(True, help="refine on integer m, down to neighbouring integers (m = d, d + 1, d + 2)")
    grow: int = option(0, ge=0, help="while every m of the grid passes, add twice the largest, at most this many "
                                     "times (0: the grid's edge censors m_thr)")
    statistic: str = option("best", choices=("best", "mean", "exact_best", "exact_mean", "exact_share",
                                             "exact_logistic"),
                            help="what must reach tau: the best model of a cell (capacity) or the mean over seeds; "
                                 "exact_best, exact_mean: the same of the worst-family accuracy, against "
                                 "analysis.exact; exact_share: the share of the cell's seeds exact, against 1/2; "
                                 "exact_logistic: the logistic fit of P(exact | log m) over every model tried, "
                                 "bracketed where it crosses 1/2 (its m_50 the estimate, as the analysis's)")

    @property
    def active(self) -> bool:
        """Whether an adaptive search is asked for (a coarse grid adaptive.m is given)."""
        return bool(self.m)

    def check(self) -> None:
        """ConfigError unless the grid adaptive.m is empty or at least two increasing vocabulary sizes."""
        if self.m and list(self.m) != sorted(set(self.m)):
            raise ConfigError(f"adaptive.m: must be increasing vocabulary sizes, got {list(self.m)}")
        if len(self.m) == 1:
            raise ConfigError(f"adaptive.m: a grid needs at least two vocabulary sizes, got {list(self.m)}")


@dataclasses.dataclass(frozen=True)
class JobConfig(Checked):
    """Everything one job of counting-train (one cell of a sweep) is asked to do: the run its
    members derive from, the cohort axes, the rerun policy and what follows the sweep."""

    run: RunConfig = RunConfig()
    cohort: CohortConfig = CohortConfig()
    ood: OODConfig = OODConfig()
    analysis: AnalysisConfig = AnalysisConfig()
    adaptive: AdaptiveConfig = AdaptiveConfig()
    families: FamiliesConfig = FamiliesConfig()
    rerun: str = option("stale", choices=RERUN, help="a record from other code: stale = retrain it; never = keep; all = retrain all")
    name: str | None = option(None, help="another results folder for this run (results_dir/<name>/), e.g. a variant")
    after: tuple[str, ...] = option(AFTER, since="0.3",
                                    help="the steps after the sweep, in order (counting.experiment.steps: a "
                                         "registered name or module:function)")

    RUN_KEYS: ClassVar[tuple[str, ...]] = ("task", "model", "train", "halving", "experiment", "results_dir", "logger")

    @classmethod
    def from_dict(cls, raw: Any) -> JobConfig:
        """From a composed counting-train config (Hydra's own `hydra` node is ignored)."""
        if isinstance(raw, cls):
            return raw
        if not isinstance(raw, Mapping):
            raise ConfigError(f"config: expected a mapping of fields, got {raw!r}")
        own = ("cohort", "ood", "analysis", "adaptive", "families", "rerun", "name", "after")
        allowed = cls.RUN_KEYS + own
        for key in raw:
            if key not in allowed and key != "hydra":
                raise ConfigError(f"{key}: unknown config key; allowed: {', '.join(allowed)}")
        run = {k: v for k, v in raw.items() if k in cls.RUN_KEYS}
        if raw.get("name") is not None:  # the results folder's name, set on the command line
            run["experiment"] = coerce("name", raw["name"], str)
        kwargs = {k: v for k, v in raw.items() if k in own and v is not None}
        return cls(run=RunConfig.from_dict(run), **kwargs)

    def check(self) -> None:
        """ConfigError when both the adaptive search and cohort.m choose m."""
        if self.adaptive.active and self.cohort.m:
            raise ConfigError(f"cohort.m: the adaptive search chooses m (adaptive.m = {list(self.adaptive.m)}); "
                              "give one of them")


def check_rerun(value: str) -> str:
    """`rerun` checked as JobConfig checks it (one line naming the field and its values)."""
    from counting.spec import check_value, kinds

    field = JobConfig.__dataclass_fields__["rerun"]
    return check_value("rerun", value, kinds(JobConfig)["rerun"], field.metadata)
