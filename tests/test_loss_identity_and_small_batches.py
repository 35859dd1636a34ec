"""The losses: text identity under prompts and max_seq_length changes, small batches whose
weight formula is undefined, and constructor checks."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

from hf_softnce.losses import (
    CachedOrderInfoNCELoss,
    CachedSoftInfoNCELoss,
    OrderInfoNCELoss,
    SoftInfoNCELoss,
    soft_negative_weights,
)
from hf_softnce.weighting import BM25Weighter
from loss_helpers import CODES, QUERIES, features


@pytest.fixture
def model(tiny_model):
    torch.manual_seed(0)
    return tiny_model


# ----- constructor -------------------------------------------------------------------------------------
@pytest.mark.parametrize("loss_class", [SoftInfoNCELoss, CachedSoftInfoNCELoss, OrderInfoNCELoss, CachedOrderInfoNCELoss])
def test_positional_scale_is_a_clear_type_error(model, loss_class):
    argument = "order_source" if "Order" in loss_class.__name__ else "weighter"
    message = (
        f"{loss_class.__name__}: {argument} must be a RelevanceEstimator from hf_softnce.weighting or None, got "
        f"float 30.0. The arguments after {argument} are keyword-only: write e.g. "
        f"{loss_class.__name__}(model, scale=30.0)."
    )
    with pytest.raises(TypeError) as error:
        loss_class(model, 30.0)
    assert str(error.value) == message
    with pytest.raises(TypeError, match="positional argument"):
        loss_class(model, None, 30.0)


@pytest.mark.parametrize("name", ["alpha", "beta", "weight_temperature"])
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_weight_settings_must_be_finite(model, name, value):
    with pytest.raises(ValueError) as error:
        SoftInfoNCELoss(model, BM25Weighter().fit(QUERIES, CODES), **{name: value})
    assert str(error.value) == f"SoftInfoNCELoss: {name} must be a finite number, got {value!r}."


def test_order_weights_must_be_finite(model):
    with pytest.raises(ValueError, match=r"^OrderInfoNCELoss: order_scale must be a finite number, got inf\.$"):
        OrderInfoNCELoss(model, order_scale=math.inf)


# ----- small batches -----------------------------------------------------------------------------------
def test_undefined_rows_fall_back_to_uniform_weights_and_are_counted():
    relevance = torch.tensor([[0.0, 3.0, 1.0, 2.0, 0.5, 0.0], [0.0, 1.0, 2.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[False, True, True, True, True, True], [False, True, True, True, False, False]])
    counter = torch.zeros((), dtype=torch.long)
    weights = soft_negative_weights(relevance, mask, 1.5, 0.5, 1.0, 0.1, undefined_rows=counter)
    # Row 0: n = 5 > alpha / beta = 3, the formula itself.
    p = torch.softmax(relevance[0, 1:], dim=0)
    assert torch.allclose(weights[0, 1:], ((0.5 - 1.5 * p) / (0.5 - 1.5 / 5)).clamp(min=0.1))
    # Row 1: n = 3, beta - alpha / n = 0: uniform weights on its negatives, 0 elsewhere.
    assert weights[1].tolist() == [0.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    assert int(counter) == 1


def test_small_batch_trains_like_mnrl_and_warns_once(model):
    loss = SoftInfoNCELoss(model, BM25Weighter().fit(QUERIES, CODES))  # alpha / beta = 3: n = 2 is undefined
    feats = features(model, QUERIES[:3], CODES[:3])
    value = loss(feats, None)
    expected = MultipleNegativesRankingLoss(model)(feats, None)
    assert torch.allclose(value, expected, atol=1e-6)
    loss(features(model, QUERIES[3:5], CODES[3:5]), None)  # 2 more rows with n = 1
    with pytest.warns(UserWarning, match=r"^SoftInfoNCELoss: 5 row\(s\) had too few negatives"):
        assert loss.undefined_weight_rows == 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert loss.undefined_weight_rows == 5  # counted, warned only once
    # The config holds the settings: reading the device-side count there would wait for the device.
    assert "undefined_weight_rows" not in loss.get_config_dict()
    assert not hasattr(OrderInfoNCELoss(model), "undefined_weight_rows")  # SoftInfoNCE's weights only


# ----- text identity -----------------------------------------------------------------------------------
def test_max_seq_length_change_after_building_the_loss_keeps_lookups(model):
    loss = SoftInfoNCELoss(model, BM25Weighter().fit(QUERIES, CODES))
    model.max_seq_length = 8  # truncates most texts: their token ids change
    feats = features(model, QUERIES, CODES)
    value = loss(feats, None)
    rebuilt = SoftInfoNCELoss(model, BM25Weighter().fit(QUERIES, CODES))
    assert torch.equal(value, rebuilt(feats, None))


def test_max_seq_length_change_keeps_duplicate_masking(model):
    codes = list(CODES)
    groups = {code: ("same" if i in (0, 1) else f"g{i}") for i, code in enumerate(codes)}
    loss = SoftInfoNCELoss(model, duplicate_groups=groups)
    model.max_seq_length = 8
    feats = features(model, QUERIES, codes)
    embeddings = [model(f)["sentence_embedding"] for f in feats]
    loss.sync_tokenization()
    _, batch = loss.candidate_batch(embeddings, loss.column_hashes(feats), None)
    assert not batch.negative_mask[0, 1] and not batch.negative_mask[1, 0]
    assert int(batch.negative_mask.sum()) == len(codes) * (len(codes) - 1) - 2


def test_prompts_do_not_break_lookups_or_masking(model):
    groups = {code: ("same" if i in (0, 1) else f"g{i}") for i, code in enumerate(CODES)}
    loss = SoftInfoNCELoss(model, BM25Weighter().fit(QUERIES, CODES), duplicate_groups=groups)
    prompted = [model.preprocess(QUERIES, prompt="query: "), model.preprocess(CODES, prompt="code: ")]
    plain = features(model, QUERIES, CODES)
    assert [torch.equal(a, b) for a, b in zip(loss.column_hashes(prompted), loss.column_hashes(plain))] == [True, True]
    embeddings = [model(f)["sentence_embedding"] for f in prompted]
    _, batch = loss.candidate_batch(embeddings, loss.column_hashes(prompted), None)
    assert not batch.negative_mask[0, 1] and not batch.negative_mask[1, 0]
    _, plain_batch = loss.candidate_batch(embeddings, loss.column_hashes(plain), None)
    assert torch.equal(loss.weighter.relevance(batch), loss.weighter.relevance(plain_batch))


def test_a_positive_missing_from_duplicate_groups_is_an_error_not_silence(model):
    groups = {code: f"g{i}" for i, code in enumerate(CODES[1:])}  # CODES[0] is missing
    loss = SoftInfoNCELoss(model, duplicate_groups=groups)
    with pytest.raises(KeyError, match=r"1 of 6 positive codes of the batch are not in duplicate_groups"):
        loss(features(model, QUERIES, CODES), None)
