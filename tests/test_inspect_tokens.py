"""counting.inspect.token_space: the maps and their summary numbers on the constructions
(identity value map and one-token neurons for the histogram; the BOS channel and equal
query-key logits on BOS and the matches for CountAttend), untrained and Behrens models."""

import math

import numpy as np
from flax import nnx

from counting.config import ModelConfig, TaskConfig
from counting.inspect.token_space import summary, token_maps
from counting.models.behrens import BehrensModel
from counting.models.transformer import Transformer
from counting.tasks import NUM_SPECIAL, make_task
from counting.theory.count_attend import count_attend
from counting.theory.histogram import histogram_solution

N = 8


def task(name, m, **kw):
    return TaskConfig(name=name, m=m, n=N, eval_size=64, **kw)


def test_histogram_construction_reads_as_identity_in_token_space():
    t = task("qc", 6)
    maps = token_maps(histogram_solution(t).model, make_task(t))
    s = summary(maps)
    np.testing.assert_allclose(maps.ov_VxM[:6], np.eye(6), atol=1e-6)
    assert s["tok_ov_diag_share"] == 1.0 and s["tok_ov_diag_top1"] == 1.0 and s["tok_ov_bos_share"] == 0.0
    assert math.isclose(s["tok_qk_match_mass"], 1 / 7, rel_tol=1e-6)  # all logits 0: uniform over 6 tokens + BOS
    assert math.isclose(s["tok_qk_bos_mass"], 1 / 7, rel_tol=1e-6)
    assert math.isclose(s["tok_mlp_selectivity"], 1.0) and s["tok_mlp_bos_share"] == 0.0
    assert math.isnan(s["tok_qk_pos_over_token"])  # no positions


def test_count_attend_construction_reads_as_the_bos_channel():
    t = task("qc", 12)
    maps = token_maps(count_attend(t, 5).model, make_task(t))
    s = summary(maps)
    assert s["tok_ov_bos_share"] == 1.0 and s["tok_mlp_bos_share"] == 1.0  # only BOS writes; the MLP reads that
    assert math.isnan(s["tok_ov_diag_share"])  # content tokens write nothing
    assert abs(s["tok_qk_match_mass"] - s["tok_qk_bos_mass"]) < 1e-6 and s["tok_qk_match_mass"] > 0.45
    assert maps.qk_MxV.shape == (12, 13)


def test_untrained_model_sits_near_chance_and_positions_have_a_column_each():
    t = task("qc", 16)
    spec = make_task(t)
    model = Transformer(ModelConfig(d=32, w=16, H=2), spec.vocab_size(), spec.length, spec.num_classes,
                        nnx.Rngs(params=0))
    maps = token_maps(model, spec, head=1)
    s = summary(maps)
    assert maps.qk_pos_MxP.shape == (16, spec.length)
    assert s["tok_ov_diag_top1"] < 0.5 and s["tok_mlp_selectivity"] < 0.5
    assert s["tok_qk_match_mass"] < 0.2 and np.isfinite(s["tok_qk_pos_over_token"])


def test_behrens_value_map_is_the_gram_matrix_and_linear_mixing_has_no_query_key_map():
    for arch, bos in (("dot+softmax", False), ("linear", False), ("dotBOS", True)):
        t = task("histogram", 6, bos=bos)
        spec = make_task(t)
        model = BehrensModel(ModelConfig(arch=arch, d=8, w=16, pos="none", norm="none"), spec.vocab_size(),
                             spec.length, spec.num_classes, nnx.Rngs(params=0))
        maps = token_maps(model, spec)
        E = np.asarray(model.embed.embedding[...], np.float64)[NUM_SPECIAL : NUM_SPECIAL + 6]
        np.testing.assert_allclose(maps.ov_VxM[:6], E @ E.T, rtol=1e-5)
        s = summary(maps)
        assert (maps.qk_MxV is None) == (arch == "linear")
        assert math.isnan(s["tok_ov_bos_share"]) != bos  # BOS numbers only with a BOS token
