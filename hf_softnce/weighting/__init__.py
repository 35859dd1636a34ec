"""Relevance estimators: the weights of SoftInfoNCE and the order labels of OrderInfoNCE share this interface."""

from hf_softnce.weighting.base import FittedTextEstimator, RelevanceEstimator
from hf_softnce.weighting.batch import CandidateBatch, HashIndex, hash_texts, text_hashes
from hf_softnce.weighting.bm25 import BM25Weighter
from hf_softnce.weighting.embedding import EmbeddingWeighter
from hf_softnce.weighting.precomputed import PrecomputedWeighter
from hf_softnce.weighting.trained_model import TrainedModelWeighter
from hf_softnce.weighting.uniform import UniformWeighter

__all__ = [
    "BM25Weighter",
    "CandidateBatch",
    "EmbeddingWeighter",
    "FittedTextEstimator",
    "HashIndex",
    "PrecomputedWeighter",
    "RelevanceEstimator",
    "TrainedModelWeighter",
    "UniformWeighter",
    "hash_texts",
    "text_hashes",
]
