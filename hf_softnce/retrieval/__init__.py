"""Search and the retriever->ranker cascade.

The cascade (which imports sentence-transformers) loads on first use, so code that only searches
embeddings — the miner's memory-bounded search — does not pay for it.
"""

from hf_softnce.retrieval.search import faiss_available, search_score, top_k_search

__all__ = ["RetrieverRanker", "evaluate_cascade", "faiss_available", "top_k_search"]


def __getattr__(name: str):
    if name in ("RetrieverRanker", "evaluate_cascade"):
        from hf_softnce.retrieval import cascade

        return getattr(cascade, name)
    raise AttributeError(f"module 'hf_softnce.retrieval' has no attribute {name!r}")
