"""Search and the retriever->ranker cascade.

The cascade (which imports sentence-transformers) loads on first use, so code that only searches
embeddings — the miner's memory-bounded search — does not pay for it. Evaluating the cascade
(``evaluate_cascade``) lives in :mod:`hf_softnce.evaluation`: evaluation imports retrieval, never the reverse.
"""

from hf_softnce.retrieval.search import faiss_available, top_k_search

__all__ = ["RetrieverRanker", "faiss_available", "top_k_search"]


def __getattr__(name: str):
    if name == "RetrieverRanker":
        from hf_softnce.retrieval.cascade import RetrieverRanker

        return RetrieverRanker
    raise AttributeError(f"module 'hf_softnce.retrieval' has no attribute {name!r}")
