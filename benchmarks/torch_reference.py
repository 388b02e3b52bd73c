"""An idiomatic PyTorch eager per-run loop of the benchmark model, as a speed reference.

Same model as counting.models.transformer with L = 1, H = 1, learned positions, pre-LN and a head over
the n + 1 count classes; the same balanced Query Count sampler (answer drawn first, fresh
batch every step); AdamW with warmup and cosine decay and global-norm clipping. As a PyTorch
user would write it, the whole sequence runs through the block and the head reads the last
position. Runs on the GPU when torch sees one, else on the CPU.
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, d: int, w: int):
        super().__init__()
        self.ln_attn, self.ln_mlp = nn.LayerNorm(d), nn.LayerNorm(d)
        self.query, self.key, self.value, self.out = (nn.Linear(d, d, bias=False) for _ in range(4))
        self.mlp = nn.Sequential(nn.Linear(d, w), nn.ReLU(), nn.Linear(w, d))

    def forward(self, x):
        h = self.ln_attn(x)
        att = torch.softmax(self.query(h) @ self.key(h).transpose(1, 2) / math.sqrt(h.shape[-1]), dim=-1)
        x = x + self.out(att @ self.value(h))
        return x + self.mlp(self.ln_mlp(x))


class Counter(nn.Module):
    def __init__(self, d: int, vocab: int, length: int, classes: int):
        super().__init__()
        self.embed, self.pos = nn.Embedding(vocab, d), nn.Embedding(length, d)
        self.block, self.ln_f, self.head = Block(d, 4 * d), nn.LayerNorm(d), nn.Linear(d, classes)

    def forward(self, tokens):
        x = self.embed(tokens) + self.pos.weight[: tokens.shape[1]]
        return self.head(self.ln_f(self.block(x)))[:, -1]


def device() -> str:
    """The GPU when there is one (the GPU target compares on the same card), else the CPU."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def sample(batch: int, n: int, m: int, gen: torch.Generator):
    """Balanced QC: count c ~ U{1..n}, c copies of q at random positions, other tokens != q."""
    dev = gen.device
    c = torch.randint(1, n + 1, (batch, 1), generator=gen, device=dev)
    q = torch.randint(0, m, (batch, 1), generator=gen, device=dev)
    others = (q + 1 + torch.randint(0, m - 1, (batch, n), generator=gen, device=dev)) % m
    ranks = torch.rand(batch, n, generator=gen, device=dev).argsort(-1).argsort(-1)
    x = torch.where(ranks < c, q, others)
    bos = torch.zeros(batch, 1, dtype=torch.long, device=dev)
    return torch.cat([bos, x + 2, q + 2], dim=1), c[:, 0]


def train_one(d: int, n: int, m: int, batch: int, steps: int, seed: int, warmup: int = 10) -> float:
    """Trains one model; returns the seconds spent in the training loop."""
    torch.manual_seed(seed)
    gen = torch.Generator(device()).manual_seed(seed)
    model = Counter(d, m + 2, n + 2, n + 1).to(device())
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    lr = lambda t: (t + 1) / (warmup + 1) if t < warmup else 0.1 + 0.45 * (1 + math.cos(math.pi * (t - warmup) / max(steps - warmup, 1)))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr)
    t0 = time.perf_counter()
    for _ in range(steps):
        tokens, labels = sample(batch, n, m, gen)
        loss = nn.functional.cross_entropy(model(tokens), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    if not math.isfinite(loss.item()):  # .item() waits for the device
        raise FloatingPointError("torch reference diverged")
    return time.perf_counter() - t0
