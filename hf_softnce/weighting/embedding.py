"""Relevance from a frozen embedding model, e.g. unsupervised SimCSE on the training docstrings."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from hf_softnce.batch import CandidateBatch
from hf_softnce.embedding_cache import encode_cached
from hf_softnce.weighting.base import FittedTextEstimator


def _load(model):
    if isinstance(model, str):
        from sentence_transformers import SentenceTransformer

        from hf_softnce.model_checks import check_model_folder

        check_model_folder(model)
        model = SentenceTransformer(model)
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


class FrozenEncoderEstimator(FittedTextEstimator):
    """A fitted estimator whose texts are embedded once by a frozen sentence encoder (normalized, cached on disk).

    Args:
        model: a SentenceTransformer or a path/Hub id; frozen here (eval mode, no gradients).
        batch_size: encoding batch size for :meth:`fit`.
        cache: ``True`` (hf_softnce's cache folder), a folder, or ``False``.
        show_progress_bar: show the encoding bar in :meth:`fit`.
    """

    def __init__(self, model, *, batch_size: int = 64, cache=True, show_progress_bar: bool = True) -> None:
        super().__init__()
        self.encoder = _load(model)
        self.batch_size, self.cache, self.show_progress_bar = batch_size, cache, show_progress_bar

    def _encode(self, texts: list[str]) -> Tensor:
        return encode_cached(
            self.encoder,
            texts,
            batch_size=self.batch_size,
            normalize=True,
            cache=self.cache,
            show_progress_bar=self.show_progress_bar,
        )


class EmbeddingWeighter(FrozenEncoderEstimator):
    """Query-query cosine of a frozen sentence encoder (the paper's SimCSE weighting).

    A candidate code is represented by its docstring's embedding: a batch's positive by its own row's query, a hard
    negative by the query it is paired with in the training data (the first, when several), or by its own embedding
    when it was seen only as a negative. All texts are embedded
    once in :meth:`fit` (batched, progress bar, cached on disk keyed by model weights and texts); a training
    step is a lookup and one matrix product.

    Args:
        model: a SentenceTransformer or a path/Hub id, e.g. the output of ``recipes/train_simcse_weighter.py``.
        batch_size: encoding batch size for :meth:`fit`.
        cache: ``True`` (hf_softnce's cache folder), a folder, or ``False``.
    Defaults: alpha=1.3, beta=0.7, temperature=0.1 (Soft-InfoNCE's SimCSE setting).
    """

    default_alpha, default_beta, default_temperature = 1.3, 0.7, 0.1

    def _fit_texts(self) -> None:
        self._query_embeddings = self._encode(self.queries)
        unpaired = (self.code_query_row < 0).nonzero().flatten()
        code_embeddings = self._query_embeddings[self.code_query_row.clamp(min=0)].clone()
        if len(unpaired):
            code_embeddings[unpaired] = self._encode([self.codes[i] for i in unpaired.tolist()])
        self._code_embeddings = code_embeddings

    def relevance(self, batch: CandidateBatch) -> Tensor:
        device = batch.negative_mask.device
        query_embeddings = self.on_device("_query_embeddings", device)
        queries, negatives = self.candidate_docstring_rows(batch)  # the global batch's queries are its positives
        candidates = torch.cat([query_embeddings[queries], self.on_device("_code_embeddings", device)[negatives]])
        return query_embeddings[queries[batch.local_rows]] @ candidates.T

    def get_config_dict(self) -> dict[str, Any]:
        return {**super().get_config_dict(), "model": _model_name(self.encoder)}


def _model_name(model) -> str:
    card = getattr(model, "model_card_data", None)
    return getattr(card, "base_model", None) or getattr(model, "name_or_path", None) or type(model).__name__
