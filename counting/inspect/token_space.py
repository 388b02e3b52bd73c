"""The counting layer's weights read in token space (Dar et al., *Analyzing Transformers in
Embedding Space*): no forward pass over sequences, only the parameters applied to the token
embeddings. Per model class (`READERS`):

- rows: each content token t as the layer sees it, x_t = e_t + p (p: the mean positional
  embedding of the content positions as keys, of the answer positions as queries; none
  without learned or sinusoidal positions), BOS as x_BOS = e_BOS + p_0 (position 0); each
  through the layer's own input norm (pre-LN), as the model computes it;
- `ov_VxM`, the value/output path (the analogue of E W_V W_O E^T): what attention writes when
  it attends to one key holding token s (rows: the m content tokens, then BOS), read against
  the raw content embeddings e_t (columns), summed over heads. A Behrens et al. model has no
  W_V W_O: its value is the embedding, so the map is the Gram matrix E E^T;
- `qk_MxV`, the query-key map (E W_Q W_K^T E^T / sqrt(d/H) of the counting head): the logit a
  query holding s gives a key holding t (columns: content tokens, then BOS); `qk_pos_MxP`:
  what each key position adds to the logit of the mean content token (against the mean
  position). RoPE's rotation is left out (its positions then have no column), linear mixing
  has no query-key map;
- `mlp_VxW`, the MLP's input neurons read against the tokens: row t the neuron inputs of a
  position holding t with nothing written by attention (x_t through the MLP's norm, times
  W_1; no bias); the BOS row the change of the neuron inputs when attention writes BOS's
  value on top of the mean content token.

Summary numbers (chance levels in brackets, for maps with no structure):
`tok_ov_diag_share` (sum of squares on the diagonal of the content block over all of it; 1
for the histogram's identity [1/m]), `tok_ov_diag_top1` (tokens whose write reads largest
in absolute value on their own embedding [1/m]; a write of -e_t carries a count as well),
`tok_ov_bos_share` (|write(BOS)|^2 over that plus the mean |write(t)|^2: 1 for CountAttend's
BOS channel, 0 where BOS writes nothing), `tok_qk_match_mass` and `tok_qk_bos_mass` (the
softmax of each query row over one key per content token and BOS: the mean share of its
own token, of BOS [1/(m+1) each]; CountAttend 1/2 each), `tok_qk_pos_over_token` (the
spread of the position logits over that of the token logits), `tok_mlp_selectivity` (per
neuron reading any token: its largest |input| over the sum over tokens [1/m]; 1 for the
histogram's one-token neurons), `tok_mlp_bos_share` (BOS row's squared norm over that plus
the mean token row's). Empty where the model or task has no such part (no BOS, no
positions, no query-key map).
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np

from counting.models.behrens import BehrensModel
from counting.models.transformer import Transformer, sinusoidal_table
from counting.tasks import BOS_ID, NUM_SPECIAL, Task

COLUMNS = ("tok_ov_diag_share", "tok_ov_diag_top1", "tok_ov_bos_share", "tok_qk_match_mass", "tok_qk_bos_mass",
           "tok_qk_pos_over_token", "tok_mlp_selectivity", "tok_mlp_bos_share")


@dataclasses.dataclass(frozen=True)
class Maps:
    """The counting layer's maps in token space (see the module's docstring): value/output ov_VxM, query-key
    qk_MxV and qk_pos_MxP (None where there are none), the MLP's input neurons mlp_VxW, and the size of what
    attention writes per key token."""

    ov_VxM: np.ndarray  # rows: m content tokens, then BOS (NaN without BOS)
    qk_MxV: np.ndarray | None  # columns: m content tokens, then BOS (NaN without BOS)
    qk_pos_MxP: np.ndarray | None  # columns: key positions
    mlp_VxW: np.ndarray  # rows: m content tokens, then BOS's write
    write_V: np.ndarray  # |what attention writes| per key token (m content, then BOS)

    def arrays(self) -> dict[str, np.ndarray]:
        """The maps by name, those that are None left out (what inspect_maps.npz stores)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def _np(x) -> np.ndarray:
    return np.asarray(x, np.float64)


def _positions(model: Transformer, task: Task) -> tuple[np.ndarray, np.ndarray]:
    """pe_TxD: the positional embedding of every position (zeros for none and rope), and the
    answer positions' mean."""
    T, d = task.length, model.cfg.d
    if model.cfg.pos == "learned":
        pe_TxD = _np(model.pos_embed.embedding[...])[:T]
    elif model.cfg.pos == "sinusoidal":
        pe_TxD = _np(sinusoidal_table(T, d))
    else:
        pe_TxD = np.zeros((T, d))
    return pe_TxD, pe_TxD[np.asarray(task.answer_positions)].mean(0)


def _rows_through(f, *X_list):
    """f applied to the rows of every X in X_list (None: passed through), in one call: a layer run eagerly compiles
    one program per shape, so one stacked call compiles once where a call per X compiled each time."""
    given = [X for X in X_list if X is not None]
    if f is None or not given:
        return list(X_list)
    Y_RxD = _np(f(jnp.asarray(np.concatenate(given), jnp.float32)))
    parts = iter(np.split(Y_RxD, np.cumsum([len(X) for X in given])[:-1]))
    return [None if X is None else next(parts) for X in X_list]


def transformer_maps(model: Transformer, task: Task, head: int) -> Maps:
    """The Maps of a Transformer's first block, for the query-key map its head `head`: the rows e_t + p through
    the block's attention input norm, its value/output, query-key and MLP-input paths."""
    cfg, m, bos = model.cfg, task.cfg.m, task.cfg.bos
    block, K = model.blocks[0], cfg.d // cfg.H
    E_VxD = _np(model.embed.embedding[...])
    Ec_MxD = E_VxD[NUM_SPECIAL : NUM_SPECIAL + m]
    pe_TxD, p_ans_D = _positions(model, task)
    content = task.content_slice()
    p_key_D = pe_TxD[content].mean(0)
    keys_VxD = np.concatenate([Ec_MxD + p_key_D[None], (E_VxD[BOS_ID] + pe_TxD[0])[None]])
    tok_mean_D = Ec_MxD.mean(0)
    positional = cfg.pos in ("learned", "sinusoidal")
    at_rows = (tok_mean_D[None] + pe_TxD, (tok_mean_D + p_key_D)[None]) if positional else (None, None)
    hk_VxD, hq_MxD, at_PxD, base_1xD = _rows_through(block.attn_input, keys_VxD, Ec_MxD + p_ans_D[None], *at_rows)
    lin = lambda layer, X: X @ _np(layer.kernel[...])
    q_MxK = lin(block.attn.query, hq_MxD)[:, head * K : (head + 1) * K]
    k_VxK = lin(block.attn.key, hk_VxD)[:, head * K : (head + 1) * K]
    qk_MxV = q_MxK @ k_VxK.T / math.sqrt(K)
    qk_pos = None
    if positional:
        dk_PxK = (lin(block.attn.key, at_PxD) - lin(block.attn.key, base_1xD))[:, head * K : (head + 1) * K]
        qk_pos = q_MxK @ dk_PxK.T / math.sqrt(K)
    write_VxD = lin(block.attn.out, lin(block.attn.value, hk_VxD))
    W1_DxW = _np(block.mlp.hidden.kernel[...])
    key_mean_D = (Ec_MxD + p_key_D[None]).mean(0)
    tok_MxD, bos_1xD, mean_1xD = _rows_through(block.ln_mlp if block.pre_ln else None, Ec_MxD + p_key_D[None],
                                               (key_mean_D + write_VxD[-1])[None], key_mean_D[None])
    mlp_tok_MxW = tok_MxD @ W1_DxW
    mlp_bos_W = (bos_1xD - mean_1xD)[0] @ W1_DxW
    return _with_bos(Maps(write_VxD @ Ec_MxD.T, qk_MxV, qk_pos, np.concatenate([mlp_tok_MxW, mlp_bos_W[None]]),
                          np.linalg.norm(write_VxD, axis=1)), bos)


def behrens_maps(model: BehrensModel, task: Task, head: int) -> Maps:
    """The Maps of a BehrensModel: the Gram matrix of its embeddings as the value/output map, the query-key map
    of dot mixing (None for linear), no positions, and its hidden layer's inputs."""
    m, bos = task.cfg.m, task.cfg.bos
    E_VxD = _np(model.embed.embedding[...])
    X_VxD = np.concatenate([E_VxD[NUM_SPECIAL : NUM_SPECIAL + m], E_VxD[BOS_ID][None]])
    qk = None
    if model.mixing == "dot":
        q_MxD = X_VxD[:m] @ _np(model.query.kernel[...])
        qk = q_MxD @ (X_VxD @ _np(model.key.kernel[...])).T / math.sqrt(model.cfg.d)
    return _with_bos(Maps(X_VxD @ X_VxD[:m].T, qk, None, X_VxD @ _np(model.hidden.kernel[...]),
                          np.linalg.norm(X_VxD, axis=1)), bos)


def _with_bos(maps: Maps, bos: bool) -> Maps:
    """Without a BOS token its row and column mean nothing: NaN."""
    if bos:
        return maps
    nan_last = lambda A, axis: np.concatenate([np.take(A, np.arange(A.shape[axis] - 1), axis=axis),
                                               np.full_like(np.take(A, [-1], axis=axis), np.nan)], axis=axis)
    return dataclasses.replace(maps, ov_VxM=nan_last(maps.ov_VxM, 0),
                               qk_MxV=None if maps.qk_MxV is None else nan_last(maps.qk_MxV, 1),
                               mlp_VxW=nan_last(maps.mlp_VxW, 0), write_V=nan_last(maps.write_V, 0))


READERS = {Transformer: transformer_maps, BehrensModel: behrens_maps}  # model class -> its maps


def token_maps(model, task: Task, head: int = 0) -> Maps:
    """The Maps of a model (READERS by its class), the query-key map of head `head`."""
    return READERS[type(model)](model, task, head)


def _share(a: float, b: float) -> float:
    return a / (a + b) if math.isfinite(a) and math.isfinite(b) and a + b > 0 else float("nan")


def summary(maps: Maps) -> dict[str, float]:
    """The summary numbers of the maps (COLUMNS: the value/output diagonal share and top-1, BOS's write share,
    the query-key match and BOS mass and position spread, the MLP's selectivity and BOS share); nan where the
    model or task has no such part."""
    m = maps.ov_VxM.shape[1]
    ov_MxM = maps.ov_VxM[:m]
    total = float((ov_MxM**2).sum())
    live_M = np.abs(ov_MxM).max(1) > 0
    nan = float("nan")
    out = {
        "tok_ov_diag_share": float((np.diag(ov_MxM) ** 2).sum()) / total if total > 0 else nan,
        "tok_ov_diag_top1": float((np.abs(ov_MxM).argmax(1) == np.arange(m))[live_M].mean()) if live_M.any() else nan,
        "tok_ov_bos_share": _share(float(maps.write_V[-1] ** 2), float((maps.write_V[:m] ** 2).mean())),
    }
    qk_match = qk_bos = qk_pos = nan
    if maps.qk_MxV is not None:
        has_bos = bool(np.isfinite(maps.qk_MxV[:, -1]).all())
        s_MxV = maps.qk_MxV if has_bos else maps.qk_MxV[:, :m]
        p_MxV = np.exp(s_MxV - s_MxV.max(1, keepdims=True))
        p_MxV /= p_MxV.sum(1, keepdims=True)
        qk_match = float(np.diag(p_MxV[:, :m]).mean())
        qk_bos = float(p_MxV[:, -1].mean()) if has_bos else nan
        spread = float(maps.qk_MxV[:, :m].std(1).mean())
        if maps.qk_pos_MxP is not None and spread > 0:
            qk_pos = float(maps.qk_pos_MxP.std(1).mean()) / spread
    tok_MxW = np.abs(maps.mlp_VxW[:m])
    reads_W = tok_MxW.sum(0) > 0
    out.update({
        "tok_qk_match_mass": qk_match, "tok_qk_bos_mass": qk_bos, "tok_qk_pos_over_token": qk_pos,
        "tok_mlp_selectivity": (float((tok_MxW.max(0)[reads_W] / tok_MxW.sum(0)[reads_W]).mean()) if reads_W.any()
                                else nan),
        "tok_mlp_bos_share": _share(float((maps.mlp_VxW[-1] ** 2).sum()), float((maps.mlp_VxW[:m] ** 2).sum(1).mean())),
    })
    return out
