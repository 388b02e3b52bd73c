"""Prompt sets: every (m, n) cell of the grid, `samples` prompts each, written as JSONL with
everything needed to score them (task, m, n, pool of items, sequence, query, true answer,
prompt text). Seeded per cell, so a cell's prompts do not change when the grid grows."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from counting.llm import templates
from counting.llm.config import TASKS, PromptConfig
from counting.llm.vocab import VOCABULARIES
from counting.store.atomic import atomic_write_text
from counting.tasks.registry import class_of

PROMPTS = "prompts.jsonl"


def generate(cfg: PromptConfig) -> list[dict]:
    vocab = VOCABULARIES[cfg.items]()
    task = class_of(cfg.task)  # its LLM prompt form: llm_sample and llm_question
    rows = []
    for m, n in cfg.cells():
        if m > len(vocab):
            raise ValueError(f"prompts.m: {cfg.items} has {len(vocab)} items, m = {m} asked")
        rng = np.random.default_rng([cfg.seed, list(TASKS).index(cfg.task), m, n])
        for i in range(cfg.samples):
            pool = [vocab[j] for j in rng.choice(len(vocab), m, replace=False)]
            x_N, q, answer = task.llm_sample(rng, m, n, cfg.sampler)
            sequence = [pool[j] for j in x_N]
            query = pool[q] if q is not None else None
            prompt = templates.question(task.llm_question(), sequence, query, cfg.separator, cfg.reasoning)
            rows.append({"id": f"{cfg.task}-m{m}-n{n}-{i}", "task": cfg.task, "m": m, "n": n,
                         "items": pool, "sequence": sequence, "query": query, "answer": answer,
                         "sampler": cfg.sampler, "delimiter": cfg.delimiter, "reasoning": cfg.reasoning,
                         "prompt": prompt})
    return rows


def write(path: Path, rows: list[dict]) -> None:
    atomic_write_text(Path(path), "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def prompt_key(row: dict) -> str:
    """A short hash of one prompt row: an answer belongs to the prompt set that holds its key."""
    return hashlib.sha256(json.dumps(row, sort_keys=True).encode()).hexdigest()[:16]
