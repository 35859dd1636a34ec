"""Evaluation of the retriever->ranker cascade: the retriever alone and the cascade on the same retriever pass.

It lives with the evaluators, not with the cascade: evaluation imports retrieval (search, the cascade), never
the other way round, so the search primitives stay importable without the metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from hf_softnce.data.schema import RetrievalSet
from hf_softnce.evaluation.metrics import as_cutoffs, code_search_metrics, first_relevant_rank
from hf_softnce.evaluation.report import CascadeResults
from hf_softnce.retrieval.cascade import COMBINE_MODES, Ranking, RetrieverRanker, _per_query


def evaluate_cascade(
    cascade: RetrieverRanker,
    retrieval_set: RetrievalSet,
    *,
    mrr_at_k: int | Iterable[int] = 1000,
    recall_at_k: int | Iterable[int] = (1, 5, 10),
    ndcg_at_k: int | Iterable[int] = (10,),
    per_query: dict | None = None,
    show_progress_bar: bool = True,
) -> CascadeResults:
    """Metrics of the retriever alone and of the cascade on the same set, and each stage's latency.

    ``show_progress_bar``: bars for encoding the codebase and the queries and for the ranker's re-scoring
    (the cascade's own ``show_progress_bar`` applies to :meth:`RetrieverRanker.search`). The timings include
    drawing the bars, a negligible share of the encoding and scoring they follow.

    ``per_query``: a dict to fill with ``{"retriever": {qid: rank}, "cascade": {qid: rank}}`` (rank of the first
    relevant code within ``max(mrr_at_k)``, 0 when absent), for paired bootstrap intervals.

    Both rankings share one retriever pass (the cascade re-ranks it), so the comparison is exact.
    Latencies are milliseconds per query, measured over the whole batch of queries; the corpus encoding
    (an index built once, cached) is done before timing starts.

    Returns:
        ``{"retriever": {"mrr@1000": ..., ...}, "cascade": {...}, "latency_ms_per_query": {"retriever": ...,
        "ranker": ..., "cascade": ...}}`` (plus ``dedup_`` metrics when the set has duplicate groups), a dict
        that prints as a Markdown table of the headline metrics and latencies.
    """
    qids = list(retrieval_set.queries)
    queries = [retrieval_set.queries[qid] for qid in qids]
    corpus = retrieval_set.corpus
    ks = as_cutoffs(mrr_at_k) + as_cutoffs(recall_at_k) + as_cutoffs(ndcg_at_k)
    depth = max(min(max(ks), len(corpus)), cascade.top_k)
    cascade._depth(depth, len(corpus))
    # Build the index outside the timed region.
    cascade._corpus_embeddings(list(corpus.values()), show_progress_bar=show_progress_bar)

    retrieved, retriever_ms = cascade._timed(cascade.retrieve, queries, corpus, depth,
                                             show_progress_bar=show_progress_bar)
    reranked, ranker_ms = cascade._timed(cascade.rerank, queries, corpus, retrieved,
                                         show_progress_bar=show_progress_bar)

    def metrics(rankings: list[Ranking]) -> dict[str, float]:
        return code_search_metrics(
            [[cid for cid, _ in ranking] for ranking in rankings],
            [retrieval_set.relevant[qid] for qid in qids],
            mrr_at_k=mrr_at_k,
            recall_at_k=recall_at_k,
            ndcg_at_k=ndcg_at_k,
            groups=retrieval_set.groups,
        )

    if per_query is not None:
        k = max(as_cutoffs(mrr_at_k))
        for stage, rankings in (("retriever", retrieved), ("cascade", reranked)):
            per_query[stage] = {qid: first_relevant_rank([cid for cid, _ in ranking], retrieval_set.relevant[qid], k)
                                for qid, ranking in zip(qids, rankings)}
    latency = _per_query({"retriever": retriever_ms, "ranker": ranker_ms}, len(qids))
    latency["cascade"] = latency["retriever"] + latency["ranker"]
    return CascadeResults(retriever=metrics(retrieved), cascade=metrics(reranked), latency_ms_per_query=latency)


def choose_cascade_setting(cascade: RetrieverRanker, retrieval_set: RetrievalSet,
                           grid: Iterable[tuple[int, str, float | None]], *, show_progress_bar: bool = True,
                           on_setting: Callable[[int, str, float | None, float], None] | None = None) -> dict:
    """The cascade's setting with the highest MRR@1000 on ``retrieval_set`` (a selection set, never the one you
    report on), and every one tried: how the main job chooses R2PS's ``top_k``, ``combine`` and ``ranker_weight``.

    Args:
        cascade: a :class:`~hf_softnce.retrieval.RetrieverRanker`; left set to the chosen ``top_k``, ``combine`` and
            ``ranker_weight`` (``top_k=0`` when the retriever alone wins).
        retrieval_set: the queries and codebase each setting is scored on (a ``top_k`` above its codebase's size is
            cut to it).
        grid: ``(top_k, combine, ranker_weight)`` settings, ``top_k`` >= 1 (``ranker_weight`` None where
            ``combine`` ignores it; under ``"add"``, None is R2PS's 1); the main job's is
            ``hf_softnce.training.cascade_row.CASCADE_GRID``.
        show_progress_bar: bars while each setting is evaluated.
        on_setting: called with ``(top_k, combine, ranker_weight, mrr)`` after each setting, e.g. to print it.

    Returns:
        ``{"top_k", "combine", "ranker_weight", "select_mrr", "retriever_select_mrr", "tried"}``; ``tried`` lists
        every setting's ``select_mrr`` in the grid's order, the retriever alone (``top_k`` 0) first: it wins a tie,
        so the cascade never ranks below its own retriever on the selection set and the ranker's cost must buy
        something. Settings are evaluated deepest first, so a memoized ``predict`` scores each pair once.

    Raises:
        ValueError: an empty grid, or a setting :class:`RetrieverRanker` would refuse (its message names it).
    """
    settings = []
    for top_k, combine, weight in grid:
        if combine == "add" and weight is None:
            weight = 1.0
        if combine not in COMBINE_MODES or not isinstance(top_k, int) or top_k < 1 or (
                combine == "add" and not weight > 0):
            raise ValueError(f"grid setting {(top_k, combine, weight)!r}: top_k must be an int >= 1, combine one of "
                             f"{COMBINE_MODES}, and an 'add' weight > 0.")
        settings.append((min(top_k, len(retrieval_set.corpus)), combine, weight if combine == "add" else None))
    if not settings:
        raise ValueError("choose_cascade_setting needs at least one (top_k, combine, ranker_weight) setting.")
    grid = list(dict.fromkeys(settings))
    combine_unset, weight_unset = cascade.combine, cascade.ranker_weight
    tried = []
    for top_k, combine, weight in sorted(grid, key=lambda setting: -setting[0]):
        cascade.top_k, cascade.combine, cascade.ranker_weight = top_k, combine, weight or weight_unset
        result = evaluate_cascade(cascade, retrieval_set, show_progress_bar=show_progress_bar)
        tried.append((result["cascade"]["mrr@1000"], top_k, combine, weight, result["retriever"]["mrr@1000"]))
        if on_setting is not None:
            on_setting(top_k, combine, weight, tried[-1][0])
    tried.sort(key=lambda t: grid.index(t[1:4]))
    tried.insert(0, (tried[0][4], 0, None, None, tried[0][4]))
    best = max(tried, key=lambda t: t[0])
    # Exactly the setting that was scored; the retriever alone (top_k 0) changes nothing else.
    cascade.top_k, cascade.combine = best[1], best[2] or combine_unset
    cascade.ranker_weight = best[3] or weight_unset
    return {"top_k": best[1], "combine": best[2], "ranker_weight": best[3], "select_mrr": best[0],
            "retriever_select_mrr": best[4],
            "tried": [{"top_k": k, "combine": c, "ranker_weight": w, "select_mrr": m} for m, k, c, w, _ in tried]}
