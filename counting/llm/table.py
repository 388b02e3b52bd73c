"""Scored answers -> <results_dir>/<experiment>/table.csv: one row per (model, method, form,
task, m, n) with accuracy and its 95% Wilson interval over samples, accuracy over parsed
answers, the invalid-answer rate, the mean signed error (negative: under-counting), the
trivial baseline (the share of the most common true answer in the cell), tokens per item,
the model's package and quantisation, the seconds its answers took (`wall_s`, measured when
each answer was computed; a cached answer keeps its time), and beside the mean and median
absolute errors those of always answering the cell's median count (`baseline_mae`,
`baseline_median_ae`)."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from pathlib import Path

from counting.analysis.stats import wilson
from counting.store import write_table

TABLE = "table.csv"
KEY = ("model", "backend", "method", "form", "task", "m", "n")
LEAD = [*KEY, "samples", "accuracy", "ci_low", "ci_high", "accuracy_parsed", "invalid_rate",
        "mean_signed_error", "baseline_accuracy", "package", "quantisation", "wall_s"]


def read_answers(root: Path) -> list[dict]:
    rows = []
    for path in sorted((Path(root) / "answers").glob("*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows


def median(values: list[float]) -> float:
    ordered = sorted(values)
    k = len(ordered)
    return math.nan if not k else (ordered[k // 2] if k % 2 else (ordered[k // 2 - 1] + ordered[k // 2]) / 2)


def constant_errors(answers: list[int]) -> tuple[float, float]:
    """(mean, median) absolute error of always answering the cell's median true count: the
    error a model that ignores the sequence could reach (compare mean_abs_error and
    median_abs_error with them; the median is not swayed by a reply such as '1000000000')."""
    errors = [abs(a - sorted(answers)[len(answers) // 2]) for a in answers]
    return sum(errors) / len(errors), median(errors)


def cell_row(key: tuple, samples: list[dict]) -> dict:
    N = len(samples)
    right = sum(s["correct"] for s in samples)
    parsed = [s for s in samples if s["predicted"] is not None]
    lo, hi = wilson(right, N)
    errors = [s["signed_error"] for s in parsed]
    single = [s["single_token"] for s in samples if s["single_token"] is not None]
    per_item = [k for s in samples for k in (s.get("tokens_per_item") or ())]
    seconds = [s["seconds"] for s in samples if s.get("seconds") is not None]
    lengths = [s["prompt_tokens"] for s in samples if s["prompt_tokens"] is not None]
    return {
        **dict(zip(KEY, key)), "samples": N, "accuracy": right / N, "ci_low": lo, "ci_high": hi,
        "accuracy_parsed": right / len(parsed) if parsed else math.nan,
        "invalid_rate": 1 - len(parsed) / N,
        "mean_signed_error": sum(errors) / len(errors) if errors else math.nan,
        "baseline_accuracy": Counter(s["answer"] for s in samples).most_common(1)[0][1] / N,
        "mean_abs_error": sum(abs(e) for e in errors) / len(errors) if errors else math.nan,
        "median_abs_error": median([abs(e) for e in errors]),
        "baseline_mae": constant_errors([s["answer"] for s in samples])[0],
        "baseline_median_ae": constant_errors([s["answer"] for s in samples])[1],
        "fallback_rate": sum(s["parse"] == "fallback" for s in samples) / N,
        "single_token_share": sum(single) / len(single) if single else math.nan,
        "mean_tokens_per_item": sum(per_item) / len(per_item) if per_item else math.nan,
        "mean_prompt_tokens": sum(lengths) / len(lengths) if lengths else math.nan,
        "package": samples[0].get("package") or "", "quantisation": samples[0].get("quantisation") or "",
        "wall_s": sum(seconds) if len(seconds) == N else math.nan,
        "sampler": samples[0]["sampler"], "delimiter": samples[0]["delimiter"], "reasoning": samples[0]["reasoning"],
    }


def build(root: Path, prompt_keys: set[str]) -> tuple[Path, list[dict], int]:
    """Writes root/table.csv from the answers under root/answers to the current prompt set
    (`prompt_keys`); returns its path, its rows, and how many answers to other prompt sets
    (an earlier grid or seed) were left out."""
    cells: dict[tuple, list[dict]] = defaultdict(list)
    other = 0
    for s in read_answers(root):
        if s.get("prompt_key") not in prompt_keys:
            other += 1
            continue
        cells[tuple(s[k] for k in KEY)].append(s)
    rows = [cell_row(key, cells[key]) for key in sorted(cells)]
    path = Path(root) / TABLE
    write_table(path, rows, LEAD)
    return path, rows, other
