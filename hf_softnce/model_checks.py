"""Which kind of model each piece takes, checked where it is built, with a one-line message saying what to pass.

A bi-encoder (``SentenceTransformer``) embeds queries and codes separately: the losses, the miner, the evaluator and
the cascade's retriever need one. A cross-encoder (``CrossEncoder``) scores (query, code) pairs: the cascade's ranker.
Handed the other kind (or a path), they used to construct silently and fail later, deep inside
(``'str' object is not callable``, ``AttributeError``, an ``input_ids`` message).
"""

from __future__ import annotations


def _kind(model) -> str:
    if isinstance(model, str):
        return f"the str {model!r}"
    return f"a {type(model).__name__}"


def require_bi_encoder(model, where: str) -> None:
    """Raise ``TypeError`` unless ``model`` is a SentenceTransformer; ``where`` names the caller, e.g. ``"SoftInfoNCELoss"``."""
    from sentence_transformers import CrossEncoder, SentenceTransformer

    if isinstance(model, SentenceTransformer):
        return
    if isinstance(model, str):
        hint = f"load it first: SentenceTransformer({model!r})"
    elif isinstance(model, CrossEncoder):
        hint = "a CrossEncoder scores (query, code) pairs and can only re-rank: RetrieverRanker(retriever, ranker)"
    else:
        hint = "e.g. SentenceTransformer('sentence-transformers/all-MiniLM-L6-v2')"
    raise TypeError(f"{where} needs a SentenceTransformer (a bi-encoder), got {_kind(model)}; {hint}.")


def require_cross_encoder(model, where: str) -> None:
    """Raise ``TypeError`` unless ``model`` scores pairs: a CrossEncoder, or any object with ``predict`` that is
    not a bi-encoder (a ranker of one's own)."""
    from sentence_transformers import SentenceTransformer

    if callable(getattr(model, "predict", None)) and not isinstance(model, (str, SentenceTransformer)):
        return
    hint = f"load it first: CrossEncoder({model!r})" if isinstance(model, str) else "e.g. CrossEncoder(path, num_labels=1)"
    raise TypeError(f"{where} needs a CrossEncoder (a ranker scoring (query, code) pairs), got {_kind(model)}; {hint}.")
