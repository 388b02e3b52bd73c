"""counting.llm without a model: answer parsing, prompt sets, config errors, cache, table."""

import collections
import csv
import io
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from counting.analysis.stats import wilson
from counting.config import ConfigError
from counting.llm import prompts
from counting.llm.cache import AnswerCache, request_key
from counting.llm.config import LLMConfig, PromptConfig
from counting.llm.parse import WORD_VALUES, first_line, parse
from counting.llm.table import LEAD, build
from counting.llm.vocab import VOCABULARIES

# (reply, value, method): real-looking replies, shared by every parsing check
PARSE_CASES = [
    ("12", 12, "strict"),
    ("Answer: 12", 12, "strict"),
    ("twelve", 12, "strict"),
    ("  7.", 7, "strict"),
    ("**5**", 5, "strict"),
    ("Twenty-one", 21, "strict"),
    ("There are 12 a's.", 12, "fallback"),
    ("I count twenty one.", 21, "fallback"),
    ("12 or 13", 13, "fallback"),  # the last integer: a hedge is scored as its last number
    ("Counting: a, b, a, c.\nSo a occurs 2 times.\nAnswer: 2", 2, "strict"),
    ("Answer: 4\nOn second thought, 5", 5, "fallback"),
    ("", None, "invalid"),
    ("I cannot count these.", None, "invalid"),
    ("-3", None, "invalid"),
]


@pytest.mark.parametrize("reply, value, method", PARSE_CASES)
def test_parse(reply, value, method):
    assert parse(reply) == (value, method)


@pytest.mark.parametrize("task", ["qc", "mfe"])
@pytest.mark.parametrize("sampler", ["balanced", "uniform"])
def test_prompt_sets_are_seeded_and_their_answers_true(task, sampler):
    cfg = PromptConfig(task=task, sampler=sampler, m=(1, 3, 26), n=(1, 5, 16), samples=12, delimiter="comma")
    rows = prompts.generate(cfg)
    assert rows == prompts.generate(cfg) and len(rows) == 3 * 3 * 12
    for r in rows:
        counts = collections.Counter(r["sequence"])
        assert r["answer"] == (counts[r["query"]] if task == "qc" else max(counts.values()))
        assert len(r["items"]) == r["m"] and len(r["sequence"]) == r["n"] and set(r["sequence"]) <= set(r["items"])
        assert ", ".join(r["sequence"]) in r["prompt"]
    # a cell does not change when the grid grows
    wider = prompts.generate(PromptConfig(task=task, sampler=sampler, m=(2, 3, 26), n=(5, 16, 1), samples=12,
                                          delimiter="comma"))
    assert [r for r in rows if r["m"] == 3 and r["n"] == 5] == [r for r in wider if r["m"] == 3 and r["n"] == 5]


def test_balanced_qc_spreads_the_answers():
    rows = prompts.generate(PromptConfig(task="qc", m=(8,), n=(16,), samples=400))
    answers = collections.Counter(r["answer"] for r in rows)
    assert set(answers) == set(range(1, 17)) and max(answers.values()) < 50


@pytest.mark.parametrize("name", list(VOCABULARIES))
def test_no_item_reads_as_a_number(name):
    items = VOCABULARIES[name]()
    assert len(set(items)) == len(items) >= 26
    assert not any(re.search(r"\d", w) or w in WORD_VALUES or parse(w)[1] != "invalid" for w in items)


def test_prompt_set_round_trips(tmp_path):
    rows = prompts.generate(PromptConfig(m=(2,), n=(4,), samples=2, items="words", delimiter="newline"))
    prompts.write(tmp_path / "p.jsonl", rows)
    assert prompts.read(tmp_path / "p.jsonl") == rows


BAD = [
    ({"backend": {"name": "gpt"}}, "backend.name: unknown backend 'gpt'; allowed: hf, openai"),
    ({"backend": {"name": "hf", "model": "x"}, "prompts": {"fixed_n": 8}},
     "prompts.fixed_n: a cross grid needs both prompts.fixed_n and prompts.fixed_m"),
    ({"backend": {"name": "hf", "model": "x"}, "prompts": {"fixed_n": 5, "fixed_m": 2}},
     "prompts.fixed_n: must be one of prompts.n [8, 16, 32], got 5"),
    ({"backend": {"name": "hf", "model": "x", "threads": 0}}, "backend.threads: must be >= 1 or null, got 0"),
    ({"backend": {"name": "openai", "model": "x", "base_url": "http://h/v1", "max_wait_s": -1}},
     "backend.max_wait_s: must be >= 0, got -1.0"),
    ({"backend": {"name": "hf", "model": "x"}, "prompts": {"m": 4}}, "prompts.m: expected a list like [4], got 4"),
    ({"backend": {"name": "openai", "model": "x", "base_url": "http://h/v1", "api_key": "sk-1"}},
     "backend.api_key: keys are never read from a config"),
    ({"backend": {"name": "hf"}}, "backend.model: required for backend=hf"),
    ({"backend": {"name": "openai", "model": "x"}}, "backend.base_url: expected an http(s) URL"),
    ({"backend": {"name": "openai", "model": "x", "base_url": "http://h/v1", "method": "loglik"}},
     "backend.method: loglik needs backend=hf"),
    ({"backend": {"name": "hf", "model": "x", "base_url": "http://h"}}, "backend.base_url: unknown field"),
    ({"backend": {"name": "hf", "model": "x"}, "prompts": {"m": [30]}}, "prompts.m: letters allow m <= 26"),
    ({"backend": {"name": "hf", "model": "x"}, "prompts": {"task": "sort"}}, "prompts.task: unknown value 'sort'"),
    ({"backend": {"name": "hf", "model": "x"}, "prompts": {"delimiter": "tab"}},
     "prompts.delimiter: unknown value 'tab'; allowed: space, comma, newline"),
    ({"backend": {"name": "hf", "model": "x"}, "prompts": {"samples": "many"}}, "prompts.samples: expected an integer"),
]


@pytest.mark.parametrize("raw, message", BAD)
def test_bad_configs_fail_with_one_line(raw, message):
    with pytest.raises(ConfigError) as err:
        LLMConfig.from_dict(raw)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_cache_survives_a_line_cut_short(tmp_path):
    cache = AnswerCache(tmp_path, "hf", "/models/tiny")
    keys = [request_key({"prompt": p}) for p in "abc"]
    cache.put(keys[0], {"text": "1"})
    cache.put(keys[1], {"text": "2"})
    with cache.path.open("a") as f:
        f.write('{"key": "' + keys[2] + '", "te')  # killed mid-line
    again = AnswerCache(tmp_path, "hf", "/models/tiny")
    assert again.get(keys[0]) == {"key": keys[0], "text": "1"} and again.get(keys[2]) is None
    again.put(keys[2], {"text": "3"})
    assert AnswerCache(tmp_path, "hf", "/models/tiny").get(keys[2])["text"] == "3"


def test_wilson_interval():
    assert wilson(0, 10)[0] == 0.0 and 0.25 < wilson(0, 10)[1] < 0.35
    lo, hi = wilson(50, 100)
    assert lo == pytest.approx(1 - hi) and 0.39 < lo < 0.41


@pytest.mark.slow  # a fresh interpreter importing the package (3-4 s of the fast tier; issue 32)
def test_base_install_does_not_import_torch():
    code = ("import sys, counting, counting.cli.train, counting.cli.llm, counting.llm.run, counting.llm.figures; "
            "bad = [m for m in ('torch', 'transformers') if m in sys.modules]; print(json.dumps(bad))")
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_table_counts_invalid_and_signed_error_apart(tmp_path):
    def answer(key, true, predicted, method="strict"):
        return {"prompt_key": key, "model": "M", "backend": "hf", "method": "generate", "task": "qc", "m": 2, "n": 4,
                "answer": true, "predicted": predicted, "parse": method, "correct": predicted == true,
                "signed_error": None if predicted is None else predicted - true, "single_token": True,
                "prompt_tokens": 30, "form": "completion", "sampler": "balanced", "delimiter": "space",
                "reasoning": False}

    rows = [answer("a", 3, 3), answer("b", 3, 1, "fallback"), answer("c", 2, None, "invalid"), answer("d", 1, 2),
            answer("old", 1, 1)]
    (tmp_path / "answers").mkdir()
    (tmp_path / "answers" / "hf-M.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    path, table, other = build(tmp_path, {"a", "b", "c", "d"})
    (row,) = table
    assert other == 1 and row["samples"] == 4 and row["accuracy"] == 0.25
    assert row["accuracy_parsed"] == pytest.approx(1 / 3) and row["invalid_rate"] == 0.25
    assert row["mean_signed_error"] == pytest.approx((0 - 2 + 1) / 3) and row["baseline_accuracy"] == 0.5
    assert row["fallback_rate"] == 0.25 and path.read_text().startswith(",".join(LEAD))


@pytest.mark.parametrize("reply, line", [(" 3\nAnswer: 4", " 3"), ("\n\n3\nmore", "\n\n3"), ("3", "3"), ("", ""),
                                         ("It occurs 3 times.\n", "It occurs 3 times.")])
def test_a_direct_reply_ends_at_its_first_line(reply, line):
    assert first_line(reply) == line


def test_a_cross_grid_asks_the_same_prompts_as_the_full_grid():
    full = PromptConfig(m=(2, 4, 8), n=(8, 16, 32), samples=3, items="words")
    cross = PromptConfig(m=(2, 4, 8), n=(8, 16, 32), samples=3, items="words", fixed_n=16, fixed_m=4)
    assert cross.cells() == [(2, 16), (4, 8), (4, 16), (4, 32), (8, 16)]
    rows = prompts.generate(cross)
    assert rows == [r for r in prompts.generate(full) if (r["m"], r["n"]) in cross.cells()]
    # fewer samples: the first prompts of each cell, unchanged
    fewer = prompts.generate(PromptConfig(m=(2, 4, 8), n=(8, 16, 32), samples=2, items="words", fixed_n=16, fixed_m=4))
    assert fewer == [r for r in rows if int(r["id"].rsplit("-", 1)[1]) < 2]


def scored(key, true, predicted, form="chat", method="generate", **more):
    return {"prompt_key": key, "id": f"qc-m2-n4-{key}", "model": "M", "backend": "hf", "method": method, "form": form,
            "task": "qc", "m": 2, "n": 4, "answer": true, "predicted": predicted,
            "parse": "loglik" if method == "loglik" else ("strict" if predicted is not None else "invalid"),
            "correct": predicted == true, "signed_error": None if predicted is None else predicted - true,
            "single_token": True, "tokens_per_item": [1, 2], "prompt_tokens": 30, "sampler": "balanced",
            "delimiter": "space", "reasoning": False, "reply": None if method == "loglik" else str(predicted),
            "package": "pkg==1", "quantisation": "Q4_1 GGUF, dequantised to float32", "seconds": 0.5, **more}


def test_the_table_keeps_forms_apart_and_records_the_weights_and_time(tmp_path):
    rows = [scored("0", 3, 3), scored("1", 2, 1), scored("0", 3, 2, form="completion"),
            scored("1", 2, 2, form="completion", seconds=None)]
    (tmp_path / "answers").mkdir()
    (tmp_path / "answers" / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    _, table, _ = build(tmp_path, {"0", "1"})
    chat, completion = sorted(table, key=lambda r: r["form"])
    assert (chat["form"], chat["accuracy"], completion["accuracy"]) == ("chat", 0.5, 0.5)
    assert chat["package"] == "pkg==1" and chat["quantisation"].startswith("Q4_1") and chat["wall_s"] == 1.0
    assert completion["wall_s"] != completion["wall_s"]  # NaN: one answer has no time, so no total is claimed
    assert chat["mean_tokens_per_item"] == 1.5
    assert chat["baseline_mae"] == 0.5  # median of (3, 2) taken as 3: errors 0 and 1
    assert chat["baseline_median_ae"] == 0.5 and chat["median_abs_error"] == 0.5  # errors 0 and 1


def test_samples_show_the_raw_reply_beside_what_was_read():
    from counting.llm.samples import render

    text = render([scored("0", 3, 3), scored("1", 2, None, reply="It occurs | twice"),
                   scored("2", 4, 4, method="loglik", best=[[4, -0.5], [3, -1.25]])], per_cell=2)
    assert "## M, generate, chat" in text and "## M, loglik, chat" in text
    assert "| qc-m2-n4-0 | 3 | `3` | 3 | strict |" in text
    assert "| qc-m2-n4-1 | 2 | `It occurs \\| twice` |  | invalid |" in text
    assert "loglik, best: 4 (-0.50), 3 (-1.25)" in text


def test_trend_csv_beside_the_table_tests_each_sweep_of_a_cross_grid(tmp_path):
    from counting.llm.table import TREND, TREND_LEAD

    # a cross grid: m = 2, 4, 16 at n = 8 (accuracy 0.9, 0.5, 0.1) and n = 4, 6, 8 at m = 4 (0.5 each)
    rates = {(2, 8): 0.9, (4, 8): 0.5, (16, 8): 0.1, (4, 4): 0.5, (4, 6): 0.5}
    rows = []
    for (m, n), rate in rates.items():
        right = round(40 * rate)
        rows += [scored(f"{m}-{n}-{i}", 3, 3 if i < right else 2, m=m, n=n, id=f"qc-m{m}-n{n}-{i}") for i in range(40)]
    (tmp_path / "answers").mkdir()
    (tmp_path / "answers" / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    _, table, _ = build(tmp_path, {r["prompt_key"] for r in rows})
    by_cell = {(r["m"], r["n"]): r for r in table}
    assert by_cell[(2, 8)]["baseline_accuracy"] == 1.0  # every true answer is 3 here: the baseline is 1
    assert by_cell[(2, 8)]["p_above_baseline"] == 1.0 and by_cell[(2, 8)]["modal_prediction"] == 3
    assert by_cell[(16, 8)]["modal_prediction"] == 2 and by_cell[(16, 8)]["modal_share"] == 0.9
    text = (tmp_path / TREND).read_text()
    assert text.startswith(",".join(TREND_LEAD))
    over_m, over_n = sorted(csv.DictReader(io.StringIO(text)), key=lambda r: r["over"])
    assert (over_m["over"], over_m["at"], over_m["levels"], over_m["samples"]) == ("m", "n=8", "2 4 16", "120")
    assert over_m["accuracies"] == "0.900 0.500 0.100" and over_m["score"] == "log2 m"
    assert float(over_m["slope"]) == pytest.approx(np.polyfit([1, 2, 4], [0.9, 0.5, 0.1], 1)[0])
    assert float(over_m["slope_high"]) < 0 and float(over_m["p"]) < 0.001 and float(over_m["p_holm"]) < 0.001
    assert (over_n["at"], over_n["levels"]) == ("m=4", "4 6 8")
    assert float(over_n["slope"]) == pytest.approx(0.0, abs=1e-12) and float(over_n["p"]) == pytest.approx(1.0)
