"""`hf`: a local Hugging Face causal LM through transformers + torch (the `llm` extra): a
checkpoint folder, a GGUF file in a folder (`backend.gguf_file`; transformers dequantises it,
which needs `gguf` and `accelerate`), or a packaged model by name (`counting.llm.models`).

Offline always: the hub's offline switches are set before transformers is imported and every
load passes local_files_only. Greedy decoding (temperature 0) with left padding; a reply
without reasoning ends at its first line break after some text (the rest is never read by
the parser's strict rule, and a direct answer is one line). `score`
ranks the whole answers 0..n by log-likelihood: log p(tokens of c | prompt) + log p(the next
token does not continue the number), so that "1" does not win over "12" merely for being
shorter; the prompt is read once and its key/value cache shared by all n + 1 answers."""

from __future__ import annotations

import copy
import inspect
import os
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers (and huggingface_hub) read them
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteria, StoppingCriteriaList
from transformers import __version__ as transformers_version
from transformers.utils import logging as hf_logging

from counting.llm import templates
from counting.llm.backends import BackendError, Done, Scoring, chat_or_completion, resolve
from counting.llm.parse import first_line

DTYPES = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


GGUF_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # value type -> bytes; 8 string, 9 array


def gguf_file_type(path: Path) -> int | None:
    """general.file_type read from the header alone, skipping the other values as it goes (it
    sits before the vocabulary in the files we know: gguf's GGUFReader parses all of them, about
    4 s for SmolLM2's 49k tokens); None where the key is absent or the file is not little-endian
    GGUF v2/v3."""
    import struct

    def skip(f, kind: int) -> None:
        if kind in GGUF_SIZES:
            f.seek(GGUF_SIZES[kind], 1)
        elif kind == 8:
            f.seek(struct.unpack("<Q", f.read(8))[0], 1)
        elif kind == 9:
            inner, count = struct.unpack("<IQ", f.read(12))
            if inner in GGUF_SIZES:
                f.seek(GGUF_SIZES[inner] * count, 1)
            else:
                for _ in range(count):
                    skip(f, inner)
        else:
            raise ValueError(f"GGUF value type {kind}")

    with open(path, "rb") as f:
        magic, version = f.read(4), struct.unpack("<I", f.read(4))[0]
        if magic != b"GGUF" or version not in (2, 3):
            return None
        _, kv_count = struct.unpack("<QQ", f.read(16))
        for _ in range(kv_count):
            key = f.read(struct.unpack("<Q", f.read(8))[0]).decode("utf-8", "replace")
            kind = struct.unpack("<I", f.read(4))[0]
            if key == "general.file_type" and kind in (4, 5):
                return struct.unpack("<I" if kind == 4 else "<i", f.read(4))[0]
            skip(f, kind)
    return None


def gguf_quantisation(path: Path) -> str:
    """The file's own quantisation (general.file_type: Q4_1, Q4_K_M, ...)."""
    from gguf import LlamaFileType

    kind = gguf_file_type(path)
    if kind is None:
        return "unknown"
    return LlamaFileType(kind).name.removeprefix("MOSTLY_")


CACHE_ENV = "COUNTING_LLM_CACHE"  # a folder for dequantised GGUF models, or "off"


def dequantised_folder(gguf_path: Path, dtype) -> Path | None:
    """Where the model of a GGUF file, dequantised to `dtype`, is kept between processes:
    transformers reads a GGUF file's header three times and dequantises every tensor on each
    load; a saved copy loads with the same weights and tokenizer in a fraction of that time
    (SmolLM2-135M on a 2-core CPU: 27.9 s against 3.9 s, benchmarks/results/llm_load.md).
    $COUNTING_LLM_CACHE ("off": nowhere), else ~/.cache/counting/llm; one folder per file (its
    real path, size and modification time), dtype and transformers version. Float32 copies are
    large (4 bytes per parameter: 0.5 GB for SmolLM2-135M, 6 GB for Qwen2.5-1.5B)."""
    import hashlib

    value = os.environ.get(CACHE_ENV, "").strip()
    if value.lower() == "off":
        return None
    root = Path(value) if value else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "counting" / "llm"
    try:
        real, stat = gguf_path.resolve(), gguf_path.stat()
    except OSError:
        return None
    key = hashlib.sha256(f"{real}|{stat.st_size}|{stat.st_mtime_ns}|{dtype}|{transformers_version}".encode())
    return root / f"{gguf_path.stem}-{key.hexdigest()[:16]}"


def keep_dequantised(model, tokenizer, folder: Path) -> None:
    """Saves a freshly dequantised model and its tokenizer to `folder` (written beside it, then
    renamed: a reader sees all of it or nothing, and of two processes saving at once one wins); a
    full disk or an unwritable cache costs only the next load's time, with one warning."""
    import shutil
    import tempfile
    import warnings

    quantizer = getattr(model, "hf_quantizer", None)
    packed = getattr(quantizer, "supported", False) and not getattr(quantizer.quantization_config, "dequantize", True)
    if packed or any("gguf" in type(m).__module__ for m in model.modules()) or \
            any(p.dtype not in (torch.float32, torch.bfloat16, torch.float16) for p in model.parameters()):
        return  # weights kept in GGUF blocks (transformers' GGUF kernels): not a float model to save
    # transformers marks a model read from GGUF as quantized (not serialisable) even when every
    # weight was dequantised: saved without that mark, it loads back as the plain float model it is
    config_mark = model.config.__dict__.pop("quantization_config", None)
    tmp = None
    try:
        model.hf_quantizer = None
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, folder)
    except OSError as err:
        if not folder.is_dir():
            warnings.warn(f"{CACHE_ENV}: could not keep the dequantised model in {folder} ({err}); "
                          "the next load dequantises again", stacklevel=3)
    finally:
        model.hf_quantizer = quantizer
        if config_mark is not None:
            model.config.quantization_config = config_mark
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


class HFBackend(Scoring):
    def __init__(self, cfg):
        self.cfg = cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        folder, gguf_file, self.weights = resolve(cfg)
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        dtype = torch.float32 if gguf_file and cfg.dtype == "auto" else DTYPES[cfg.dtype]
        converted = dequantised_folder(folder / gguf_file, dtype) if gguf_file else None
        load = lambda source, **extra: (AutoTokenizer.from_pretrained(source, local_files_only=True, **extra),
                                        AutoModelForCausalLM.from_pretrained(source, local_files_only=True, dtype=dtype,
                                                                             **extra))
        kept = None
        if converted is not None and converted.is_dir():
            try:
                kept = load(converted)
            except (OSError, ValueError, RuntimeError) as err:
                import warnings

                warnings.warn(f"{CACHE_ENV}: the kept copy {converted} does not load ({str(err).splitlines()[0]}); "
                              "reading the GGUF file (delete the folder to keep a new copy)", stacklevel=2)
        try:
            self.tokenizer, self.model = kept or load(folder, **({"gguf_file": gguf_file} if gguf_file else {}))
        except (OSError, ValueError, RuntimeError) as err:
            raise BackendError(f"backend.model: cannot load {cfg.model!r}: {str(err).splitlines()[0]}") from None
        if converted is not None and kept is None:
            keep_dequantised(self.model, self.tokenizer, converted)
        self.model = self.model.to(cfg.device).eval()
        loaded = str(next(self.model.parameters()).dtype).removeprefix("torch.")
        self.weights["quantisation"] = (f"{gguf_quantisation(folder / gguf_file)} GGUF, dequantised to {loaded}"
                                        if gguf_file else loaded)
        self.weights["parameters"] = sum(p.numel() for p in self.model.parameters())
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.digit_ids = None

    def resolve_form(self, form: str) -> str:
        return chat_or_completion(form, bool(getattr(self.tokenizer, "chat_template", None)), self.cfg.model)

    def render(self, request: dict) -> str:
        """The exact text the model reads (chat: through the tokenizer's own template)."""
        if request["form"] == "chat":
            return self.tokenizer.apply_chat_template(templates.chat(request["prompt"]), tokenize=False,
                                                      add_generation_prompt=True)
        return templates.completion(request["prompt"], request["reasoning"])

    def ids(self, request: dict) -> list[int]:
        return self.tokenizer(self.render(request), add_special_tokens=request["form"] == "completion")["input_ids"]

    @torch.no_grad()
    def generate(self, requests: list[dict], max_new_tokens: int, done: Done) -> None:
        for start in range(0, len(requests), self.cfg.batch):
            began = time.perf_counter()
            chunk = requests[start:start + self.cfg.batch]
            ids_B, mask_BxT = self.pad([self.ids(r) for r in chunk])
            stop = [] if any(r["reasoning"] for r in chunk) else [FirstLine(self.tokenizer, ids_B.shape[1])]
            out_BxS = self.model.generate(input_ids=ids_B, attention_mask=mask_BxT, max_new_tokens=max_new_tokens,
                                          do_sample=False, pad_token_id=self.tokenizer.pad_token_id,
                                          stopping_criteria=StoppingCriteriaList(stop))
            texts = [first_line(t) if not r["reasoning"] else t for r, t in
                     zip(chunk, self.tokenizer.batch_decode(out_BxS[:, ids_B.shape[1]:], skip_special_tokens=True))]
            seconds = (time.perf_counter() - began) / len(chunk)
            for i, text in enumerate(texts):
                done(start + i, {"text": text, "seconds": seconds})

    @torch.no_grad()
    @torch.no_grad()
    def loglik(self, prompt_ids: list[int], cands: list[list[int]]) -> list[float]:
        """log p(cand | prompt) + log p(no digit next) for every candidate: the prompt once,
        then all candidates (right-padded) in one pass over copies of its key/value cache."""
        dev = self.cfg.device
        P, B, K = len(prompt_ids), len(cands), max(len(c) for c in cands)
        prompt = self.model(input_ids=torch.tensor([prompt_ids], device=dev), use_cache=True)
        first_logp_V = torch.log_softmax(prompt.logits[0, -1].float(), dim=-1)
        cache_arg = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
        cache = copy.deepcopy(getattr(prompt, cache_arg))
        cache.batch_repeat_interleave(B)
        pad = self.tokenizer.pad_token_id
        ids_BxK = torch.tensor([c + [pad] * (K - len(c)) for c in cands], device=dev)
        mask_BxT = torch.tensor([[1] * (P + len(c)) + [0] * (K - len(c)) for c in cands], device=dev)
        logits_BxKxV = self.model(input_ids=ids_BxK, attention_mask=mask_BxT, use_cache=True,
                                  **{cache_arg: cache}).logits
        logp_BxKxV = torch.log_softmax(logits_BxKxV.float(), dim=-1)
        digits = self.digit_start_ids()
        out = []
        for b, c in enumerate(cands):
            L = len(c)
            total = first_logp_V[c[0]]
            if L > 1:  # position t - 1 predicts answer token t
                total = total + logp_BxKxV[b, torch.arange(L - 1, device=dev), torch.tensor(c[1:], device=dev)].sum()
            p_digit = logp_BxKxV[b, L - 1, digits].exp().sum().clamp(max=1 - 1e-6)
            out.append(float(total + torch.log1p(-p_digit)))
        return out

    def digit_start_ids(self) -> torch.Tensor:
        """Ids of the tokens that begin with a digit (they would continue a number)."""
        if self.digit_ids is None:
            vocab = self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))
            hits = [i for i, t in enumerate(vocab) if t and t.lstrip(" Ġ▁")[:1].isdigit()]
            self.digit_ids = torch.tensor(hits, dtype=torch.long, device=self.cfg.device)
        return self.digit_ids

    def pad(self, seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        T = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (T - len(s)) + s for s in seqs], device=self.cfg.device)
        mask = torch.tensor([[0] * (T - len(s)) + [1] * len(s) for s in seqs], device=self.cfg.device)
        return ids, mask


class FirstLine(StoppingCriteria):
    """Stops each sequence once its reply holds a line break after some text."""

    def __init__(self, tokenizer, prompt_len: int):
        self.tokenizer, self.prompt_len = tokenizer, prompt_len

    def __call__(self, input_ids_BxS: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(input_ids_BxS[:, self.prompt_len:], skip_special_tokens=True)
        return torch.tensor([first_line(t) != t for t in texts], device=input_ids_BxS.device)
