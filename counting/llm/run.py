"""One probe run: prompt set -> cached answers from one backend and model -> scored answers
(<results_dir>/<experiment>/answers/<backend>-<model>-<method>-<form>.jsonl, one line per
prompt, each with the model's package, quantisation and the seconds it took) -> the
experiment's table.csv over every model answered so far -> figures."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

from counting.llm import prompts
from counting.llm.backends import BackendError, make_backend
from counting.llm.cache import AnswerCache, model_slug, request_key
from counting.llm.config import LLMConfig
from counting.llm.parse import parse
from counting.llm.vocab import tokens_per_item
from counting.store.atomic import atomic_write_text

ANSWERS = "answers"


def experiment_root(cfg: LLMConfig) -> Path:
    return Path(cfg.results_dir) / cfg.experiment


def answers_path(cfg: LLMConfig, form: str) -> Path:
    b = cfg.backend
    return experiment_root(cfg) / ANSWERS / f"{b.name}-{model_slug(b.model)}-{b.method}-{form}.jsonl"


def ask(cfg: LLMConfig, log: Callable[[str], None] = print) -> tuple[Path, int]:
    """Asks the model every prompt not already cached, then writes the scored answers.
    Returns (the answers file, how many prompts have an answer). On a BackendError the
    answers that arrived are cached and written before the error is raised again."""
    rows = prompts.generate(cfg.prompts)
    prompts.write(experiment_root(cfg) / prompts.PROMPTS, rows)
    b = cfg.backend
    backend = make_backend(b)
    form = backend.resolve_form(cfg.prompts.form)
    requests = [{"form": form, "prompt": r["prompt"], "reasoning": r["reasoning"]} for r in rows]
    weights = getattr(backend, "weights", {})
    identity = {"backend": b.name, "model": b.model, "method": b.method,
                **{k: weights[k] for k in ("package", "quantisation") if k in weights}}
    if b.method == "generate":
        identity["max_new_tokens"] = cfg.max_new_tokens
    keys = [request_key({**identity, **q, "n": r["n"] if b.method == "loglik" else None})
            for q, r in zip(requests, rows)]
    tokens = token_counts(cfg, backend, rows, requests)
    cache = AnswerCache(Path(cfg.cache_root), b.name, b.model)
    todo = [i for i, key in enumerate(keys) if cache.get(key) is None]
    described = ", ".join(str(weights[k]) for k in ("package", "quantisation") if weights.get(k))
    log(f"{b.name} {b.model}{f' ({described})' if described else ''}: {len(rows)} prompts ({form}, {b.method}), "
        f"{len(rows) - len(todo)} cached, {len(todo)} to ask")
    start, got, lock = time.time(), [0], threading.Lock()

    def done(j: int, answer: dict) -> None:  # called from the backend's threads
        cache.put(keys[todo[j]], answer)
        with lock:
            got[0] += 1
            if got[0] % max(1, len(todo) // 10) == 0 or got[0] == len(todo):
                log(f"  {got[0]}/{len(todo)} answered ({time.time() - start:.1f} s)")

    try:
        if b.method == "generate":
            backend.generate([requests[i] for i in todo], cfg.max_new_tokens, done)
        else:
            backend.score([requests[i] for i in todo], [rows[i]["n"] for i in todo], done)
    finally:  # also on failure: keep what arrived
        scored = [score_row(cfg, form, weights, r, cache.get(k), t)
                  for r, k, t in zip(rows, keys, tokens) if cache.get(k)]
        path = answers_path(cfg, form)
        atomic_write_text(path, "".join(json.dumps(s, sort_keys=True) + "\n" for s in scored))
    log(f"{len(todo)} prompts answered in {time.time() - start:.1f} s")
    return path, len(scored)


def token_counts(cfg: LLMConfig, backend, rows: list[dict], requests: list[dict]) -> list[dict]:
    """Per prompt: tokens per item of its pool and the prompt's token length (where a tokenizer
    is at hand; else None). prompts.require_single_token turns a split item into an error."""
    tok = backend.tokenizer
    if tok is None:
        return [{"tokens_per_item": None, "prompt_tokens": None} for _ in rows]
    per_item: dict[str, int] = {}
    vocab = sorted({item for r in rows for item in r["items"]})
    for item, k in zip(vocab, tokens_per_item(tok, vocab, cfg.prompts.separator)):
        per_item[item] = k
    split = [f"{item} ({k})" for item, k in per_item.items() if k != 1]
    if split and cfg.prompts.require_single_token:
        raise BackendError(f"prompts.require_single_token: {len(split)} items are not one token for "
                           f"{cfg.backend.model}: {', '.join(split[:8])}{' ...' if len(split) > 8 else ''}")
    return [{"tokens_per_item": [per_item[i] for i in r["items"]], "prompt_tokens": len(backend.ids(q))}
            for r, q in zip(rows, requests)]


def score_row(cfg: LLMConfig, form: str, weights: dict, row: dict, answer: dict, tokens: dict) -> dict:
    b = cfg.backend
    best = None
    if "scores" in answer:
        scores = answer["scores"]
        predicted, method, reply = max(range(len(scores)), key=scores.__getitem__), "loglik", None
        best = [[c, round(scores[c], 3)] for c in sorted(range(len(scores)), key=lambda c: -scores[c])[:3]]
    else:
        reply = answer["text"]
        predicted, method = parse(reply)
    per_item = tokens["tokens_per_item"]
    return {
        "id": row["id"], "prompt_key": prompts.prompt_key(row), "backend": b.name, "model": b.model, "method": b.method, "form": form,
        "task": row["task"], "m": row["m"], "n": row["n"], "sampler": row["sampler"],
        "delimiter": row["delimiter"], "reasoning": row["reasoning"],
        "answer": row["answer"], "reply": reply, "predicted": predicted, "parse": method, "best": best,
        "correct": predicted == row["answer"],
        "signed_error": None if predicted is None else predicted - row["answer"],
        "tokens_per_item": per_item, "single_token": None if per_item is None else max(per_item) == 1,
        "prompt_tokens": tokens["prompt_tokens"],
        "package": weights.get("package"), "quantisation": weights.get("quantisation"),
        "seconds": answer.get("seconds"),
    }
