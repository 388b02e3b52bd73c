"""Backends behind one small interface, looked up by name.

A backend answers a batch of requests at temperature 0 (`generate`), and optionally scores
the candidate answers 0..n of each by log-likelihood (`score`). A request is a dict with
"form" ("chat" or "completion") and "prompt" (the user's message). Answers are handed to
`done(i, answer)` as they arrive, so the caller caches each one at once; a failure raises
`BackendError` (one line) after the answers that did arrive were handed over.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, Protocol

Done = Callable[[int, dict], None]


class BackendError(RuntimeError):
    """A backend that cannot answer (refused, timed out, missing weights): one line."""


class Backend(Protocol):
    tokenizer: Any  # a Hugging Face tokenizer where one is at hand, else None

    def resolve_form(self, form: str) -> str: ...

    def generate(self, requests: list[dict], max_new_tokens: int, done: Done) -> None: ...

    def score(self, requests: list[dict], n_R: list[int], done: Done) -> None: ...


EXTRA = "pip install -e '.[llm]'"
LLAMACPP_EXTRA = "pip install -e '.[llamacpp]' (builds llama.cpp from source: 5.5 to 13 minutes on 2 cores)"


class Registered(NamedTuple):
    """One backend: where its class lives, the name of its config class in counting.llm.config
    (`backend=NAME` and backend.name's allowed values are read from this registry), the optional
    modules it needs and the install that provides them, and whether it can score (loglik)."""

    path: str  # module:class
    config: str  # a class of counting.llm.config
    modules: tuple[str, ...]
    install: str
    loglik: bool = False


BACKENDS: dict[str, Registered] = {
    "hf": Registered("counting.llm.backends.hf:HFBackend", "HFConfig", ("torch", "transformers"), EXTRA, True),
    "openai": Registered("counting.llm.backends.openai:OpenAIBackend", "OpenAIConfig", ("httpx",), EXTRA),
    "llamacpp": Registered("counting.llm.backends.llamacpp:LlamaCppBackend", "LlamaCppConfig", ("llama_cpp",),
                           LLAMACPP_EXTRA, True),
}
GGUF_MODULES = ("gguf", "accelerate")  # what transformers needs to read a GGUF file
LOCAL = ("hf", "llamacpp")  # the backends that read local weights (a packaged model, a folder, a GGUF file)


def missing_extra(name: str, gguf: bool = False) -> str | None:
    """The one-line message for a backend whose optional modules are not installed, else None."""
    modules, install = BACKENDS[name].modules, BACKENDS[name].install
    missing = [mod for mod in (*modules, *(GGUF_MODULES if gguf else ())) if importlib.util.find_spec(mod) is None]
    if missing:
        return (f"backend={name} needs {' and '.join(missing)}, which are not installed; "
                f"run: {install}")
    return None


class Scoring:
    """`score` (backend.method=loglik) for a backend with `ids(request)`, `render(request)`, an HF-style
    `tokenizer(text, add_special_tokens=...)["input_ids"]` and `loglik(prompt_ids, candidates)`: every
    answer 0..n scored after the same prompt, tokenized as it follows the prompt."""

    def score(self, requests: list[dict], n_R: list[int], done: Done) -> None:
        import time

        for r, (request, n) in enumerate(zip(requests, n_R)):
            began = time.perf_counter()
            prompt_ids = self.ids(request)
            lead = " " if request["form"] == "completion" else ""
            cands = [self.answer_ids(request, prompt_ids, f"{lead}{c}") for c in range(n + 1)]
            done(r, {"scores": self.loglik(prompt_ids, cands), "seconds": time.perf_counter() - began})

    def answer_ids(self, request: dict, prompt_ids: list[int], answer: str) -> list[int]:
        """The answer's tokens as they follow the prompt (joint tokenization where it keeps the prompt's)."""
        full = self.tokenizer(self.render(request) + answer,
                              add_special_tokens=request["form"] == "completion")["input_ids"]
        if full[:len(prompt_ids)] == prompt_ids and len(full) > len(prompt_ids):
            return full[len(prompt_ids):]
        return self.tokenizer(answer, add_special_tokens=False)["input_ids"]


def chat_or_completion(form: str, has_template: bool, model: str) -> str:
    """The prompt form a backend uses: `form` (chat, completion), or for auto chat where the model
    has a chat template; BackendError (one line) for chat without one."""
    if form == "chat" and not has_template:
        raise BackendError(f"prompts.form: chat, but {model!r} has no chat template; allowed here: completion, auto")
    return form if form != "auto" else ("chat" if has_template else "completion")


def make_backend(cfg) -> Backend:
    """The backend named by cfg.name, built from its config (BackendError if it cannot start)."""
    module, _, cls = BACKENDS[cfg.name].path.partition(":")
    return getattr(importlib.import_module(module), cls)(cfg)


def preflight(cfg) -> str | None:
    """What stops a backend before any work, as one line (None if nothing does): the optional
    install, the packaged model's packages, the checkpoint folder or GGUF file, the API key's
    environment variable."""
    import os

    from counting.llm import models

    packaged = cfg.name in LOCAL and cfg.model in models.MODELS
    missing = missing_extra(cfg.name, gguf=cfg.name == "hf" and (packaged or bool(cfg.gguf_file)))
    if missing:
        return missing
    if packaged:
        return models.missing(cfg.model)
    if cfg.name in LOCAL:
        return checkpoint_problem(cfg.model, cfg.gguf_file, gguf_only=cfg.name == "llamacpp")
    if cfg.name == "openai" and cfg.api_key_env and not os.environ.get(cfg.api_key_env):
        return (f"backend.api_key_env: the environment variable {cfg.api_key_env} is not set "
                "(export the key, or set backend.api_key_env=null for a server without keys)")
    return None


def checkpoint_problem(model: str, gguf_file: str, gguf_only: bool = False) -> str | None:
    """What is wrong with a local checkpoint folder (or the GGUF file in it), as one line.
    gguf_only (llama.cpp): only a GGUF file will do, `gguf_file` in the folder `model` or
    `model` itself a .gguf file."""
    from counting.llm.models import MODELS

    if gguf_file:
        if not (Path(model) / gguf_file).is_file():
            return f"backend.gguf_file: no file {gguf_file!r} in the folder {model!r}"
        return None
    if gguf_only:
        if model.endswith(".gguf") and Path(model).is_file():
            return None
        return (f"backend.model: no GGUF file {model!r}; give a .gguf file, a folder with backend.gguf_file, "
                f"or a packaged model: {', '.join(MODELS)}")
    if not (Path(model) / "config.json").is_file():
        return (f"backend.model: no Hugging Face checkpoint (config.json) in {model!r}; give a local folder, "
                f"a GGUF file with backend.gguf_file, or a packaged model: {', '.join(MODELS)}")
    return None


def resolve(cfg) -> tuple[Path, str, dict]:
    """(folder, GGUF file name or "", what the answers record about the weights) of a local
    backend's config: a packaged model (its file located, assembled if it ships in parts), a
    GGUF file in a folder, a .gguf file (llamacpp), or a checkpoint folder (hf). BackendError
    (one line) where the weights are not there."""
    from counting.llm import models

    if cfg.model in models.MODELS:
        spec = models.MODELS[cfg.model]
        try:
            path = models.locate(cfg.model)
        except models.ModelError as err:
            raise BackendError(str(err)) from None
        version = models.installed_version(spec.package)
        package = f"{spec.package.partition('==')[0]}=={version}" if version else spec.package
        return path.parent, path.name, {"package": package, "title": spec.title}
    gguf_only = cfg.name == "llamacpp"
    problem = checkpoint_problem(cfg.model, cfg.gguf_file, gguf_only=gguf_only)
    if problem:
        raise BackendError(problem)
    if gguf_only and not cfg.gguf_file:
        path = Path(cfg.model)
        return path.parent, path.name, {"package": "", "title": path.stem}
    return Path(cfg.model), cfg.gguf_file, {"package": "", "title": Path(cfg.model.rstrip("/")).name}
