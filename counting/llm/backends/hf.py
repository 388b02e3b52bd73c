"""`hf`: a local Hugging Face causal LM through transformers + torch (the `llm` extra).

Greedy decoding (temperature 0) with left padding. `score` ranks the whole answers 0..n by
log-likelihood: log p(digits of c | prompt) + log p(the next token does not continue the
number), so that "1" does not win over "12" merely for being shorter."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from counting.llm import templates
from counting.llm.backends import BackendError, Done

DTYPES = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class HFBackend:
    def __init__(self, cfg):
        self.cfg = cfg
        if not (Path(cfg.model) / "config.json").is_file():
            raise BackendError(f"backend.model: no Hugging Face checkpoint (config.json) in {cfg.model!r}")
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(cfg.model, local_files_only=True)
            self.model = AutoModelForCausalLM.from_pretrained(cfg.model, local_files_only=True,
                                                              dtype=DTYPES[cfg.dtype]).to(cfg.device).eval()
        except (OSError, ValueError, RuntimeError) as err:
            raise BackendError(f"backend.model: cannot load {cfg.model!r}: {str(err).splitlines()[0]}") from None
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.digit_ids = None

    def resolve_form(self, form: str) -> str:
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        if form == "chat" and not has_template:
            raise BackendError(f"prompts.form: chat, but {self.cfg.model!r} has no chat template; "
                               "allowed here: completion, auto")
        return form if form != "auto" else ("chat" if has_template else "completion")

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
            chunk = requests[start:start + self.cfg.batch]
            ids_B, mask_BxT = self.pad([self.ids(r) for r in chunk])
            out_BxS = self.model.generate(input_ids=ids_B, attention_mask=mask_BxT, max_new_tokens=max_new_tokens,
                                          do_sample=False, pad_token_id=self.tokenizer.pad_token_id)
            texts = self.tokenizer.batch_decode(out_BxS[:, ids_B.shape[1]:], skip_special_tokens=True)
            for i, text in enumerate(texts):
                done(start + i, {"text": text})

    @torch.no_grad()
    def score(self, requests: list[dict], n_R: list[int], done: Done) -> None:
        for r, (request, n) in enumerate(zip(requests, n_R)):
            prompt_ids = self.ids(request)
            lead = " " if request["form"] == "completion" else ""
            cands = [self.answer_ids(request, prompt_ids, f"{lead}{c}") for c in range(n + 1)]
            scores = []
            for start in range(0, len(cands), self.cfg.batch):
                scores += self.loglik(prompt_ids, cands[start:start + self.cfg.batch])
            done(r, {"scores": scores})

    def answer_ids(self, request: dict, prompt_ids: list[int], answer: str) -> list[int]:
        """The answer's tokens as they follow the prompt (joint tokenization where it keeps the prompt's)."""
        full = self.tokenizer(self.render(request) + answer,
                              add_special_tokens=request["form"] == "completion")["input_ids"]
        if full[:len(prompt_ids)] == prompt_ids and len(full) > len(prompt_ids):
            return full[len(prompt_ids):]
        return self.tokenizer(answer, add_special_tokens=False)["input_ids"]

    def loglik(self, prompt_ids: list[int], cands: list[list[int]]) -> list[float]:
        ids_B, mask_BxT = self.pad([prompt_ids + c for c in cands])
        K = max(len(c) for c in cands) + 1
        pos_BxT = (mask_BxT.cumsum(-1) - 1).clamp(min=0)
        try:
            logits_BxKxV = self.model(input_ids=ids_B, attention_mask=mask_BxT, position_ids=pos_BxT,
                                      logits_to_keep=K).logits[:, -K:]
        except TypeError:
            logits_BxKxV = self.model(input_ids=ids_B, attention_mask=mask_BxT, position_ids=pos_BxT).logits[:, -K:]
        logp_BxKxV = torch.log_softmax(logits_BxKxV.float(), dim=-1)
        p_digit_B = logp_BxKxV[:, -1, self.digit_start_ids()].exp().sum(-1).clamp(max=1 - 1e-6)
        out = []
        for b, c in enumerate(cands):
            L = len(c)
            steps = logp_BxKxV[b, K - 1 - L:K - 1]  # the logits that predict each answer token
            out.append(float(steps.gather(-1, torch.tensor(c, device=steps.device)[:, None]).sum()
                             + torch.log1p(-p_digit_B[b])))
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
