"""Typed, frozen run configuration and its validation.

The raw Hydra config is turned into a `RunConfig` once, at the entry point
(`RunConfig.from_dict`); nothing below reads the raw config. Every invalid value raises a
`ConfigError` whose message is one line naming the field and the allowed values, before
any compute starts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

TASKS = ("qc", "mfe", "histogram")
SAMPLERS = ("uniform", "balanced")
QUERIES = ("last", "sep")
POSITIONS = ("none", "learned", "sinusoidal", "rope")
ATTENTIONS = ("softmax", "linear", "topk")  # model.attention; topk keeps the model.topk largest scores
NORMS = ("none", "pre_ln")
SCHEDULES = ("cosine", "constant")


class ConfigError(ValueError):
    """A user's mistake in a config value: one line, field name and allowed values."""


@dataclasses.dataclass(frozen=True)
class TaskConfig:
    name: str = "qc"
    m: int = 16  # vocabulary size: number of distinct token types
    n: int = 16  # context length: number of counted tokens
    k: int | None = None  # distinct tokens allowed in one sequence; None means m
    sampler: str = "balanced"
    bos: bool = True
    query: str = "last"  # QC only: "last" (query right after the tokens) or "sep" (separator, then query)
    eval_size: int = 2048
    eval_seed: int = 1_000_003  # the held-out set's own seed, never used for training

    @property
    def k_eff(self) -> int:
        return self.m if self.k is None else self.k


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    d: int = 32  # embedding dimension
    L: int = 1  # layers
    H: int = 1  # heads
    w: int = 128  # MLP hidden width
    pos: str = "learned"
    causal: bool = False
    norm: str = "pre_ln"
    attention: str = "softmax"  # softmax | linear (raw scores averaged) | topk (softmax over the topk largest)
    topk: int | None = None  # keys each query keeps when attention = topk; null otherwise

    @staticmethod
    def upgrade(raw: Mapping[str, Any]) -> dict[str, Any]:
        """A raw model section written before the rename ({"softmax": bool}) in today's
        fields ({"attention": "softmax" | "linear"}); anything else unchanged."""
        raw = dict(raw)
        if "softmax" in raw and "attention" not in raw:
            flag = raw.pop("softmax")
            raw["attention"] = "softmax" if flag in (True, "true", "True") else "linear"
        return raw


@dataclasses.dataclass(frozen=True)
class StopConfig:
    """When a model stops training before its step budget (checked at every evaluation, on
    the held-out set): `target` held-out accuracy reached, or no improvement of the held-out
    loss by more than `min_delta` for `patience` evaluations in a row (a plateau). `budget`
    caps the steps (null: train.steps) and sets the learning-rate schedule's horizon. With
    neither target nor patience set, a model trains for exactly its budget (fixed steps)."""

    target: float | None = None  # held-out accuracy in (0, 1]
    patience: int | None = None  # evaluations without improvement
    min_delta: float = 0.0  # the held-out loss must fall by more than this to count
    budget: int | None = None  # step cap; null = train.steps

    @property
    def active(self) -> bool:
        return self.target is not None or self.patience is not None


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    steps: int = 3000
    batch: int = 128
    lr: float = 3e-3
    seed: int = 0
    warmup: int = 100
    schedule: str = "cosine"
    weight_decay: float = 0.01
    clip: float = 1.0
    eval_every: int = 500
    stop: StopConfig = StopConfig()

    @property
    def total_steps(self) -> int:
        """The step budget: train.stop.budget when set, else train.steps."""
        return self.steps if self.stop.budget is None else self.stop.budget


@dataclasses.dataclass(frozen=True)
class RunConfig:
    task: TaskConfig = TaskConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    experiment: str = "default"
    results_dir: str = "results"

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "RunConfig":
        """Builds and validates a RunConfig from a plain (resolved) mapping."""
        sections = {"task": TaskConfig, "model": ModelConfig, "train": TrainConfig}
        kwargs: dict[str, Any] = {}
        for key, value in raw.items():
            if key in sections:
                if key == "model" and isinstance(value, Mapping):
                    value = ModelConfig.upgrade(value)  # records written before model.attention
                kwargs[key] = _build(sections[key], key, value)
            elif key in ("experiment", "results_dir"):
                kwargs[key] = coerce(key, value, str)
            elif key in ("hydra", "cohort", "ood", "analysis", "rerun", "name"):
                continue  # entry-point and post-processing concerns, not part of a run's identity
            else:
                raise ConfigError(f"{key}: unknown config key; allowed: task, model, train, experiment, results_dir")
        if raw.get("name") is not None:  # the results folder's name, set on the command line
            kwargs["experiment"] = coerce("name", raw["name"], str)
        cfg = cls(**kwargs)
        validate(cfg)
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """What defines the trained model, and nothing else: every task field (the held-out
        set's size and seed included: they define the record's metrics), every model field,
        and the train fields that change the trained weights, with the budget resolved
        (train.steps, or train.stop.budget when set). Left out: where the record is stored
        (`experiment`, `results_dir`) and the logging cadence `train.eval_every`, except when
        a stop rule is set, since the rule is checked at every evaluation. A record trained
        under one experiment is therefore found by any other that asks for the same model."""
        d = self.to_dict()
        d.pop("results_dir")
        d.pop("experiment")
        d["task"]["k"] = self.task.k_eff
        train = d["train"]
        train["steps"] = self.train.total_steps
        stop = train.pop("stop")
        eval_every = train.pop("eval_every")
        if self.train.stop.active:
            stop.pop("budget")
            train["stop"], train["eval_every"] = stop, eval_every
        return d

    def hash(self) -> str:
        """Stable hash of the run's identity: insensitive to key order."""
        blob = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class AnalysisConfig:
    """How a results table is turned into thresholds (counting-analyze, counting-plot).

    tau = 0.9 is the suite's default accuracy threshold: far above the trivial baseline of a
    balanced sampler (about 1/n) and below the 1.0 that d >= m cells reach, leaving room for
    seed noise. The paper publishes no threshold.
    """

    tau: float = 0.9  # m_thr(d): the largest m whose accuracy stays >= tau
    ci: float = 0.95  # coverage of every bootstrap interval
    boot: int = 1000  # bootstrap replicates (seeds resampled within each cell)
    seed: int = 0  # the bootstrap's random seed
    budgets: tuple[int, ...] = ()  # budget study: m_thr read at these step counts (counting.analysis.budget)
    mix_fingerprints: bool = False  # analyse rows trained by different code together (normally refused)

    def __post_init__(self):
        if any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in self.budgets):
            raise ConfigError(f"analysis.budgets: every value must be an integer >= 1, got {list(self.budgets)}")
        if not 0.0 < self.tau < 1.0:
            raise ConfigError(f"analysis.tau: must be in (0, 1), got {self.tau}")
        if not 0.0 < self.ci < 1.0:
            raise ConfigError(f"analysis.ci: must be in (0, 1), got {self.ci}")
        if self.boot < 10:
            raise ConfigError(f"analysis.boot: must be >= 10, got {self.boot}")


@dataclasses.dataclass(frozen=True)
class OODConfig:
    """The out-of-distribution grid evaluated after a sweep: lengths n' (at the training k)
    and distinct tokens per sequence k' (at the training n). Empty: no evaluation."""

    n: tuple[int, ...] = ()
    k: tuple[int, ...] = ()

    def __post_init__(self):
        for name, lo in (("n", 1), ("k", 2)):
            for v in getattr(self, name):
                if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                    raise ConfigError(f"ood.{name}: every value must be an integer >= {lo}, got {v!r}")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> "OODConfig":
        raw = dict(raw or {})
        unknown = set(raw) - {"n", "k"}
        if unknown:
            raise ConfigError(f"ood.{sorted(unknown)[0]}: unknown field; allowed: n, k")
        values = {}
        for name in ("n", "k"):
            v = raw.get(name) or ()
            if not isinstance(v, Sequence) or isinstance(v, str):
                raise ConfigError(f"ood.{name}: expected a list of integers, got {v!r}")
            values[name] = tuple(v)
        return cls(**values)


def analysis_from_dict(raw: Mapping[str, Any] | None) -> AnalysisConfig:
    raw = dict(raw or {})
    budgets = raw.pop("budgets", None) or ()
    if not isinstance(budgets, Sequence) or isinstance(budgets, str):
        raise ConfigError(f"analysis.budgets: expected a list of step counts, got {budgets!r}")
    return dataclasses.replace(_build(AnalysisConfig, "analysis", raw), budgets=tuple(budgets))


def with_values(cfg: RunConfig, values: Mapping[str, Any]) -> RunConfig:
    """A copy of cfg with dotted fields replaced ({"task.m": 8, "train.seed": 1}), validated."""
    raw = cfg.to_dict()
    for dotted, value in values.items():
        section, _, field = dotted.partition(".")
        if section not in ("task", "model", "train") or field not in raw[section]:
            raise ConfigError(f"{dotted}: unknown field")
        raw[section][field] = value
    return RunConfig.from_dict(raw)


def _build(cls: type, section: str, value: Any):
    if not isinstance(value, Mapping):
        raise ConfigError(f"{section}: expected a mapping of fields, got {value!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, v in value.items():
        if key not in fields:
            raise ConfigError(f"{section}.{key}: unknown field; allowed: {', '.join(fields)}")
        default = fields[key].default
        if dataclasses.is_dataclass(default):
            kwargs[key] = _build(type(default), f"{section}.{key}", v)
            continue
        kind = type(default) if default is not None else _OPTIONAL[str(fields[key].type).split(" |")[0]]
        kwargs[key] = v if (v is None and default is None) else coerce(f"{section}.{key}", v, kind)
    return cls(**kwargs)


_OPTIONAL = {"int": int, "float": float}  # the value type of a field declared `T | None = None`


def coerce(field: str, value: Any, kind: type):
    """value as a bool, int, float or str (`kind`), or a one-line ConfigError naming `field`;
    "true"/"false" strings are booleans (command lines), integral floats are integers."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ConfigError(f"{field}: expected true or false, got {value!r}")
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{field}: expected an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{field}: expected a number, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ConfigError(f"{field}: expected a string, got {value!r}")
    return value


def _choice(field: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ConfigError(f"{field}: unknown value {value!r}; allowed: {', '.join(allowed)}")


def _at_least(field: str, value: float, lo: float, what: str = "") -> None:
    if value < lo:
        raise ConfigError(f"{field}: must be >= {lo}{what}, got {value}")


def validate(cfg: RunConfig) -> None:
    t, mo, tr = cfg.task, cfg.model, cfg.train
    _choice("task.name", t.name, TASKS)
    _choice("task.sampler", t.sampler, SAMPLERS)
    _choice("task.query", t.query, QUERIES)
    _at_least("task.m", t.m, 2)
    _at_least("task.n", t.n, 1)
    if t.k is not None and not 2 <= t.k <= t.m:
        raise ConfigError(f"task.k: must be in 2..task.m ({t.m}) or null (= m), got {t.k}")
    _at_least("task.eval_size", t.eval_size, 1)
    for name in ("d", "L", "H", "w"):
        _at_least(f"model.{name}", getattr(mo, name), 1)
    if mo.d % mo.H:
        raise ConfigError(f"model.d: must be divisible by model.H ({mo.H}), got {mo.d}")
    _choice("model.pos", mo.pos, POSITIONS)
    _choice("model.norm", mo.norm, NORMS)
    _choice("model.attention", mo.attention, ATTENTIONS)
    if (mo.attention == "topk") != (mo.topk is not None):
        raise ConfigError(f"model.topk: an integer >= 1 with model.attention=topk, null otherwise; "
                          f"got {mo.topk} with {mo.attention}")
    if mo.topk is not None:
        _at_least("model.topk", mo.topk, 1)
    if mo.pos == "rope" and (mo.d // mo.H) % 2:
        raise ConfigError(f"model.d: rope needs an even head dimension d/H, got {mo.d}/{mo.H}")
    _at_least("train.steps", tr.steps, 0)
    _at_least("train.batch", tr.batch, 1)
    if not tr.lr > 0:
        raise ConfigError(f"train.lr: must be > 0, got {tr.lr}")
    _at_least("train.warmup", tr.warmup, 0)
    _choice("train.schedule", tr.schedule, SCHEDULES)
    _at_least("train.weight_decay", tr.weight_decay, 0.0)
    if not tr.clip > 0:
        raise ConfigError(f"train.clip: must be > 0, got {tr.clip}")
    _at_least("train.eval_every", tr.eval_every, 1)
    st = tr.stop
    if st.target is not None and not 0.0 < st.target <= 1.0:
        raise ConfigError(f"train.stop.target: must be in (0, 1] or null, got {st.target}")
    if st.patience is not None:
        _at_least("train.stop.patience", st.patience, 1, " or null")
    _at_least("train.stop.min_delta", st.min_delta, 0.0)
    if st.budget is not None:
        _at_least("train.stop.budget", st.budget, 1, " or null")
    if not cfg.experiment or "/" in cfg.experiment:
        raise ConfigError(f"experiment: must be a non-empty name without '/', got {cfg.experiment!r}")
