"""Relevance estimators: the weights of SoftInfoNCE and the order labels of OrderInfoNCE share this interface.

The batch an estimator scores (:class:`~hf_softnce.batch.CandidateBatch`) lives in :mod:`hf_softnce.batch`,
which the losses share.
"""

from hf_softnce.weighting.base import FittedTextEstimator, RelevanceEstimator, UniformWeighter
from hf_softnce.weighting.bm25 import BM25Weighter
from hf_softnce.weighting.embedding import EmbeddingWeighter
from hf_softnce.weighting.precomputed import PrecomputedWeighter
from hf_softnce.weighting.trained_model import TrainedModelWeighter

__all__ = [
    "BM25Weighter",
    "EmbeddingWeighter",
    "FittedTextEstimator",
    "PrecomputedWeighter",
    "RelevanceEstimator",
    "TrainedModelWeighter",
    "UniformWeighter",
]
