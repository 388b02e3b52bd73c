"""`llamacpp`: a GGUF file run directly by llama.cpp through llama-cpp-python (the `llamacpp`
extra, built from source), with the quantised weights as they are: a packaged model by name
(`counting.llm.models`), a GGUF file in a folder (`backend.gguf_file`), or a .gguf file.

The same requests as `hf`, answered the same way: the chat form is rendered from the file's
own chat template (`tokenizer.chat_template`, through llama-cpp-python's Jinja2 chat formatter,
which mirrors transformers' `apply_chat_template`), the completion form is the suite's text;
both are tokenized here (special tokens parsed; BOS as the file asks, only for the completion
form, as `hf` does) and fed as token ids, so the prompt's tokens are those `hf` feeds (checked
in tests/test_llm_llamacpp.py). Greedy decoding (temperature 0, no repeat penalty), at most
max_new_tokens, ending at an end-of-generation token or, for a direct answer, at the reply's
first line break after some text; the reply is then parsed by the suite's parser.

One prompt at a time, each from an empty context (no key/value prefix reused from the
previous prompt), so an answer does not depend on the order prompts are asked in. `score`
ranks the answers 0..n by log p(answer | prompt) + log p(no digit follows), as `hf` does:
the prompt is read once, and each answer's tokens are fed after it one at a time.

Differences from `hf` on the same file: `hf` dequantises the weights to float32 and runs them
in float32; llama.cpp multiplies the 4-bit blocks directly, with the activations rounded to
8 bits for those products, so logits differ slightly and a near-tie in a greedy argmax can
go the other way (rates measured in results/llm_backends/README.md)."""

from __future__ import annotations

import math
import os
import time

import llama_cpp
import numpy as np
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from counting.llm import templates
from counting.llm.backends import BackendError, Done, Scoring, chat_or_completion, resolve
from counting.llm.parse import first_line

FILE_TYPES = {getattr(llama_cpp, k): k.removeprefix("LLAMA_FTYPE_MOSTLY_").removeprefix("LLAMA_FTYPE_")
              for k in dir(llama_cpp) if k.startswith("LLAMA_FTYPE_") and isinstance(getattr(llama_cpp, k), int)}


class Tokenizer:
    """llama.cpp's own tokenizer behind the slice of a Hugging Face tokenizer's interface the
    suite uses (`tok(text, add_special_tokens=...)["input_ids"]`, `chat_template`), so that the
    run records tokens per item and prompt lengths as it does for `hf`."""

    def __init__(self, llm: llama_cpp.Llama):
        self.llm = llm
        self.chat_template = llm.metadata.get("tokenizer.chat_template") or None

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict:
        ids = self.llm.tokenize(text.encode("utf-8"), add_bos=add_special_tokens, special=True)
        return {"input_ids": ids}

    def decode(self, ids: list[int]) -> str:
        return self.llm.detokenize(ids, special=False).decode("utf-8", errors="replace")


class LlamaCppBackend(Scoring):
    def __init__(self, cfg):
        self.cfg = cfg
        folder, gguf_file, self.weights = resolve(cfg)
        path = folder / gguf_file
        # the same threads for the prompt (n_threads_batch) as for each new token: llama-cpp-python
        # would read prompts on every core, which on a shared machine stalls its spinning threads
        threads = cfg.threads or max(1, (os.cpu_count() or 2) // 2)
        began = time.perf_counter()
        try:
            self.llm = llama_cpp.Llama(model_path=str(path), n_ctx=cfg.n_ctx, n_threads=threads,
                                       n_threads_batch=threads, seed=0, verbose=False, logits_all=False)
        except (OSError, ValueError, RuntimeError) as err:
            raise BackendError(f"backend.model: llama.cpp cannot load {str(path)!r}: "
                               f"{(str(err).splitlines() or [type(err).__name__])[0]}") from None
        self.load_seconds = time.perf_counter() - began
        self.tokenizer = Tokenizer(self.llm)
        file_type = self.llm.metadata.get("general.file_type")
        quant = FILE_TYPES.get(int(file_type), f"file type {file_type}") if file_type is not None else "unknown"
        self.weights["quantisation"] = f"{quant} GGUF, run by llama.cpp"
        self.weights["parameters"] = self.llm._model.n_params()
        self.vocab = self.llm._model.vocab
        self.formatter = None
        if self.tokenizer.chat_template:
            piece = lambda token: self.token_text(token) if token >= 0 else ""
            self.formatter = Jinja2ChatFormatter(self.tokenizer.chat_template, eos_token=piece(self.llm.token_eos()),
                                                 bos_token=piece(self.llm.token_bos()), add_generation_prompt=True)
        self.digit_ids = None

    def resolve_form(self, form: str) -> str:
        return chat_or_completion(form, self.formatter is not None, self.cfg.model)

    def render(self, request: dict) -> str:
        """The exact text the model reads (chat: through the file's own template)."""
        if request["form"] == "chat":
            return self.formatter(messages=templates.chat(request["prompt"])).prompt
        return templates.completion(request["prompt"], request["reasoning"])

    def ids(self, request: dict) -> list[int]:
        return self.tokenizer(self.render(request), add_special_tokens=request["form"] == "completion")["input_ids"]

    def fits(self, prompt_ids: list[int], more: int) -> None:
        if len(prompt_ids) + more > self.cfg.n_ctx:
            raise BackendError(f"backend.n_ctx: a prompt of {len(prompt_ids)} tokens and {more} more do not fit "
                               f"in n_ctx={self.cfg.n_ctx}; raise backend.n_ctx")

    def generate(self, requests: list[dict], max_new_tokens: int, done: Done) -> None:
        for i, request in enumerate(requests):
            began = time.perf_counter()
            text = self.reply(self.ids(request), max_new_tokens, stop_at_line=not request["reasoning"])
            done(i, {"text": text, "seconds": time.perf_counter() - began})

    def reply(self, prompt_ids: list[int], max_new_tokens: int, stop_at_line: bool = True) -> str:
        """Greedy continuation of the prompt: at most max_new_tokens, up to an end-of-generation
        token, and (stop_at_line) cut at the first line break after some text."""
        self.fits(prompt_ids, max_new_tokens)
        self.llm.reset()  # an empty context: no prefix kept from the previous prompt
        out: list[int] = []
        for token in self.llm.generate(prompt_ids, top_k=1, top_p=1.0, min_p=0.0, typical_p=1.0, temp=0.0,
                                       repeat_penalty=1.0, reset=True):
            if llama_cpp.llama_vocab_is_eog(self.vocab, token):
                break
            out.append(token)
            if len(out) >= max_new_tokens:
                break
            if stop_at_line:
                text = self.tokenizer.decode(out)
                if first_line(text) != text:
                    break
        text = self.tokenizer.decode(out)
        return first_line(text) if stop_at_line else text

    def loglik(self, prompt_ids: list[int], cands: list[list[int]]) -> list[float]:
        """log p(cand | prompt) + log p(no digit next) for every candidate: the prompt once, then
        each candidate's tokens one at a time after it (the prompt's key/value cache kept)."""
        self.fits(prompt_ids, max(len(c) for c in cands))
        self.llm.reset()
        self.llm.eval(prompt_ids)
        first = self.logp_now()
        P, digits, out = len(prompt_ids), self.digit_start_ids(), []
        for c in cands:
            self.llm.n_tokens = P  # eval drops the key/value cache from here on
            total, logp = float(first[c[0]]), first
            for t, token in enumerate(c):
                self.llm.eval([token])
                logp = self.logp_now()
                if t + 1 < len(c):
                    total += float(logp[c[t + 1]])
            p_digit = min(float(np.exp(logp[digits]).sum()), 1 - 1e-6)
            out.append(total + math.log1p(-p_digit))
        return out

    def logp_now(self) -> np.ndarray:
        """log-softmax (float64) of the logits after the last token fed."""
        n_vocab = self.llm.n_vocab()
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self.llm.ctx, -1), shape=(n_vocab,))
        logits = logits.astype(np.float64)
        top = logits.max()
        return logits - (top + np.log(np.exp(logits - top).sum()))

    def digit_start_ids(self) -> np.ndarray:
        """Ids of the tokens whose text begins with a digit (they would continue a number)."""
        if self.digit_ids is None:
            hits = [i for i in range(self.llm.n_vocab()) if self.token_text(i).lstrip(" Ġ▁")[:1].isdigit()]
            self.digit_ids = np.array(hits, dtype=np.int64)
        return self.digit_ids

    def token_text(self, token: int) -> str:
        """A token as the vocabulary spells it (as transformers' convert_ids_to_tokens does)."""
        raw = llama_cpp.llama_vocab_get_text(self.vocab, token)
        return raw.decode("utf-8", errors="replace") if raw else ""
