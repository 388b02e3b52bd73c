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
from typing import Any, Protocol

Done = Callable[[int, dict], None]


class BackendError(RuntimeError):
    """A backend that cannot answer (refused, timed out, missing weights): one line."""


class Backend(Protocol):
    tokenizer: Any  # a Hugging Face tokenizer where one is at hand, else None

    def resolve_form(self, form: str) -> str: ...

    def generate(self, requests: list[dict], max_new_tokens: int, done: Done) -> None: ...

    def score(self, requests: list[dict], n_R: list[int], done: Done) -> None: ...


EXTRA = "pip install -e '.[llm]'"
# name -> (module:class, the optional modules it needs, the install that provides them)
BACKENDS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "hf": ("counting.llm.backends.hf:HFBackend", ("torch", "transformers"), EXTRA),
    "openai": ("counting.llm.backends.openai:OpenAIBackend", ("httpx",), EXTRA),
}
GGUF_MODULES = ("gguf", "accelerate")  # what transformers needs to read a GGUF file


def missing_extra(name: str, gguf: bool = False) -> str | None:
    """The one-line message for a backend whose optional modules are not installed, else None."""
    _, modules, install = BACKENDS[name]
    missing = [mod for mod in (*modules, *(GGUF_MODULES if gguf else ())) if importlib.util.find_spec(mod) is None]
    if missing:
        return (f"backend={name} needs {' and '.join(missing)}, which are not installed; "
                f"run: {install}")
    return None


def make_backend(cfg) -> Backend:
    """The backend named by cfg.name, built from its config (BackendError if it cannot start)."""
    path, _, _ = BACKENDS[cfg.name]
    module, _, cls = path.partition(":")
    return getattr(importlib.import_module(module), cls)(cfg)


def preflight(cfg) -> str | None:
    """What stops a backend before any work, as one line (None if nothing does): the optional
    install, the packaged model's packages, the checkpoint folder or GGUF file, the API key's
    environment variable."""
    import os

    from counting.llm import models

    packaged = cfg.name == "hf" and cfg.model in models.MODELS
    missing = missing_extra(cfg.name, gguf=cfg.name == "hf" and (packaged or bool(cfg.gguf_file)))
    if missing:
        return missing
    if packaged:
        return models.missing(cfg.model)
    if cfg.name == "hf":
        return checkpoint_problem(cfg.model, cfg.gguf_file)
    if cfg.name == "openai" and cfg.api_key_env and not os.environ.get(cfg.api_key_env):
        return (f"backend.api_key_env: the environment variable {cfg.api_key_env} is not set "
                "(export the key, or set backend.api_key_env=null for a server without keys)")
    return None


def checkpoint_problem(model: str, gguf_file: str) -> str | None:
    """What is wrong with a local checkpoint folder (or the GGUF file in it), as one line."""
    from pathlib import Path

    from counting.llm.models import MODELS

    if gguf_file:
        if not (Path(model) / gguf_file).is_file():
            return f"backend.gguf_file: no file {gguf_file!r} in the folder {model!r}"
        return None
    if not (Path(model) / "config.json").is_file():
        return (f"backend.model: no Hugging Face checkpoint (config.json) in {model!r}; give a local folder, "
                f"a GGUF file with backend.gguf_file, or a packaged model: {', '.join(MODELS)}")
    return None
