"""Typed, frozen configuration of an LLM counting probe and its validation.

The raw Hydra config is turned into an `LLMConfig` once, in `counting.cli.llm`; nothing below
reads the raw config. Every invalid value raises a one-line `ConfigError` naming the field and
the allowed values, before any prompt is generated or any model is loaded.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

from counting.config import ConfigError, coerce

TASKS = ("qc", "mfe")
SAMPLERS = ("uniform", "balanced")
ITEMS = ("letters", "words")
DELIMITERS = {"space": " ", "comma": ", ", "newline": "\n"}
FORMS = ("auto", "chat", "completion")
METHODS = ("generate", "loglik")
ACTIONS = ("run", "report")


@dataclasses.dataclass(frozen=True)
class PromptConfig:
    """One prompt set: a grid over m (distinct items in the pool) and n (sequence length)."""

    task: str = "qc"
    m: tuple[int, ...] = (2, 4, 8, 16)
    n: tuple[int, ...] = (8, 16, 32)
    samples: int = 20  # prompts per (m, n) cell
    sampler: str = "balanced"  # like the training samplers: answer drawn first, or i.i.d. items
    items: str = "letters"  # letters (m <= 26) or words (the shipped list of common English words)
    delimiter: str = "space"
    seed: int = 0
    form: str = "auto"  # chat, completion, or auto (chat when the model has a chat template)
    reasoning: bool = False  # opt-in: think first, end with the line "Answer: <integer>"
    require_single_token: bool = False  # fail when a tokenizer splits an item into several tokens

    @property
    def separator(self) -> str:
        return DELIMITERS[self.delimiter]


@dataclasses.dataclass(frozen=True)
class HFConfig:
    """A local Hugging Face causal LM (`pip install -e '.[llm]'`)."""

    name: str = "hf"
    model: str = ""  # a local checkpoint folder (never downloaded: local files only)
    method: str = "generate"  # generate and parse, or loglik: score every answer 0..n
    max_new_tokens: int | None = None  # None: 8 for a direct answer, 512 with reasoning
    batch: int = 8  # prompts per forward pass
    device: str = "cpu"  # torch device: cpu, cuda, cuda:1, mps
    dtype: str = "auto"  # auto, float32, bfloat16, float16


@dataclasses.dataclass(frozen=True)
class OpenAIConfig:
    """Any OpenAI-compatible HTTP endpoint (vLLM, llama.cpp server, Ollama, a hosted API)."""

    name: str = "openai"
    model: str = ""  # the model name the server knows
    base_url: str = ""  # e.g. http://127.0.0.1:8000/v1
    api_key_env: str | None = "OPENAI_API_KEY"  # the variable holding the key; None: no key
    method: str = "generate"
    max_new_tokens: int | None = None
    concurrency: int = 4  # requests in flight
    retries: int = 3  # further tries after a refused, timed-out, 429 or 5xx request
    backoff_s: float = 1.0  # wait before retry r: backoff_s * 2**r
    timeout_s: float = 60.0  # per request


BACKEND_CONFIGS: dict[str, type] = {"hf": HFConfig, "openai": OpenAIConfig}


@dataclasses.dataclass(frozen=True)
class LLMConfig:
    prompts: PromptConfig = PromptConfig()
    backend: HFConfig | OpenAIConfig = HFConfig()
    experiment: str = "llm"
    results_dir: str = "results"
    cache_dir: str | None = None  # answers cache; None: <results_dir>/llm_cache
    action: str = "run"  # run: query the model, then table and figures; report: table and figures only
    figures: bool = True  # false: the table only (figures later with action=report)

    @property
    def cache_root(self) -> str:
        return self.cache_dir or f"{self.results_dir}/llm_cache"

    @property
    def max_new_tokens(self) -> int:
        v = self.backend.max_new_tokens
        return v if v is not None else (512 if self.prompts.reasoning else 8)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> LLMConfig:
        kwargs: dict[str, Any] = {}
        for key, value in raw.items():
            if key == "prompts":
                kwargs[key] = build(PromptConfig, key, value)
            elif key == "backend":
                kwargs[key] = backend_from_dict(value)
            elif key == "figures":
                kwargs[key] = coerce(key, value, bool)
            elif key in ("experiment", "results_dir", "cache_dir", "action"):
                kwargs[key] = value if value is None and key == "cache_dir" else coerce(key, value, str)
            elif key != "hydra":
                raise ConfigError(f"{key}: unknown config key; allowed: prompts, backend, experiment, "
                                  "results_dir, cache_dir, action, figures")
        cfg = cls(**kwargs)
        validate(cfg)
        return cfg


def backend_from_dict(raw: Any) -> HFConfig | OpenAIConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"backend: expected a mapping of fields, got {raw!r}")
    name = raw.get("name", "hf")
    if name not in BACKEND_CONFIGS:
        raise ConfigError(f"backend.name: unknown backend {name!r}; allowed: {', '.join(BACKEND_CONFIGS)}")
    if "api_key" in raw:
        raise ConfigError("backend.api_key: keys are never read from a config; export the key and name "
                          "its variable in backend.api_key_env")
    return build(BACKEND_CONFIGS[name], "backend", raw)


def validate(cfg: LLMConfig) -> None:
    p, b = cfg.prompts, cfg.backend
    choice("prompts.task", p.task, TASKS)
    choice("prompts.sampler", p.sampler, SAMPLERS)
    choice("prompts.items", p.items, ITEMS)
    choice("prompts.delimiter", p.delimiter, tuple(DELIMITERS))
    choice("prompts.form", p.form, FORMS)
    choice("action", cfg.action, ACTIONS)
    choice("backend.method", b.method, METHODS)
    for field, grid in (("prompts.m", p.m), ("prompts.n", p.n)):
        if not grid or any(v < 1 for v in grid) or len(set(grid)) != len(grid):
            raise ConfigError(f"{field}: expected a non-empty list of distinct integers >= 1, got {list(grid)}")
    if p.samples < 1:
        raise ConfigError(f"prompts.samples: must be >= 1, got {p.samples}")
    from counting.llm.vocab import VOCABULARIES

    limit = len(VOCABULARIES[p.items]())
    if max(p.m) > limit:
        raise ConfigError(f"prompts.m: {p.items} allow m <= {limit}, got {max(p.m)}"
                          + ("; use prompts.items=words" if p.items == "letters" else ""))
    if b.method == "loglik" and (b.name != "hf" or p.reasoning):
        raise ConfigError("backend.method: loglik needs backend=hf and prompts.reasoning=false; allowed here: generate")
    if b.max_new_tokens is not None and b.max_new_tokens < 1:
        raise ConfigError(f"backend.max_new_tokens: must be >= 1, got {b.max_new_tokens}")
    if cfg.action == "run" and not b.model:
        raise ConfigError(f"backend.model: required for backend={b.name} "
                          f"({'a local checkpoint folder' if b.name == 'hf' else 'the name the server knows'})")
    if isinstance(b, HFConfig):
        choice("backend.dtype", b.dtype, ("auto", "float32", "bfloat16", "float16"))
        if b.batch < 1:
            raise ConfigError(f"backend.batch: must be >= 1, got {b.batch}")
    else:
        if cfg.action == "run" and not b.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"backend.base_url: expected an http(s) URL such as http://127.0.0.1:8000/v1, "
                              f"got {b.base_url!r}")
        for field, lo in (("concurrency", 1), ("retries", 0)):
            if getattr(b, field) < lo:
                raise ConfigError(f"backend.{field}: must be >= {lo}, got {getattr(b, field)}")
        if b.timeout_s <= 0 or b.backoff_s < 0:
            raise ConfigError("backend.timeout_s: must be > 0 and backend.backoff_s >= 0")


def build(cls: type, section: str, value: Any):
    """A frozen dataclass from a mapping: unknown fields and mistyped values are ConfigErrors."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{section}: expected a mapping of fields, got {value!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, v in value.items():
        if key not in hints:
            raise ConfigError(f"{section}.{key}: unknown field; allowed: {', '.join(names)}")
        kind = hints[key]
        args = typing.get_args(kind)
        if isinstance(kind, types.UnionType) and type(None) in args:
            kwargs[key] = None if v is None else coerce(f"{section}.{key}", v, args[0])
        elif typing.get_origin(kind) is tuple:
            if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
                v = [v]
            kwargs[key] = tuple(coerce(f"{section}.{key}", x, int) for x in v)
        else:
            kwargs[key] = coerce(f"{section}.{key}", v, kind)
    return cls(**kwargs)


def choice(field: str, value: str, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{field}: unknown value {value!r}; allowed: {', '.join(allowed)}")
