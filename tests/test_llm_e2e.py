"""counting-llm end to end on a tiny random causal LM built here (no hub, no network but
127.0.0.1): the hf backend in-process, the openai backend against a small OpenAI-compatible
server that answers from the same model, and every bad input as one line. The model answers
at random: these tests check the pipeline, parsing and bookkeeping, not accuracy."""

import contextlib
import csv
import io
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.util import find_spec

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
# torch and transformers are imported where used, not here: collection imports every test module
# on every worker, and importing these two took 2.4 s of it (benchmarks/results/test_times.md)
pytestmark = [pytest.mark.skipif(not (find_spec("torch") and find_spec("transformers")),
                                 reason="the hf backend needs torch and transformers: pip install -e '.[test]'"),
              pytest.mark.slow]  # the whole file: importing torch and building the model is 22 s of the fast tier (issue 32)

from counting.cli.llm import main
from counting.llm.templates import completion
from counting.llm.vocab import letters

GRID = ["prompts.m=[2,4]", "prompts.n=[4,8]", "prompts.samples=3"]  # 12 prompts
TEMPLATE_WORDS = ("Here is a list of items separated by spaces commas newlines : How many times does the item ' "
                  "occur in the most frequent list ? Reply with single integer and nothing else . Answer There are")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A 1-layer Llama (d = 16) with a word-level tokenizer over letters, 0..69 and the template's words."""
    import torch
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    words = ["[PAD]", "[UNK]", "[BOS]", "[EOS]", *letters(), *map(str, range(70)), *TEMPLATE_WORDS.split()]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                                bos_token="[BOS]", eos_token="[EOS]")
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                                      pad_token_id=0, bos_token_id=2, eos_token_id=3)
    path = tmp_path_factory.mktemp("tiny-llama")
    transformers.LlamaForCausalLM(config).save_pretrained(path)
    fast.save_pretrained(path)
    return str(path)


def test_a_kept_model_loads_back_the_same_and_an_unwritable_cache_only_warns(tiny_model, tmp_path, monkeypatch):
    """keep_dequantised (what the hf backend does after reading a GGUF file): the folder it
    writes loads back with the same weights and tokenizer; where the cache cannot be written it
    warns once and raises nothing; COUNTING_LLM_CACHE=off keeps nothing; a changed file gets a
    folder of its own."""
    import os

    import torch
    import transformers

    from counting.llm.backends.hf import CACHE_ENV, dequantised_folder, keep_dequantised

    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model)
    tok = transformers.AutoTokenizer.from_pretrained(tiny_model)
    keep_dequantised(model, tok, tmp_path / "kept")
    back = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "kept")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), back.state_dict().values()))
    assert transformers.AutoTokenizer.from_pretrained(tmp_path / "kept").get_vocab() == tok.get_vocab()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # nothing half-written left
    (tmp_path / "file").write_text("")
    with pytest.warns(UserWarning, match=f"^{CACHE_ENV}: could not keep"):
        keep_dequantised(model, tok, tmp_path / "file" / "kept")  # a file where the folder should go

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setenv(CACHE_ENV, "off")
    assert dequantised_folder(gguf, torch.float32) is None
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    first = dequantised_folder(gguf, torch.float32)
    assert first.parent == tmp_path / "cache" and first.name.startswith("m-")
    assert dequantised_folder(gguf, torch.float32) == first != dequantised_folder(gguf, torch.bfloat16)
    os.utime(gguf, ns=(0, 0))
    assert dequantised_folder(gguf, torch.float32) != first


def run_cli(monkeypatch, capsys, *overrides):
    """counting-llm in this process: (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["counting-llm", *overrides])
    status = 0
    try:
        main()
    except SystemExit as exit_:
        status = exit_.code or 0
    out, err = capsys.readouterr()
    return status, out, err


def table_rows(root):
    with open(root / "table.csv") as f:
        return list(csv.DictReader(f))


def answers(root):
    return [json.loads(line) for p in sorted((root / "answers").glob("*.jsonl")) for line in p.read_text().splitlines()]


@pytest.fixture(scope="module")
def hf_run(tiny_model, tmp_path_factory):
    """One hf run of llm_qc (12 prompts, figures drawn): (results dir, status, stdout, stderr)."""
    results = tmp_path_factory.mktemp("results")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(sys, "argv", ["counting-llm", "-m", "experiment=llm_qc", "backend=hf",
                                          f"backend.model={tiny_model}", f"results_dir={results}", *GRID,
                                          "prompts.items=letters"])
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
                status = 0
            except SystemExit as exit_:
                status = exit_.code or 0
    return results, status, out.getvalue(), err.getvalue()


def test_hf_backend_end_to_end(hf_run, tiny_model, monkeypatch, capsys):
    results, status, out, err = hf_run
    assert status == 0, err
    root = results / "llm_qc"
    assert "12 prompts (completion, generate), 0 cached, 12 to ask" in out
    rows = table_rows(root)
    assert [(r["m"], r["n"]) for r in rows] == [("2", "4"), ("2", "8"), ("4", "4"), ("4", "8")]
    for r in rows:
        assert r["samples"] == "3" and r["model"] == tiny_model and r["task"] == "qc"
        assert 0 <= float(r["ci_low"]) <= float(r["accuracy"]) <= float(r["ci_high"]) <= 1
        assert 0 <= float(r["invalid_rate"]) <= 1 and float(r["single_token_share"]) == 1.0
    scored = answers(root)
    assert len(scored) == 12 and all(s["prompt_tokens"] > 20 and s["tokens_per_item"] for s in scored)
    assert all(s["correct"] == (s["predicted"] == s["answer"]) for s in scored)
    names = sorted(p.name for p in (root / "figures").iterdir())
    assert names == sorted(f"{f}.{ext}" for f in ("accuracy_vs_m", "accuracy_vs_n", "accuracy_heatmap",
                                                   "predicted_vs_true") for ext in ("png", "pdf"))
    # a rerun asks nothing: every answer comes from the cache
    status, out, _ = run_cli(monkeypatch, capsys, "experiment=llm_qc", f"backend.model={tiny_model}",
                             f"results_dir={results}", *GRID, "prompts.items=letters", "figures=false")
    assert status == 0 and "12 cached, 0 to ask" in out
    assert answers(root) == scored


def test_hf_loglik_scores_every_answer(tiny_model, tmp_path, monkeypatch, capsys):
    status, _, err = run_cli(monkeypatch, capsys, "experiment=llm_mfe", f"backend.model={tiny_model}",
                               "backend.method=loglik", f"results_dir={tmp_path}", *GRID, "figures=false")
    assert status == 0, err
    scored = answers(tmp_path / "llm_mfe")
    assert len(scored) == 12 and all(s["parse"] == "loglik" and 0 <= s["predicted"] <= s["n"] for s in scored)
    assert all(float(r["invalid_rate"]) == 0 for r in table_rows(tmp_path / "llm_mfe"))


def test_a_fresh_cache_gives_the_same_table(hf_run, tiny_model, tmp_path, monkeypatch, capsys):
    """Determinism: the same prompts answered again from nothing (another cache) give the same
    replies and the same table (but for the measured seconds)."""
    results = hf_run[0]
    status, out, err = run_cli(monkeypatch, capsys, "experiment=llm_qc", f"backend.model={tiny_model}",
                               f"results_dir={tmp_path}", f"cache_dir={tmp_path / 'fresh'}", *GRID,
                               "prompts.items=letters", "figures=false")
    assert status == 0 and "0 cached, 12 to ask" in out, err
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("wall_s", "seconds")} for r in rows]
    assert strip(table_rows(tmp_path / "llm_qc")) == strip(table_rows(results / "llm_qc"))
    again = {s["id"]: s["reply"] for s in answers(tmp_path / "llm_qc")}
    assert again == {s["id"]: s["reply"] for s in answers(results / "llm_qc") if s["backend"] == "hf"}


def test_loglik_with_a_shared_prompt_cache_matches_full_passes(tiny_model):
    """The hf backend scores all n + 1 answers over one copy each of the prompt's key/value
    cache; the scores equal those of a full forward pass per answer."""
    import torch

    from counting.llm.backends.hf import HFBackend
    from counting.llm.config import HFConfig

    b = HFBackend(HFConfig(model=tiny_model))
    request = {"form": "completion", "prompt": "Here is a list of items separated by spaces :\na b a\n"
               "How many times does the item ' a ' occur in the list ?", "reasoning": False}
    prompt_ids = b.ids(request)
    cands = [b.answer_ids(request, prompt_ids, f" {c}") for c in range(13)]
    fast = b.loglik(prompt_ids, cands)
    P, digits = len(prompt_ids), b.digit_start_ids()
    with torch.no_grad():
        for c, score in zip(cands, fast):
            logp_TxV = torch.log_softmax(b.model(torch.tensor([prompt_ids + c])).logits[0].float(), -1)
            full = sum(float(logp_TxV[P - 1 + t, tok]) for t, tok in enumerate(c))
            full += float(torch.log1p(-logp_TxV[-1, digits].exp().sum().clamp(max=1 - 1e-6)))
            assert score == pytest.approx(full, abs=1e-4)


class Server:
    """An OpenAI-compatible server on 127.0.0.1 answering from the tiny model (greedy); it can be
    told to serve only `budget` more answers (then 503) or to stall for `delay_s`."""

    def __init__(self, model_path):
        import transformers

        self.tok = transformers.AutoTokenizer.from_pretrained(model_path)
        self.model = transformers.AutoModelForCausalLM.from_pretrained(model_path).eval()
        self.lock, self.budget, self.delay_s, self.seen = threading.Lock(), None, 0.0, 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.headers.get("Authorization") != "Bearer test-key":
                    return self.reply(401, {"error": "bad key"})
                time.sleep(server.delay_s)
                with server.lock:
                    server.seen += 1
                    if server.budget is not None:
                        if server.budget <= 0:
                            return self.reply(503, {"error": "overloaded"})
                        server.budget -= 1
                    chat = self.path.endswith("/chat/completions")
                    prompt = completion(body["messages"][-1]["content"], False) if chat else body["prompt"]
                    text = server.complete(prompt, body["max_tokens"])
                choice = {"message": {"role": "assistant", "content": text}} if chat else {"text": text}
                self.reply(200, {"choices": [{"index": 0, **choice}]})

            def reply(self, code, obj):
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # a client that gave up (timeout test)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def complete(self, prompt, max_tokens):
        import torch

        ids = self.tok(prompt, return_tensors="pt")
        with torch.no_grad():
            out = self.model.generate(**ids, max_new_tokens=max_tokens, do_sample=False, pad_token_id=0)
        return self.tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)


@pytest.fixture(scope="module")
def server(tiny_model):
    s = Server(tiny_model)
    yield s
    s.httpd.shutdown()


def openai_args(url, tmp_path, *more):
    return ("-m", "experiment=llm_qc", "backend=openai", f"backend.base_url={url}", "backend.model=tiny",
            f"results_dir={tmp_path}", "backend.backoff_s=0", *GRID, "prompts.items=letters", "figures=false", *more)


def test_openai_backend_end_to_end_and_resume(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    server.budget = 5  # five answers, then the server refuses (503) every request
    status, out, err = run_cli(monkeypatch, capsys, *openai_args(server.url, tmp_path, "backend.concurrency=1",
                                                                 "backend.retries=1"))
    assert status == 1 and err.count("\n") == 1 and "HTTP 503" in err and "after 2 tries" in err
    assert "test-key" not in out + err
    root = tmp_path / "llm_qc"
    assert len(answers(root)) == 5 and (root / "table.csv").exists()  # finished samples kept and tabulated
    server.budget = None
    status, out, err = run_cli(monkeypatch, capsys, *openai_args(server.url, tmp_path))
    assert status == 0, err
    assert "12 prompts (chat, generate), 5 cached, 7 to ask" in out
    scored = answers(root)
    assert len(scored) == 12 and {s["form"] for s in scored} == {"chat"} and scored[0]["tokens_per_item"] is None
    assert len(table_rows(root)) == 4


def test_openai_completion_form_matches_the_hf_backend(server, hf_run, tiny_model, monkeypatch, capsys):
    """The same model behind HTTP (completion form) gives the same replies as the hf backend,
    and both models share one table."""
    results = hf_run[0]
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    assert run_cli(monkeypatch, capsys, *openai_args(server.url, results, "prompts.form=completion"))[0] == 0
    by_backend = {}
    for s in answers(results / "llm_qc"):
        by_backend.setdefault(s["backend"], {})[s["id"]] = s["reply"].replace(" ", "")
    assert len(by_backend["openai"]) == 12 and by_backend["openai"] == by_backend["hf"]
    assert {r["model"] for r in table_rows(results / "llm_qc")} == {"tiny", tiny_model}


@pytest.mark.parametrize("case", ["refused", "timeout", "no_key", "no_model", "unknown_backend", "no_extra"])
def test_bad_input_is_one_line(case, server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    args = openai_args(server.url, tmp_path, "backend.retries=0")
    expect = {"refused": (1, "connection refused"), "timeout": (1, "no answer within backend.timeout_s=0.3 s"),
              "no_key": (2, "backend.api_key_env: the environment variable OPENAI_API_KEY is not set"),
              "no_model": (2, "backend.model: no Hugging Face checkpoint"),
              "unknown_backend": (2, "backend: unknown backend 'gpt'; allowed: hf, openai"),
              "no_extra": (2, ("backend=hf needs torch and transformers, which are not installed; "
                               "run: pip install -e '.[llm]'"))}[case]
    if case == "refused":
        args = openai_args("http://127.0.0.1:9/v1", tmp_path, "backend.retries=0")
    elif case == "timeout":
        server.delay_s = 0.6
        args = (*args, "backend.timeout_s=0.3")
    elif case == "no_key":
        monkeypatch.delenv("OPENAI_API_KEY")
    elif case in ("no_model", "no_extra"):
        args = ("experiment=llm_qc", f"backend.model={tmp_path / 'nothing'}", f"results_dir={tmp_path}", *GRID)
        if case == "no_extra":
            import importlib.util
            find_spec = importlib.util.find_spec
            monkeypatch.setattr(importlib.util, "find_spec",
                                lambda name, *a: None if name == "torch" else find_spec(name, *a))
    elif case == "unknown_backend":
        args = ("experiment=llm_qc", "backend=gpt", f"results_dir={tmp_path}")
    try:
        status, _, err = run_cli(monkeypatch, capsys, *args)
    finally:
        server.delay_s = 0.0
    if case == "no_extra":  # only torch is hidden here
        expect = (2, expect[1].replace("torch and transformers", "torch"))
    assert status == expect[0]
    assert expect[1] in err and "Traceback" not in err and err.count("\n") == 1
