"""Search and the retriever->ranker cascade."""

from hf_softnce.retrieval.cascade import RetrieverRanker, evaluate_cascade
from hf_softnce.retrieval.search import faiss_available, top_k_search

__all__ = ["RetrieverRanker", "evaluate_cascade", "faiss_available", "top_k_search"]
