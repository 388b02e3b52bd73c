"""Every table of `counting-theory`, as a list of rows (dicts) from the settings, plus the
growth-exponent fits drawn from them and a CSV writer."""

from __future__ import annotations

import math

import numpy as np

from counting.analysis.scaling import loglog_fit, semilog_fit
from counting.config import TaskConfig
from counting.theory import coherence as coh
from counting.theory import cost, interference, positional, precision, sequences
from counting.theory.histogram import histogram_solution
from counting.theory.registry import Spec, registry
from counting.theory.settings import Settings
from counting.theory.weights import forward, max_abs_weight


def extra_specs() -> dict[str, Spec]:
    """Layouts the constructions table checks beside the registry's: d > m, and QC with a
    separator and no BOS."""
    return {
        "histogram_qc_d8": Spec(lambda n: histogram_solution(TaskConfig("qc", m=4, n=n), d=8), 2**22),
        "histogram_qc_sep_nobos": Spec(
            lambda n: histogram_solution(TaskConfig("qc", m=4, n=n, bos=False, query="sep")), 2**22),
    }


def constructions_table(s: Settings) -> list[dict]:
    """Each construction at each n: exact (float32 argmax) on every family of sequences (one
    forward over all families together)."""
    rows = []
    specs = {**registry(), **extra_specs()}
    for name in s.construction_names or list(specs):
        spec = specs[name]
        for n in s.exact_ns:
            c = spec.build(n)
            families = {"adversarial": spec.adversarial(c.task), "uniform": sequences.uniform(c.task, 64),
                        "balanced": sequences.balanced(c.task, 64)}
            if n <= s.sampler_up_to:
                families["sampler"] = sequences.from_sampler(c.task, 64)
            x, logits = forward(c.model, sequences.concat(list(families.values())).tokens_BxT, c.answer_positions)
            row = {"construction": name, "task": c.task.name, "m": c.task.m, "n": n, "d": c.model.cfg.d,
                   "L": c.model.cfg.L, "w": c.model.cfg.w}
            start, worst = 0, 0.0
            for family, seqs in families.items():
                part = slice(start, start + len(seqs.tokens_BxT))
                start = part.stop
                row[f"exact_{family}"] = bool(np.all(logits[part].argmax(-1) == seqs.labels_BxA))
                worst = max(worst, float(np.abs(c.readout(x[part]) - seqs.labels_BxA).max()))
            row["sequences"] = start
            row["max_readout_error"] = worst
            row.update({f"max_{k}": v for k, v in max_abs_weight(c.model).items()})
            rows.append(row)
    return rows


def positional_table(s: Settings) -> list[dict]:
    """The permutation-invariance check (positional.repeat_table) over s.positional_models random models: the
    logit gap between a sequence and its rearrangement, then the controls that break invariance."""
    return positional.repeat_table(s.positional_models, seed=0)


def width_table(s: Settings) -> list[dict]:
    """The CountAttend widths at each n of s.width_ns (cost.width_rows), with each variant's exactness, beta_min
    and largest weights up to s.verify_n."""
    return cost.width_rows(list(s.width_ns), s.verify_n)


def precision_table(s: Settings) -> list[dict]:
    """The largest exact n of each construction of s.precision_names in each dtype of s.precision_caps
    (precision.search, up to its cap)."""
    specs = registry()
    rows = []
    for name in s.precision_names:
        for dtype, cap in s.precision_caps:
            result = precision.search(specs[name], dtype, min(cap, specs[name].cap))
            rows.append({"construction": name, "dtype": dtype, **result})
    return rows


def coherence_table(s: Settings) -> list[dict]:
    """Welch and orthoplex bounds, random and optimised coherence over (d, m = ratio d);
    then the two known tight frames."""
    rows = []
    pairs = dict.fromkeys((d, max(d + 1, round(ratio * d))) for d in s.coherence_ds for ratio in s.coherence_ratios)
    for d, m in pairs:
        rand = [coh.coherence(coh.random_unit(m, d, seed)) for seed in range(s.coherence_seeds)]
        opt = coh.coherence(coh.optimised(m, d, seed=0, steps=s.coherence_steps))
        rows.append(_coherence_row("grid", d, m, opt, rand))
    rows.append(_coherence_row("simplex", 3, 4, coh.coherence(coh.simplex_frame(3)), []))
    rows.append(_coherence_row("icosahedron", 3, 6, coh.coherence(coh.icosahedron_lines()), []))
    return rows


def _coherence_row(kind: str, d: int, m: int, opt: float, rand: list[float]) -> dict:
    bound = coh.lower_bound(m, d)
    return {"kind": kind, "d": d, "m": m, "m_over_d": m / d, "welch": coh.welch_bound(m, d),
            "orthoplex": coh.orthoplex_bound(m, d), "bound": bound, "optimised": opt,
            "optimised_over_bound": opt / bound, "random_mean": float(np.mean(rand)) if rand else math.nan,
            "random_min": float(np.min(rand)) if rand else math.nan}


def embeddings(d: int, m: int, steps: int) -> dict[str, np.ndarray]:
    """Optimised and random unit embeddings of m tokens in d dimensions (seed 0), by name."""
    return {"optimised": coh.optimised(m, d, seed=0, steps=steps), "random": coh.random_unit(m, d, seed=0)}


def readouts_table(s: Settings) -> list[dict]:
    """The largest n the projection and the best linear readout of the uniform-attention
    residual count exactly, for optimised and random embeddings."""
    rows = []
    for d, m in s.readout_pairs:
        for kind, E in embeddings(d, m, s.coherence_steps).items():
            rows.append({"d": d, "m": m, "m_over_d": m / d, "embedding": kind, "mu": coh.coherence(E),
                         "welch": coh.welch_bound(m, d), "n_max_projection": interference.projection_n_max(E),
                         "n_max_linear": interference.linear_n_max(E)})
    return rows


def margin_table(s: Settings) -> list[dict]:
    """The margin delta(n) and the Lipschitz scale a readout needs (interference.margin_rows) of optimised and
    random embeddings, for each (d, m) of s.margin_cases at n = 2, 4, ... up to its largest n."""
    rows = []
    for d, m, n_top in s.margin_cases:
        ns = [n for n in (2**k for k in range(1, 21)) if n <= n_top]
        named = {f"{kind}": E for kind, E in embeddings(d, m, s.coherence_steps).items()}
        rows += interference.margin_rows(named, {m: ns})
    return rows


def coherent_table(s: Settings) -> list[dict]:
    """beta_min of the head variant with m token directions in d - 2 dimensions against n, beside the leak bound
    (cost.coherent_rows), over the s.coherent_* grid."""
    return cost.coherent_rows(list(s.coherent_ds), list(s.coherent_ms), list(s.coherent_ns))


def fits_table(width: list[dict], margin: list[dict], coherent: list[dict]) -> list[dict]:
    """Growth exponents: CountAttend widths, beta_min and weights against n; the Lipschitz
    scale a readout needs against n per (d, m, embedding), beside the pigeonhole exponent
    max(1, (m - 1)/d) it must reach asymptotically; beta_min against ln n, beside
    1 / (1 - mu+)."""
    rows = []
    ns = [r["n"] for r in width]
    for key, predicted in (("w_interp", 1.0), ("w_min", 0.5), ("w_quarter", 0.5)):
        rows.append(_fit("count_attend_width", key, ns, [r[key] for r in width], predicted))
    verified = [r for r in width if "beta_min_head" in r]
    vn = [r["n"] for r in verified]
    for inverse in ("interp", "head"):
        slope, _ = semilog_fit(vn, [r[f"beta_min_{inverse}"] for r in verified])
        rows.append({"quantity": "count_attend_beta_min", "setting": inverse, "fit": "beta = s ln n + b",
                     "exponent": slope, "predicted": 1.0, "n_from": min(vn), "n_to": max(vn), "points": len(vn)})
        for part in ("mlp", "head"):
            rows.append(_fit("count_attend_max_weight", f"{part}_{inverse}", vn,
                             [r[f"max_{part}_{inverse}"] for r in verified], math.nan))
    for (d, m, kind) in sorted({(r["d"], r["m"], r["embedding"]) for r in margin}):
        sel = [r for r in margin if (r["d"], r["m"], r["embedding"]) == (d, m, kind) and r["n"] >= 8]
        rows.append(_fit("lipschitz_needed", f"d={d} m={m} {kind}", [r["n"] for r in sel],
                         [r["lipschitz_needed"] for r in sel], max(1.0, (m - 1) / d)))
    for (d, m) in sorted({(r["d"], r["m"]) for r in coherent}):
        sel = [r for r in coherent if (r["d"], r["m"]) == (d, m)]
        sn = [r["n"] for r in sel]
        slope, _ = semilog_fit(sn, [r["beta_min"] for r in sel])
        rows.append({"quantity": "count_attend_beta_min_coherent", "setting": f"d={d} m={m}",
                     "fit": "beta = s ln n + b", "exponent": slope, "predicted": 1.0 / (1.0 - max(sel[0]["mu_plus"], 0.0)),
                     "n_from": min(sn), "n_to": max(sn), "points": len(sn)})
    return rows


def _fit(quantity: str, setting: str, x, y, predicted: float) -> dict:
    p, _ = loglog_fit(x, y)
    return {"quantity": quantity, "setting": setting, "fit": "log-log", "exponent": p, "predicted": predicted,
            "n_from": min(x), "n_to": max(x), "points": len(x)}
