"""Interventions on the counting layer (`anatomy`): change what the mechanism says carries the
count, and see whether the prediction moves the way the mechanism says it must.

A *site* is one held-out sequence with the token t whose count c the answer reports, the
answer position read, and the positions where the counting layer's output is changed:

- QC: the query position (t = the query token);
- histogram task: the last position holding t, the token of a random content position
  (a causal mask then hides none of t's copies from it);
- MFE: every position holding the most frequent token t (sequences with a unique most
  frequent token only), the answer (last) position added for the histogram test.

`matches` at a position p are the positions holding t that p may attend to (p itself
included); M their number. Two tests, each with a null control:

- **CountAttend test**: for a target c' (drawn from the task's counts, != c and != the
  unchanged prediction), the counting head's mass on BOS and on the matches at the
  intervened positions (S, their sum) is split again as the CountAttend law has it for
  M' = M + c' - c matches: BOS gets S K / (M' + K), every actual match S M' / (M (M' + K));
  the other keys keep their weights (the law says nothing of them; the construction puts
  none there). K is the model's own ratio of the weight on BOS to the mean weight on one
  match at the intervened positions (median over the sites; 1 in the construction, where
  BOS and the matches share one logit, and 1 under uniform attention too). Success: the
  prediction becomes c'. A histogram reads the matches' share of all the mass, which the
  re-split moves only by the BOS share, so it fails. Needs a BOS token and a finite K > 0;
  otherwise the rates are empty and `causal_note` says why.
- **Histogram test**: one occurrence's worth of t is added (or removed) at the intervened
  positions: in every head, the mean weight a match gets times the mean value of the
  matches. Success: the prediction moves from its unchanged value by exactly +1 (or -1);
  targets outside the task's counts are skipped.
- **Null control** of each: the same change in size (the norm of the change to the
  attention output at every intervened position) along a random direction, one per pair,
  with the same success rule. A rate reads against its control.

Rates are shares of (site, target) pairs, over the first INTERVENTION_SEQUENCES held-out
sequences; TARGETS targets c' per site; pairs and directions from a fixed seed.

One sequence edited by hand (the debugger page, counting.serve): `edit_attention` runs a model
with the counting layer's attention weights changed by a given datt through `changed`, the
path the tests above take (`reweight_keys`: scale or remove the weight on some keys, BOS's;
`set_key_share`: give them a set share of each row); `scale_logits` and `mix_embeddings`
return edited parameters (every query-key logit scaled; one token's embedding moved toward
another's).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from counting.inspect.anatomy import anatomy
from counting.models.behrens import BehrensModel
from counting.models.transformer import Transformer
from counting.tasks import Task

INTERVENTION_SEQUENCES = 128
TARGETS = 8  # targets c' per site in the CountAttend test
CHUNK = 256  # pairs per compiled call (the last chunk padded: one program per model shape)
SEED = 0
COLUMNS = ("causal_count_attend", "causal_count_attend_control", "causal_histogram", "causal_histogram_control",
           "causal_K", "causal_pairs_count_attend", "causal_pairs_histogram", "causal_note")


@dataclasses.dataclass(frozen=True)
class Sites:
    """The sites of an intervention test: per site its sequence, the positions whose counting-layer output
    changes, the token whose count c is changed, c itself, and the answer read."""

    seq_S: np.ndarray  # the sequence of each site
    at_SxT: np.ndarray  # bool: the positions whose counting-layer output changes
    token_S: np.ndarray  # the token whose count is changed (its id)
    c_S: np.ndarray  # its count (the label read)
    r_S: np.ndarray  # the answer read: an index into task.answer_positions



@functools.partial(jax.jit, static_argnums=(0, 3))
def _base(graphdef, state, tokens_BxT, at_R: tuple[int, ...]):
    model = nnx.merge(graphdef, state)
    parts = anatomy(model)
    x_BxTxD, att_BxHxTxT, v_BxTxHxK = parts.layer0(model, tokens_BxT)
    y_BxTxD = parts.mix(model, att_BxHxTxT, v_BxTxHxK)
    return x_BxTxD, att_BxHxTxT, v_BxTxHxK, y_BxTxD, parts.finish(model, x_BxTxD, y_BxTxD, at_R)


def changed(model, x_NxTxD, y_NxTxD, v_NxTxHxK, datt_NxHxTxT, at_R: tuple[int, ...]):
    """(logits_NxRxC, dy_NxTxD): the rest of the forward pass from the counting layer's
    attention output on, with its attention weights changed by datt (dy: what the change adds
    to that output). The one path of every attention intervention: the causal tests here and
    the hand-made edits of `edit_attention` (counting-inspect --serve)."""
    parts = anatomy(model)
    dy_NxTxD = parts.mix(model, datt_NxHxTxT, v_NxTxHxK)
    return parts.finish(model, x_NxTxD, y_NxTxD + dy_NxTxD, at_R), dy_NxTxD


@functools.partial(jax.jit, static_argnums=(0, 7))
def _changed(graphdef, state, x_NxTxD, y_NxTxD, v_NxTxHxK, datt_NxHxTxT, u_NxD, at_R: tuple[int, ...]):
    """Logits with the attention weights changed by datt, and with the same-size change
    along the random unit direction u (the null control)."""
    model = nnx.merge(graphdef, state)
    parts = anatomy(model)
    logits_NxRxC, dy_NxTxD = changed(model, x_NxTxD, y_NxTxD, v_NxTxHxK, datt_NxHxTxT, at_R)
    size_NxTx1 = jnp.linalg.norm(dy_NxTxD, axis=-1, keepdims=True)
    rand_NxTxD = size_NxTx1 * u_NxD[:, None, :]
    return logits_NxRxC, parts.finish(model, x_NxTxD, y_NxTxD + rand_NxTxD, at_R)


@dataclasses.dataclass(frozen=True)
class Pairs:
    """The (site, target) pairs of a test: the site of each, its change datt of the attention weights, and the
    prediction that counts as success."""

    site_N: np.ndarray  # the site of each pair
    datt_NxHxTxT: np.ndarray  # the change of the attention weights (queries x keys)
    target_N: np.ndarray  # the prediction that counts as success


def count_attend_pairs(sites: Sites, match_SxTxT: np.ndarray, att_SxHxTxT: np.ndarray, pred_S: np.ndarray,
                       counts: np.ndarray, head: int, K: float, bos: int, rng) -> Pairs:
    """The CountAttend test's pairs: up to TARGETS targets c' per site (!= c and != the unchanged prediction),
    each re-splitting the head's mass on BOS and the matches at the intervened positions as the CountAttend law
    has it for M' = M + c' - c matches with the ratio K."""
    S, H, T, _ = att_SxHxTxT.shape
    site, target = [], []
    for s in range(S):
        options = counts[(counts != sites.c_S[s]) & (counts != pred_S[s])]
        chosen = rng.choice(options, size=min(TARGETS, len(options)), replace=False)
        site += [s] * len(chosen)
        target += list(chosen)
    site_N, target_N = np.array(site, int), np.array(target, int)
    n_I, p_I = np.nonzero(sites.at_SxT[site_N])  # the intervened (pair, position) rows
    s_I = site_N[n_I]
    match_IxT, att_IxT = match_SxTxT[s_I, p_I], att_SxHxTxT[s_I, head, p_I]
    M_I = match_IxT.sum(-1).astype(np.float64)  # the matches the position sees
    Mp_I = np.maximum(M_I + target_N[n_I] - sites.c_S[s_I], 1.0)
    held_I = att_IxT[:, bos] + (att_IxT * match_IxT).sum(-1)  # BOS + matches: re-split by the law
    law_IxT = np.where(match_IxT, (held_I * Mp_I / (np.maximum(M_I, 1.0) * (Mp_I + K)))[:, None], att_IxT)
    law_IxT[:, bos] = held_I * K / (Mp_I + K)
    datt_NxHxTxT = np.zeros((len(site_N), H, T, T), np.float32)
    datt_NxHxTxT[n_I, head, p_I] = law_IxT - att_IxT
    return Pairs(site_N, datt_NxHxTxT, target_N)


def histogram_pairs(sites: Sites, match_SxTxT: np.ndarray, att_SxHxTxT: np.ndarray, pred_S: np.ndarray,
                    counts: np.ndarray, answer_S: np.ndarray) -> Pairs:
    """The histogram test's pairs: per site, one occurrence's worth of the token's matches added (+1) and
    removed (-1) at the intervened positions (and the answer position `answer_S`) in every head, where the
    unchanged prediction moved by that step stays within the task's counts."""
    S = att_SxHxTxT.shape[0]
    at_SxT = sites.at_SxT.copy()
    at_SxT[np.arange(S), answer_S] = True  # MFE: the answer position too
    M_SxTx1 = np.maximum(match_SxTxT.sum(-1, keepdims=True), 1)
    per_match_SxHxT = (att_SxHxTxT * match_SxTxT[:, None]).sum(-1) / M_SxTx1[:, None, :, 0]
    one_SxHxTxT = per_match_SxHxT[..., None] * (match_SxTxT / M_SxTx1)[:, None]
    one_SxHxTxT = np.where(at_SxT[:, None, :, None], one_SxHxTxT, 0.0)
    lo, hi = counts.min(), counts.max()
    site, sign = [], []
    for s in range(S):
        for step in (1, -1):
            if lo <= pred_S[s] + step <= hi:
                site.append(s)
                sign.append(step)
    site_N, sign_N = np.array(site, int), np.array(sign, int)
    datt = (sign_N[:, None, None, None] * one_SxHxTxT[site_N]).astype(np.float32)
    return Pairs(site_N, datt, pred_S[site_N] + sign_N)


def run_pairs(graphdef, state, pairs: Pairs, seq_S, pieces, r_S, at_R, one_layer: bool, rng) -> tuple[float, float]:
    """(success rate, control's success rate) over the pairs. With one layer the answer at
    position r depends on row r alone: only that row is run (the same numbers, less work)."""
    x_BxTxD, v_BxTxHxK, y_BxTxD = pieces
    N = len(pairs.site_N)
    if N == 0:
        return float("nan"), float("nan")
    D = x_BxTxD.shape[-1]
    u_NxD = rng.normal(size=(N, D))
    u_NxD = (u_NxD / np.linalg.norm(u_NxD, axis=1, keepdims=True)).astype(np.float32)
    hit, hit_rand = [], []
    for start in range(0, N, CHUNK):
        idx = np.arange(start, min(start + CHUNK, N))
        idx_C = np.concatenate([idx, np.repeat(idx[:1], CHUNK - len(idx))])
        b_C, r_C = seq_S[pairs.site_N[idx_C]], r_S[pairs.site_N[idx_C]]
        if one_layer:
            p_C = np.asarray(at_R)[r_C]
            args = (x_BxTxD[b_C, p_C][:, None], y_BxTxD[b_C, p_C][:, None], v_BxTxHxK[b_C],
                    pairs.datt_NxHxTxT[idx_C, :, p_C][:, :, None], u_NxD[idx_C], (0,))
            read_C = np.zeros(CHUNK, int)
        else:
            args = (x_BxTxD[b_C], y_BxTxD[b_C], v_BxTxHxK[b_C], pairs.datt_NxHxTxT[idx_C], u_NxD[idx_C], at_R)
            read_C = r_C
        out, rand = _changed(graphdef, state, *args)
        hit.append(np.asarray(out)[np.arange(CHUNK), read_C].argmax(-1)[: len(idx)] == pairs.target_N[idx])
        hit_rand.append(np.asarray(rand)[np.arange(CHUNK), read_C].argmax(-1)[: len(idx)] == pairs.target_N[idx])
    return float(np.concatenate(hit).mean()), float(np.concatenate(hit_rand).mean())


def bos_to_match(sites: Sites, match_SxTxT: np.ndarray, att_SxTxT: np.ndarray, bos: int) -> float:
    """K: the median over sites of the counting head's weight on BOS over its mean weight on
    one match, at the intervened positions."""
    M_SxT = match_SxTxT.sum(-1)
    per_match_SxT = (att_SxTxT * match_SxTxT).sum(-1) / np.maximum(M_SxT, 1)
    ok_SxT = sites.at_SxT & (per_match_SxT != 0) & (M_SxT > 0)
    ratio = att_SxTxT[:, :, bos][ok_SxT] / per_match_SxT[ok_SxT]
    return float(np.median(ratio)) if len(ratio) else float("nan")


def count_attend_applies(task: Task, K: float) -> str:
    """'' when the CountAttend test applies, else why not."""
    if not task.cfg.bos:
        return "count_attend: no BOS token"
    if not (math.isfinite(K) and K > 0):
        return f"count_attend: no positive BOS-to-match weight ratio (K = {K:.3g})"
    return ""


def interventions(graphdef, state, task: Task, batch, head: int = 0,
                  sequences: int = INTERVENTION_SEQUENCES) -> dict:
    """The intervention columns of one model (graphdef, state) on the first `sequences` of
    `batch` (the task's held-out set); head = the counting head (`att_head`)."""
    rng = np.random.default_rng(SEED)
    at_R = task.answer_positions
    r_R = np.asarray(at_R)
    B = min(sequences, batch.tokens_BxT.shape[0])
    tokens_BxT = np.asarray(batch.tokens_BxT[:B])
    labels_BxR = np.asarray(batch.labels_BxT[:B])[:, r_R]
    mask_all = np.asarray(batch.mask_BxT)[:, r_R]
    counts = np.unique(np.asarray(batch.labels_BxT)[:, r_R][mask_all])
    x, att, v, y, logits = (np.asarray(a) for a in _base(graphdef, state, jnp.asarray(tokens_BxT), at_R))
    sites = Sites(*task.intervention_sites(tokens_BxT, labels_BxR, rng))  # the task's own sites
    S, T = len(sites.seq_S), tokens_BxT.shape[1]
    pred_S = logits[sites.seq_S, sites.r_S].argmax(-1)
    cfg = nnx.merge(graphdef, state).cfg
    causal, one_layer = bool(cfg.causal), cfg.L == 1
    allowed_TxT = np.tril(np.ones((T, T), bool)) if causal else np.ones((T, T), bool)
    holds_SxT = tokens_BxT[sites.seq_S] == sites.token_S[:, None]
    match_SxTxT = holds_SxT[:, None, :] & allowed_TxT[None]
    att_S = att[sites.seq_S].astype(np.float64)
    pieces = (x, v, y)
    out = {c: float("nan") for c in COLUMNS[:4]}
    out.update({"causal_K": float("nan"), "causal_pairs_count_attend": 0, "causal_pairs_histogram": 0,
                "causal_note": ""})
    if S == 0:
        out["causal_note"] = "no sites (no sequence with a unique most frequent token)"
        return out
    K = bos_to_match(sites, match_SxTxT, att_S[:, head], 0) if task.cfg.bos else float("nan")
    note = count_attend_applies(task, K)
    out.update({"causal_K": K, "causal_note": note})
    if not note:
        pairs = count_attend_pairs(sites, match_SxTxT, att_S, pred_S, counts, head, K, 0, rng)
        out["causal_count_attend"], out["causal_count_attend_control"] = run_pairs(
            graphdef, state, pairs, sites.seq_S, pieces, sites.r_S, at_R, one_layer, rng)
        out["causal_pairs_count_attend"] = len(pairs.site_N)
    answer_S = r_R[sites.r_S]
    pairs = histogram_pairs(sites, match_SxTxT, att_S, pred_S, counts, answer_S)
    out["causal_histogram"], out["causal_histogram_control"] = run_pairs(
        graphdef, state, pairs, sites.seq_S, pieces, sites.r_S, at_R, one_layer, rng)
    out["causal_pairs_histogram"] = len(pairs.site_N)
    return out


# --- one sequence, edited by hand (counting-inspect NAME --serve: counting.serve) ---------


@dataclasses.dataclass(frozen=True)
class Edited:
    """What the model computes on edited input: the counting layer's attention weights, the
    residual after its attention (before its MLP), and the logits at the answer positions."""

    att_BxHxTxT: np.ndarray
    resid_BxTxD: np.ndarray
    logits_BxRxC: np.ndarray


@functools.partial(jax.jit, static_argnums=(0, 4))
def _edited(graphdef, state, tokens_BxT, datt_BxHxTxT, at_R: tuple[int, ...]):
    model = nnx.merge(graphdef, state)
    parts = anatomy(model)
    x_BxTxD, att_BxHxTxT, v_BxTxHxK = parts.layer0(model, tokens_BxT)
    y_BxTxD = parts.mix(model, att_BxHxTxT, v_BxTxHxK)
    logits_BxRxC, dy_BxTxD = changed(model, x_BxTxD, y_BxTxD, v_BxTxHxK, datt_BxHxTxT, at_R)
    return att_BxHxTxT + datt_BxHxTxT, x_BxTxD + y_BxTxD + dy_BxTxD, logits_BxRxC


def edit_attention(graphdef, state, tokens_BxT, datt_BxHxTxT, at_R: tuple[int, ...]) -> Edited:
    """The model (graphdef, state) on tokens_BxT with the counting layer's attention weights
    changed by datt_BxHxTxT (queries x keys; zeros: the model's own run), through `changed`,
    the causal tests' own path."""
    att, resid, logits = _edited(graphdef, state, jnp.asarray(tokens_BxT), jnp.asarray(datt_BxHxTxT, jnp.float32),
                                 tuple(at_R))
    return Edited(np.asarray(att, np.float64), np.asarray(resid, np.float64), np.asarray(logits, np.float64))


def _rows(att_BxHxTxT: np.ndarray, rows_T: np.ndarray | None) -> np.ndarray:
    T = att_BxHxTxT.shape[-2]
    return np.ones(T, bool) if rows_T is None else np.asarray(rows_T, bool)


def reweight_keys(att_BxHxTxT: np.ndarray, keys_T: np.ndarray, scale: float, rows_T: np.ndarray | None = None,
                  renormalize: bool = True) -> np.ndarray:
    """datt: the change that multiplies the weights on the keys `keys_T` by `scale` in the
    query rows `rows_T` (default: every row) of every head; with `renormalize`, each changed
    row is rescaled to its old total (for a softmax: the keys' logits shifted by log(scale);
    scale 0 removes them from the softmax)."""
    att = np.asarray(att_BxHxTxT, np.float64)
    new = np.where(np.asarray(keys_T, bool), att * scale, att)
    if renormalize:
        old_tot, new_tot = att.sum(-1, keepdims=True), new.sum(-1, keepdims=True)
        ok = np.abs(new_tot) > 1e-30
        new = np.where(ok, new * np.where(ok, old_tot / np.where(ok, new_tot, 1.0), 1.0), new)
    new = np.where(_rows(att, rows_T)[:, None], new, att)
    return (new - att).astype(np.float32)


def set_key_share(att_BxHxTxT: np.ndarray, keys_T: np.ndarray, share, rows_T: np.ndarray | None = None,
                  allowed_TxT: np.ndarray | None = None) -> np.ndarray:
    """datt: the change that gives the keys `keys_T` the share `share` (one value, or one per
    sequence B) of each row's total in the rows `rows_T` (default: every row) of every head,
    the other allowed keys scaled together (the row's total kept); a side that holds no weight
    gets its part spread evenly over its allowed keys."""
    att = np.asarray(att_BxHxTxT, np.float64)
    B, _, T, _ = att.shape
    keys = np.asarray(keys_T, bool)[None, None, None, :]
    allowed = np.ones((T, T), bool) if allowed_TxT is None else np.asarray(allowed_TxT, bool)
    share = np.broadcast_to(np.asarray(share, np.float64), (B,))[:, None, None, None]
    total = att.sum(-1, keepdims=True)
    on = np.where(keys, att, 0.0).sum(-1, keepdims=True)
    off = total - on

    def part(mass, want, side):
        n = (side & allowed[None, None]).sum(-1, keepdims=True)
        even = np.where(side & allowed[None, None], want / np.maximum(n, 1), 0.0)
        safe = np.where(np.abs(mass) > 1e-30, mass, 1.0)
        return np.where(np.abs(mass) > 1e-30, np.where(side, att, 0.0) * (want / safe), even)

    new = part(on, share * total, keys) + part(off, (1.0 - share) * total, ~keys)
    new = np.where(_rows(att, rows_T)[:, None], new, att)
    return (new - att).astype(np.float32)


def _private(graphdef, state):
    """The model over a copy of state's values as JAX arrays: merging shares the caller's
    values, and Orbax restores NumPy arrays, which an edit would change in place."""
    return nnx.merge(graphdef, jax.tree.map(lambda x: jnp.array(x, copy=True), state))


def _query_layer(model):
    """The counting layer's query map (its kernel scales every query-key logit), or None."""
    if isinstance(model, Transformer):
        return model.blocks[0].attn.query
    if isinstance(model, BehrensModel) and model.mixing == "dot":
        return model.query
    return None


def has_query_key(graphdef, state) -> bool:
    """Whether the model's counting layer has query-key logits (a query map `scale_logits` can scale)."""
    return _query_layer(nnx.merge(graphdef, state)) is not None


def scale_logits(graphdef, state, scale: float):
    """The state with every query-key logit of the counting layer multiplied by `scale` (its
    query map scaled; the logits are linear in it, RoPE's too): 0 makes a softmax uniform over
    the allowed keys, large values make it hard. ValueError for a model without one."""
    model = _private(graphdef, state)
    layer = _query_layer(model)
    if layer is None:
        raise ValueError(f"{type(model).__name__} ({model.cfg.arch}): the counting layer has no query-key logits")
    layer.kernel[...] = layer.kernel[...] * scale
    return nnx.state(model)


def mix_embeddings(graphdef, state, token: int, toward: int, alpha: float):
    """The state with the embedding of token id `token` moved toward that of `toward`:
    (1 - alpha) e_token + alpha e_toward (alpha 1: the model can no longer tell them apart at
    the input)."""
    model = _private(graphdef, state)
    E_VxD = model.embed.embedding[...]
    model.embed.embedding[...] = E_VxD.at[token].set((1.0 - alpha) * E_VxD[token] + alpha * E_VxD[toward])
    return nnx.state(model)
