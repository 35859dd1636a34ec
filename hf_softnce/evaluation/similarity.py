"""Which ``top_k_search`` score reproduces a SentenceTransformer's own similarity.

Kept free of other hf_softnce imports: both the evaluator (evaluation/) and the cascade (retrieval/) use it.
"""

from __future__ import annotations

_SCORE_OF_SIMILARITY = {"cosine": "cos", "dot": "dot"}


def search_score(model) -> str:
    """``"cos"`` or ``"dot"`` for a model whose ``similarity_fn_name`` is cosine (the default) or dot product."""
    name = model.similarity_fn_name or "cosine"
    if name not in _SCORE_OF_SIMILARITY:
        raise ValueError(f"Code search supports models with cosine or dot similarity, not {name!r}.")
    return _SCORE_OF_SIMILARITY[name]
