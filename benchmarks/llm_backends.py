"""Prompts per second of the llamacpp backend against the hf backend, on the same model and
the same prompts, with load times apart; and how often their greedy answers agree.

    python benchmarks/llm_backends.py                    # 40 prompts, chat form, 1 and 2 threads
    python benchmarks/llm_backends.py --prompts 40 --threads 1 --hf-batch 8
    python benchmarks/llm_backends.py --agreement --threads 1    # llamacpp on every committed prompt

speed       Both backends load the packaged model (SmolLM2-135M-Instruct, Q4_1: llama.cpp
            reads it as it is, hf dequantises it to float32, from the file each time: no kept
            copy, COUNTING_LLM_CACHE=off) once per thread count, answer one
            prompt untimed (warm-up), then the same N prompts: the committed probe's
            (results/llm_qc_smollm2/prompts.jsonl), taken in turn from its 8 cells; greedy, the
            probe's 16 new tokens, cut at the first line break. hf answers `--hf-batch` prompts
            per forward pass (left-padded; 8 is its default), llama.cpp one at a time. Beside
            the rates: on how many of the N prompts the two replies, and the integers parsed
            from them, are the same.
agreement   llamacpp alone on every committed prompt of the probe (generate: 400 chat + 400
            completion; loglik: 240 + 240), against hf's committed answers: how many parsed
            answers (and raw replies, and loglik best answers) are the same, and the prompts
            that differ, with both replies.

Writes <out>/bench.csv (speed; one row per backend, thread count and batch, with the CPU
model, the load average at the start, the date and the command) or <out>/agreement.csv and
<out>/differences.jsonl, and prints them. Needs the llm and llamacpp extras and the model's
package (python -m counting.llm.models install smollm2-135m).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import shlex
import sys
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "results" / "llm_qc_smollm2"
MAX_NEW_TOKENS = 16  # the probe's (experiments/llm_qc_smollm2.yaml)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def probe_prompts() -> list[dict]:
    return [json.loads(line) for line in (PROBE / "prompts.jsonl").read_text().splitlines() if line.strip()]


def in_turn(rows: list[dict], k: int) -> list[dict]:
    """k prompts taken in turn from the cells (sample 0 of every cell, then sample 1, ...)."""
    cells: dict[tuple, list[dict]] = {}
    for r in rows:
        cells.setdefault((r["m"], r["n"]), []).append(r)
    out, i = [], 0
    while len(out) < k and any(i < len(c) for c in cells.values()):
        out += [c[i] for c in cells.values() if i < len(c)]
        i += 1
    return out[:k]


def committed_answers(method: str, form: str) -> dict[str, dict]:
    from counting.llm.cache import model_slug

    path = PROBE / "answers" / f"hf-{model_slug('smollm2-135m')}-{method}-{form}.jsonl"
    return {a["id"]: a for a in map(json.loads, path.read_text().splitlines())}


def answer_all(backend, requests: list[dict]) -> tuple[list[str], float]:
    got: dict[int, str] = {}
    began = time.perf_counter()
    backend.generate(requests, MAX_NEW_TOKENS, lambda i, a: got.__setitem__(i, a["text"]))
    return [got[i] for i in range(len(requests))], time.perf_counter() - began


def speed(args) -> list[dict]:
    import torch

    from counting.llm.backends.hf import HFBackend
    from counting.llm.backends.llamacpp import LlamaCppBackend
    from counting.llm.config import HFConfig, LlamaCppConfig
    from counting.llm.parse import parse

    rows = in_turn(probe_prompts(), args.prompts)
    requests = [{"form": args.form, "prompt": r["prompt"], "reasoning": False} for r in rows]
    warm = [{"form": args.form, "prompt": probe_prompts()[-1]["prompt"], "reasoning": False}]
    common = {"model": args.model, "form": args.form, "prompts": len(requests), "max_new_tokens": MAX_NEW_TOKENS,
              "cpu": cpu_model(), "cores": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2),
              "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
              "command": " ".join(["python", *map(shlex.quote, sys.argv)])}
    out, replies = [], {}
    for threads in args.threads:
        began = time.perf_counter()
        lc = LlamaCppBackend(LlamaCppConfig(model=args.model, threads=threads))
        load = time.perf_counter() - began
        answer_all(lc, warm)
        texts, seconds = answer_all(lc, requests)
        replies[("llamacpp", threads)] = texts
        out.append({"backend": "llamacpp", "threads": threads, "batch": 1, "load_s": load, "answer_s": seconds,
                    "quantisation": lc.weights["quantisation"], "version": f"llama-cpp-python {version('llama-cpp-python')}"})
        del lc
    os.environ["COUNTING_LLM_CACHE"] = "off"  # hf reads the GGUF file every time, as llama.cpp does (benchmarks/llm_load.py: the kept copy)
    for threads in args.threads:
        began = time.perf_counter()
        hf = HFBackend(HFConfig(model=args.model, threads=threads, batch=max(args.hf_batch)))
        load = time.perf_counter() - began
        for batch in args.hf_batch:
            hf.cfg = HFConfig(model=args.model, threads=threads, batch=batch)
            torch.set_num_threads(threads)
            answer_all(hf, warm)
            texts, seconds = answer_all(hf, requests)
            replies[("hf", threads, batch)] = texts
            out.append({"backend": "hf", "threads": threads, "batch": batch, "load_s": load, "answer_s": seconds,
                        "quantisation": hf.weights["quantisation"],
                        "version": f"torch {torch.__version__}, transformers {version('transformers')}"})
        del hf
    reference = replies[("hf", args.threads[0], args.hf_batch[-1])]  # hf as the probe ran it
    for r in out:
        texts = replies[(r["backend"], r["threads"]) if r["backend"] == "llamacpp" else ("hf", r["threads"], r["batch"])]
        r["prompts_per_s"] = len(requests) / r["answer_s"]
        r["s_per_prompt"] = r["answer_s"] / len(requests)
        r["parsed_same_as_hf"] = sum(parse(a)[0] == parse(b)[0] for a, b in zip(texts, reference))
        r["replies_same_as_hf"] = sum(a.strip() == b.strip() for a, b in zip(texts, reference))
        for key in ("load_s", "answer_s", "prompts_per_s", "s_per_prompt"):
            r[key] = round(r[key], 4)
    rows = [{**common, **r} for r in out]
    write(Path(args.out) / "bench.csv", rows)
    for r in rows:
        print(f"{r['backend']:9s} threads={r['threads']} batch={r['batch']}: load {r['load_s']:.2f} s, "
              f"{r['prompts_per_s']:.2f} prompts/s ({r['s_per_prompt']:.3f} s a prompt), "
              f"parsed answers as hf's {r['parsed_same_as_hf']}/{r['prompts']}, replies {r['replies_same_as_hf']}/{r['prompts']}")
    return rows


def agreement(args) -> list[dict]:
    from counting.llm.backends.llamacpp import LlamaCppBackend
    from counting.llm.config import LlamaCppConfig
    from counting.llm.parse import parse

    prompts = {r["id"]: r for r in probe_prompts()}
    lc = LlamaCppBackend(LlamaCppConfig(model=args.model, threads=args.threads[0]))
    rows, differences = [], []
    for method in args.methods:
        for form in ("chat", "completion"):
            hf = committed_answers(method, form)
            ids = [i for i in prompts if i in hf]
            requests = [{"form": form, "prompt": prompts[i]["prompt"], "reasoning": False} for i in ids]
            got: dict[int, dict] = {}
            began = time.perf_counter()
            if method == "generate":
                lc.generate(requests, MAX_NEW_TOKENS, lambda i, a: got.__setitem__(i, a))
            else:
                lc.score(requests, [prompts[i]["n"] for i in ids], lambda i, a: got.__setitem__(i, a))
            seconds = time.perf_counter() - began
            same_reply = same = tokens = 0
            gaps = []
            for j, i in enumerate(ids):
                h = hf[i]
                tokens += len(lc.ids(requests[j])) == h["prompt_tokens"]
                if method == "generate":
                    mine, reply = parse(got[j]["text"])[0], got[j]["text"]
                    same_reply += reply.strip() == (h["reply"] or "").strip()
                else:
                    scores = got[j]["scores"]
                    mine = max(range(len(scores)), key=scores.__getitem__)
                    reply = [[c, round(scores[c], 3)] for c in sorted(range(len(scores)), key=lambda c: -scores[c])[:3]]
                    same_reply += [c for c, _ in reply] == [c for c, _ in h["best"]]
                    gaps += [abs(scores[c] - s) for c, s in h["best"]]
                same += mine == h["predicted"]
                if mine != h["predicted"]:
                    differences.append({"method": method, "form": form, "id": i, "answer": h["answer"],
                                        "hf": h["predicted"], "hf_reply": h["reply"] if method == "generate" else h["best"],
                                        "llamacpp": mine, "llamacpp_reply": reply})
            row = {"method": method, "form": form, "prompts": len(ids), "parsed_same": same,
                   "parsed_same_share": round(same / len(ids), 4), "replies_same": same_reply,
                   "prompt_tokens_same": tokens, "answer_s": round(seconds, 2),
                   "s_per_prompt": round(seconds / len(ids), 4),
                   "max_abs_score_gap": round(max(gaps), 4) if gaps else "",
                   "mean_abs_score_gap": round(sum(gaps) / len(gaps), 4) if gaps else "",
                   "threads": args.threads[0], "cpu": cpu_model(), "load_avg_1min": round(os.getloadavg()[0], 2),
                   "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                   "command": " ".join(["python", *map(shlex.quote, sys.argv)])}
            rows.append(row)
            print(f"{method} {form}: parsed answers as hf's {same}/{len(ids)}, "
                  f"{'replies' if method == 'generate' else 'top-3 rankings'} {same_reply}/{len(ids)}, "
                  f"prompt token counts {tokens}/{len(ids)}, {seconds / len(ids):.3f} s a prompt"
                  + (f", score gap (hf's top 3) max {row['max_abs_score_gap']} mean {row['mean_abs_score_gap']}"
                     if gaps else ""), flush=True)
    # the methods measured now replace their rows; those of other methods (an earlier run) stay
    table, path = Path(args.out) / "agreement.csv", Path(args.out) / "differences.jsonl"
    if table.exists():
        with table.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["method"] not in args.methods] + rows
        differences = [d for d in map(json.loads, path.read_text().splitlines())
                       if d["method"] not in args.methods] + differences if path.exists() else differences
    order = {"generate": 0, "loglik": 1}
    rows.sort(key=lambda r: (order[r["method"]], r["form"]))
    write(table, rows)
    differences.sort(key=lambda d: (order[d["method"]], d["form"], d["id"]))
    path.write_text("".join(json.dumps(d, sort_keys=True) + "\n" for d in differences))
    print(f"{len(differences)} differences: {path}")
    return rows


def explain(args) -> list[dict]:
    """Where each differing greedy reply (differences.jsonl, generate) first parts from hf's:
    on the context both replies share (the prompt and their common first tokens), each
    backend's log-probabilities of its own next token and of the other's. A near-tie in hf's
    (a small margin) is what 4-bit arithmetic can tip. Beside them, the same margin of hf's
    first reply token on prompts where the two agree (the baseline: how close a tie usually is)."""
    import torch

    from counting.llm.backends.hf import HFBackend
    from counting.llm.backends.llamacpp import LlamaCppBackend
    from counting.llm.config import HFConfig, LlamaCppConfig

    prompts = {r["id"]: r for r in probe_prompts()}
    threads = args.threads[0]
    lc = LlamaCppBackend(LlamaCppConfig(model=args.model, threads=threads))
    hf = HFBackend(HFConfig(model=args.model, threads=threads))

    @torch.no_grad()
    def hf_logp(ids):
        return torch.log_softmax(hf.model(input_ids=torch.tensor([ids])).logits[0, -1].double(), -1).numpy()

    def lc_logp(ids):
        lc.llm.reset()
        lc.llm.eval(ids)
        return lc.logp_now()

    path = Path(args.out) / "differences.jsonl"
    differences = [d for d in map(json.loads, path.read_text().splitlines()) if d["method"] == "generate"]
    rows = []
    for d in differences:
        q = {"form": d["form"], "prompt": prompts[d["id"]]["prompt"], "reasoning": False}
        prompt_ids = lc.ids(q)
        a, b = (lc.answer_ids(q, prompt_ids, t) if t else [] for t in (d["hf_reply"] or "", d["llamacpp_reply"]))
        k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        ctx = prompt_ids + a[:k]
        h, lp = hf_logp(ctx), lc_logp(ctx)
        ht, lt = int(h.argmax()), int(lp.argmax())
        rows.append({"kind": "differs", "form": d["form"], "id": d["id"], "position": k,
                     "hf_token": lc.tokenizer.decode([ht]), "llamacpp_token": lc.tokenizer.decode([lt]),
                     "reproduced": ht != lt, "hf_margin": round(float(h[ht] - h[lt]), 4),
                     "llamacpp_margin": round(float(lp[lt] - lp[ht]), 4),
                     "logp_gap": round(float(abs(lp[ht] - h[ht])), 4)})
    differing = {(d["form"], d["id"]) for d in differences}
    for form in ("chat", "completion"):
        for i in [i for i in prompts if (form, i) not in differing][:args.baseline]:
            ids = lc.ids({"form": form, "prompt": prompts[i]["prompt"], "reasoning": False})
            h, lp = hf_logp(ids), lc_logp(ids)
            second, first = (int(t) for t in h.argsort()[-2:])
            rows.append({"kind": "agrees", "form": form, "id": i, "position": 0,
                         "hf_token": lc.tokenizer.decode([first]), "llamacpp_token": lc.tokenizer.decode([int(lp.argmax())]),
                         "reproduced": first != int(lp.argmax()), "hf_margin": round(float(h[first] - h[second]), 4),
                         "llamacpp_margin": round(float(lp[first] - lp[second]), 4),
                         "logp_gap": round(float(abs(lp[first] - h[first])), 4)})
    write(Path(args.out) / "divergences.csv", rows)
    import statistics

    diff = [r for r in rows if r["kind"] == "differs" and r["reproduced"]]
    base = [r for r in rows if r["kind"] == "agrees"]
    median = lambda rs, k: statistics.median(r[k] for r in rs)
    if diff:
        print(f"{len(diff)}/{sum(r['kind'] == 'differs' for r in rows)} divergences reproduced; hf's margin for its "
              f"token over llama.cpp's there: median {median(diff, 'hf_margin'):.3f}, max "
              f"{max(r['hf_margin'] for r in diff):.3f} nats; llama.cpp's the other way: median "
              f"{median(diff, 'llamacpp_margin'):.3f}; |log p| gap of hf's token: median {median(diff, 'logp_gap'):.3f}")
    if base:
        print(f"where they agree ({len(base)} prompts, first reply token): hf's top-2 margin median "
              f"{median(base, 'hf_margin'):.3f}, min {min(r['hf_margin'] for r in base):.3f} nats; "
              f"|log p| gap of hf's token: median {median(base, 'logp_gap'):.3f}")
    return rows


def write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2-135m", choices=["smollm2-135m"],
                   help="the packaged model (the committed probe's answers are for this one)")
    p.add_argument("--prompts", type=int, default=40)
    p.add_argument("--form", default="chat", choices=["chat", "completion"])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                   help="CPU threads, the same for both backends (--agreement: the first)")
    p.add_argument("--hf-batch", type=int, nargs="+", default=[1, 8],
                   help="hf prompts per forward pass (the last: the reference the agreement is counted against)")
    p.add_argument("--agreement", action="store_true", help="llamacpp on every committed prompt against hf's answers")
    p.add_argument("--explain", action="store_true",
                   help="where the differing greedy replies of --agreement part (hf and llama.cpp log-probabilities)")
    p.add_argument("--baseline", type=int, default=40, help="--explain: agreeing prompts per form for the baseline")
    p.add_argument("--methods", nargs="+", default=["generate", "loglik"], choices=["generate", "loglik"])
    p.add_argument("--out", default=str(ROOT / "results" / "llm_backends"))
    args = p.parse_args(argv)
    (explain if args.explain else agreement if args.agreement else speed)(args)


if __name__ == "__main__":
    main()
