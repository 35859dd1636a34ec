"""The model-based relevance estimators against direct computation with their frozen encoders."""

from __future__ import annotations

import pytest
import torch
from conftest import build_tiny_model

from hf_softnce.losses import SoftInfoNCELoss
from hf_softnce.weighting import EmbeddingWeighter, TrainedModelWeighter
from loss_helpers import CODES, NEGATIVES, QUERIES, features


def batch_of(loss, model, *columns, labels=None):
    feats = features(model, *columns)
    with torch.no_grad():
        embeddings = [model(f)["sentence_embedding"] for f in feats]
    return loss.candidate_batch(embeddings, loss.column_hashes(feats), labels)[1]


def cosine(a, b):
    a, b = torch.nn.functional.normalize(a, dim=-1), torch.nn.functional.normalize(b, dim=-1)
    return a @ b.T


def test_embedding_weighter_is_query_query_cosine_and_caches(tmp_path, tiny_model):
    encoder = build_tiny_model(seed=1)
    queries = list(QUERIES)
    queries[4] = queries[0]  # two rows share a docstring: each is the other's most relevant candidate
    calls = []
    original_encode = encoder.encode
    encoder.encode = lambda *a, **k: calls.append(len(a[0])) or original_encode(*a, **k)
    weighter = EmbeddingWeighter(encoder, cache=tmp_path, show_progress_bar=False).fit(queries, CODES, negatives=NEGATIVES)
    loss = SoftInfoNCELoss(tiny_model, weighter)
    relevance = weighter.relevance(batch_of(loss, tiny_model, queries, CODES, NEGATIVES))

    query_embeddings = original_encode(queries, convert_to_tensor=True)
    negative_embeddings = original_encode(NEGATIVES, convert_to_tensor=True)
    b = len(queries)
    # In-batch positives are scored through their docstrings; unpaired negatives through their own text.
    torch.testing.assert_close(relevance[:, :b], cosine(query_embeddings, query_embeddings), atol=1e-5, rtol=0)
    torch.testing.assert_close(relevance[:, b:], cosine(query_embeddings, negative_embeddings), atol=1e-5, rtol=0)
    assert relevance[0, 4] == pytest.approx(1.0, abs=1e-5) and relevance[0, 4] == relevance[0, 1:b].max()

    encoded_before = len(calls)
    EmbeddingWeighter(encoder, cache=tmp_path, show_progress_bar=False).fit(queries, CODES, negatives=NEGATIVES)
    assert encoded_before == 2 and len(calls) == encoded_before  # the second fit read the disk cache


def test_trained_model_weighter_scores_query_against_code(tmp_path, tiny_model):
    retriever = build_tiny_model(seed=2)
    weighter = TrainedModelWeighter(retriever, cache=tmp_path, show_progress_bar=False).fit(QUERIES, CODES)
    loss = SoftInfoNCELoss(tiny_model, weighter)
    relevance = weighter.relevance(batch_of(loss, tiny_model, QUERIES, CODES))
    expected = 20.0 * cosine(retriever.encode(QUERIES, convert_to_tensor=True), retriever.encode(CODES, convert_to_tensor=True))
    torch.testing.assert_close(relevance, expected, atol=1e-4, rtol=0)
    assert not any(p.requires_grad for p in retriever.parameters())


def test_trained_model_weighter_refuses_to_share_parameters_with_the_trained_model(tmp_path, tiny_model):
    weighter = TrainedModelWeighter(tiny_model, cache=tmp_path, show_progress_bar=False).fit(QUERIES, CODES)
    with pytest.raises(ValueError, match="shares parameters"):
        SoftInfoNCELoss(tiny_model, weighter)
    # A separate copy with equal weights is fine: it is frozen and never updated by training.
    SoftInfoNCELoss(build_tiny_model(seed=0), weighter)
