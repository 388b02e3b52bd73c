"""Answers cached on disk per (backend, model, request hash), so an interrupted run resumes
without paying twice: one JSONL file per backend and model, one line appended (and flushed)
per answer as soon as it arrives. A line cut short by a kill is skipped when read back."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from pathlib import Path


def request_key(request: dict) -> str:
    """The hash of everything that decides the answer (prompt, form, method, generation settings)."""
    return hashlib.sha256(json.dumps(request, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:24]


def model_slug(model: str) -> str:
    """A file-name-safe name for a model: its readable tail plus a hash of the full string."""
    tail = re.sub(r"[^A-Za-z0-9._-]+", "_", model.rstrip("/").split("/")[-1])[-48:] or "model"
    return f"{tail}-{hashlib.sha256(model.encode()).hexdigest()[:8]}"


class AnswerCache:
    def __init__(self, root: Path, backend: str, model: str):
        self.path = Path(root) / backend / f"{model_slug(model)}.jsonl"
        self.entries: dict[str, dict] = {}
        self.lock = threading.Lock()
        if self.path.exists():
            text = self.path.read_text()
            if text and not text.endswith("\n"):  # a line cut short by a kill: end it
                with self.path.open("a") as f:
                    f.write("\n")
            for line in text.splitlines():
                try:
                    entry = json.loads(line)
                    self.entries[entry["key"]] = entry
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue

    def get(self, key: str) -> dict | None:
        return self.entries.get(key)

    def put(self, key: str, answer: dict) -> None:
        """Stores one answer ({"text": ...} and/or {"scores": [...]}); thread-safe."""
        entry = {"key": key, **answer}
        with self.lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as f:
                f.write(json.dumps(entry) + "\n")
                f.flush()
            self.entries[key] = entry
