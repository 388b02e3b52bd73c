"""Scored answers -> <results_dir>/<experiment>/table.csv: one row per (model, method, form,
task, m, n) with accuracy and its 95% Wilson interval over samples, accuracy over parsed
answers, the invalid-answer rate, the mean signed error (negative: under-counting), the
trivial baseline (the share of the most common true answer in the cell), tokens per item,
the model's package and quantisation, the seconds its answers took (`wall_s`, measured when
each answer was computed; a cached answer keeps its time), and beside the mean and median
absolute errors those of always answering the cell's median count (`baseline_mae`,
`baseline_median_ae`), the one-sided binomial p-value of the accuracy against the baseline
(`p_above_baseline`), and the model's most common answer in the cell and its share
(`modal_prediction`, `modal_share`: a model that ignores the list answers one number).

Beside it, <results_dir>/<experiment>/trend.csv (`trends`): per variant (model, method, form,
task), the trend of accuracy over m at every n with at least two m, and over n at every m with
at least two n (a cross grid: one of each), as a Cochran-Armitage test by permutation with a
bootstrap interval of the slope (counting.analysis.stats.trend), Holm-corrected over the
variant's tests."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from pathlib import Path

from counting.analysis.stats import above, holm, trend, wilson
from counting.store import write_table

TABLE = "table.csv"
TREND = "trend.csv"
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


def baseline_accuracy(samples: list[dict]) -> float:
    """The trivial baseline: the accuracy of always answering the cell's most common true count."""
    return Counter(s["answer"] for s in samples).most_common(1)[0][1] / len(samples)


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
    baseline = baseline_accuracy(samples)
    modal = Counter(s["predicted"] for s in parsed).most_common(1)
    return {
        **dict(zip(KEY, key)), "samples": N, "accuracy": right / N, "ci_low": lo, "ci_high": hi,
        "accuracy_parsed": right / len(parsed) if parsed else math.nan,
        "invalid_rate": 1 - len(parsed) / N,
        "mean_signed_error": sum(errors) / len(errors) if errors else math.nan,
        "baseline_accuracy": baseline,
        "p_above_baseline": above(right, N, baseline),
        "mean_abs_error": sum(abs(e) for e in errors) / len(errors) if errors else math.nan,
        "median_abs_error": median([abs(e) for e in errors]),
        "baseline_mae": constant_errors([s["answer"] for s in samples])[0],
        "baseline_median_ae": constant_errors([s["answer"] for s in samples])[1],
        "fallback_rate": sum(s["parse"] == "fallback" for s in samples) / N,
        "modal_prediction": modal[0][0] if modal else None,
        "modal_share": modal[0][1] / N if modal else 0.0,
        "single_token_share": sum(single) / len(single) if single else math.nan,
        "mean_tokens_per_item": sum(per_item) / len(per_item) if per_item else math.nan,
        "mean_prompt_tokens": sum(lengths) / len(lengths) if lengths else math.nan,
        "package": samples[0].get("package") or "", "quantisation": samples[0].get("quantisation") or "",
        "wall_s": sum(seconds) if len(seconds) == N else math.nan,
        "sampler": samples[0]["sampler"], "delimiter": samples[0]["delimiter"], "reasoning": samples[0]["reasoning"],
    }


VARIANT = ("model", "backend", "method", "form", "task")
TREND_LEAD = [*VARIANT, "over", "at", "levels", "samples", "accuracies", "baselines", "score", "slope",
              "slope_low", "slope_high", "p", "p_holm", "test"]
PERMUTATIONS = 9999


def trends(cells: dict[tuple, list[dict]]) -> list[dict]:
    """The rows of trend.csv from the cells' scored answers (keyed as KEY): for each variant,
    accuracy over m at every n that has at least two m, then over n at every m that has at
    least two n. The score of a level is log2 of it (the grids are geometric in m), so `slope`
    is the change in accuracy per doubling of m (or n), with its 95% bootstrap interval
    (each level's prompts resampled on their own); `p` is the two-sided permutation p-value of
    the Cochran-Armitage statistic (no trend; at least 2 / (PERMUTATIONS + 1)) and `p_holm` that
    p Holm-corrected over the variant's tests. `accuracies` and `baselines` list the levels'
    accuracies and trivial baselines in the order of `levels`; under the balanced samplers the
    baseline itself moves with n (QC: 1/n), and for MFE with m too."""
    by_variant: dict[tuple, dict[tuple, list[dict]]] = defaultdict(dict)
    for key, samples in cells.items():
        k = dict(zip(KEY, key))
        by_variant[tuple(k[v] for v in VARIANT)][(k["m"], k["n"])] = samples
    rows = []
    for variant, grid in sorted(by_variant.items()):
        tests = []
        for over, at in (("m", "n"), ("n", "m")):
            axis, fixed = ("m", "n").index(over), ("m", "n").index(at)  # positions in a cell's (m, n)
            for value in sorted({mn[fixed] for mn in grid}):
                levels = sorted(mn[axis] for mn in grid if mn[fixed] == value)
                if len(levels) < 2:
                    continue
                per_level = [grid[(v, value) if over == "m" else (value, v)] for v in levels]
                x = [math.log2(v) for v, samples in zip(levels, per_level) for _ in samples]
                y = [int(s["correct"]) for samples in per_level for s in samples]
                t = trend(x, y, n_resamples=PERMUTATIONS, rng=0)
                tests.append({
                    **dict(zip(VARIANT, variant)), "over": over, "at": f"{at}={value}",
                    "levels": " ".join(map(str, levels)), "samples": len(y),
                    "accuracies": " ".join(f"{sum(s['correct'] for s in c) / len(c):.3f}" for c in per_level),
                    "baselines": " ".join(f"{baseline_accuracy(c):.3f}" for c in per_level),
                    "score": f"log2 {over}", "slope": t.slope, "slope_low": t.low, "slope_high": t.high,
                    "p": t.p, "test": f"Cochran-Armitage by permutation ({PERMUTATIONS}), two-sided; "
                                      "slope per doubling, 95% bootstrap"})
        for row, p_holm in zip(tests, holm([r["p"] for r in tests]) if tests else ()):
            row["p_holm"] = float(p_holm)
        rows += tests
    return rows


def build(root: Path, prompt_keys: set[str]) -> tuple[Path, list[dict], int]:
    """Writes root/table.csv from the answers under root/answers to the current prompt set
    (`prompt_keys`), and root/trend.csv (`trends`) beside it; returns the table's path, its
    rows, and how many answers to other prompt sets (an earlier grid or seed) were left out."""
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
    write_table(Path(root) / TREND, trends(cells), TREND_LEAD)
    return path, rows, other
