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


def train_ensemble(d: int, n: int, m: int, batch: int, steps: int, models: int, seed: int = 0, warmup: int = 10,
                   compile: bool = False) -> float:
    """Trains `models` models at once as PyTorch users train ensembles (torch.func: the members'
    parameters stacked by `stack_module_state`, one `functional_call` vmapped over them), each
    member on its own fresh batch, with the per-run loop's AdamW, schedule and (per-member)
    global-norm clipping; with `compile`, the vmapped loss and gradient under torch.compile.
    Returns (seconds in the training loop, seconds of a warm-up call of the gradient before it:
    torch.compile's compilation when compiled, as the cohort's compile_s is kept out of its rate)."""
    import copy

    from torch.func import functional_call, grad_and_value, stack_module_state, vmap

    dev = device()
    torch.manual_seed(seed)
    gen = torch.Generator(dev).manual_seed(seed)
    members = [Counter(d, m + 2, n + 2, n + 1).to(dev) for _ in range(models)]
    params, buffers = stack_module_state(members)
    base = copy.deepcopy(members[0]).to("meta")

    def loss_of(p, b, tokens, labels):
        return nn.functional.cross_entropy(functional_call(base, (p, b), (tokens,)), labels)

    step_fn = vmap(grad_and_value(loss_of))  # per member: (grads, loss)
    if compile:
        step_fn = torch.compile(step_fn)
    opt = torch.optim.AdamW(list(params.values()), lr=3e-3, weight_decay=0.01)
    lr = lambda t: (t + 1) / (warmup + 1) if t < warmup else 0.1 + 0.45 * (1 + math.cos(math.pi * (t - warmup) / max(steps - warmup, 1)))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr)
    t_warm = time.perf_counter()
    tokens, labels = sample(batch * models, n, m, torch.Generator(dev).manual_seed(seed + 1))
    step_fn(params, buffers, tokens.view(models, batch, -1), labels.view(models, batch))  # compiles (discarded)
    warm_s = time.perf_counter() - t_warm
    t0 = time.perf_counter()
    for _ in range(steps):
        tokens, labels = sample(batch * models, n, m, gen)
        grads, loss_M = step_fn(params, buffers, tokens.view(models, batch, -1), labels.view(models, batch))
        norm_M = torch.sqrt(sum(g.pow(2).flatten(1).sum(1) for g in grads.values()))
        scale_M = torch.clamp(1.0 / (norm_M + 1e-6), max=1.0)  # clip_grad_norm_(1.0), member by member
        for name, p in params.items():
            p.grad = grads[name] * scale_M.view(-1, *([1] * (p.dim() - 1)))
        opt.step()
        sched.step()
    if not math.isfinite(loss_M.sum().item()):
        raise FloatingPointError("torch ensemble diverged")
    return time.perf_counter() - t0, warm_s
