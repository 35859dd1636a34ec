"""Exact top-k search of queries against a codebase, in bounded memory.

Shared by the miner, the evaluator and the cascade. The corpus is scored chunk by chunk and a running
top-k is merged, so memory grows with ``query_chunk_size x corpus_chunk_size``, never with the full
queries x corpus matrix. With FAISS installed
the per-chunk scoring uses ``faiss.knn`` (multi-threaded BLAS, no index copy of the corpus).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor


_SCORE_OF_SIMILARITY = {"cosine": "cos", "dot": "dot"}


def search_score(model) -> str:
    """The :func:`top_k_search` score (``"cos"`` or ``"dot"``) that reproduces a model's own similarity."""
    name = getattr(model, "similarity_fn_name", None) or "cosine"
    name = getattr(name, "value", name)  # a SimilarityFunction enum or its string
    if name not in _SCORE_OF_SIMILARITY:
        raise ValueError(f"Code search supports models with cosine or dot similarity, not {name!r}.")
    return _SCORE_OF_SIMILARITY[name]


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _as_float_tensor(x) -> Tensor:
    tensor = torch.from_numpy(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x
    return tensor.detach().float().cpu()


def _prepare(chunk: Tensor, score: str) -> Tensor:
    # Normalising a chunk at a time keeps cosine search from copying the whole corpus matrix.
    return torch.nn.functional.normalize(chunk, dim=-1) if score == "cos" else chunk


def _chunk_top_k(queries: Tensor, corpus_chunk: Tensor, k: int, use_faiss: bool) -> tuple[Tensor, Tensor]:
    if use_faiss:
        import faiss

        scores, indices = faiss.knn(
            queries.numpy(), corpus_chunk.contiguous().numpy(), k, metric=faiss.METRIC_INNER_PRODUCT
        )
        return torch.from_numpy(scores), torch.from_numpy(indices)
    return torch.topk(queries @ corpus_chunk.T, k, dim=1)


def top_k_search(
    query_embeddings: Tensor | np.ndarray,
    corpus_embeddings: Tensor | np.ndarray,
    k: int,
    *,
    score: Literal["cos", "dot"] = "cos",
    use_faiss: bool | None = None,
    query_chunk_size: int = 1024,
    corpus_chunk_size: int = 50_000,
) -> tuple[Tensor, Tensor]:
    """Top-``k`` corpus entries for every query, best first.

    Args:
        query_embeddings: ``(Q, d)`` float tensor or array.
        corpus_embeddings: ``(N, d)`` float tensor or array.
        k: neighbours per query; must satisfy ``1 <= k <= N``.
        score: ``"cos"`` (cosine similarity) or ``"dot"`` (inner product).
        use_faiss: ``None`` uses FAISS when installed; ``True`` requires it; ``False`` uses torch.
        query_chunk_size / corpus_chunk_size: bound the memory of one scoring block.

    Returns:
        ``(scores, indices)``, both ``(Q, k)``; ties keep no particular order.
    """
    queries, corpus = _as_float_tensor(query_embeddings), _as_float_tensor(corpus_embeddings)
    if corpus.ndim != 2 or corpus.shape[0] == 0:
        raise ValueError(f"The corpus is empty (embeddings of shape {tuple(corpus.shape)}): nothing to search.")
    if queries.ndim != 2 or queries.shape[1] != corpus.shape[1]:
        raise ValueError(
            f"Query embeddings {tuple(queries.shape)} and corpus embeddings {tuple(corpus.shape)} "
            "must be 2-D with the same dimension."
        )
    if not 1 <= k <= corpus.shape[0]:
        raise ValueError(f"k={k} must be between 1 and the corpus size ({corpus.shape[0]}).")
    if score not in ("cos", "dot"):
        raise ValueError(f"score must be 'cos' or 'dot', got {score!r}.")
    if use_faiss is None:
        use_faiss = faiss_available()
    elif use_faiss and not faiss_available():
        raise ImportError("use_faiss=True but FAISS is not installed: pip install 'hf_softnce[faiss]'.")

    all_scores, all_indices = [], []
    for q_start in range(0, queries.shape[0], query_chunk_size):
        query_chunk = _prepare(queries[q_start : q_start + query_chunk_size], score).contiguous()
        best_scores = best_indices = None
        for c_start in range(0, corpus.shape[0], corpus_chunk_size):
            corpus_chunk = _prepare(corpus[c_start : c_start + corpus_chunk_size], score)
            chunk_k = min(k, corpus_chunk.shape[0])
            scores, indices = _chunk_top_k(query_chunk, corpus_chunk, chunk_k, use_faiss)
            indices = indices.long() + c_start
            if best_scores is not None:
                scores = torch.cat([best_scores, scores], dim=1)
                indices = torch.cat([best_indices, indices], dim=1)
            keep = min(k, scores.shape[1])
            best_scores, order = torch.topk(scores, keep, dim=1)
            best_indices = torch.gather(indices, 1, order)
        all_scores.append(best_scores)
        all_indices.append(best_indices)
    return torch.cat(all_scores), torch.cat(all_indices)
