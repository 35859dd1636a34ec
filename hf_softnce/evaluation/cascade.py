"""Evaluation of the retriever->ranker cascade: the retriever alone and the cascade on the same retriever pass.

It lives with the evaluators, not with the cascade: evaluation imports retrieval (search, the cascade), never
the other way round, so the search primitives stay importable without the metrics.
"""

from __future__ import annotations

from collections.abc import Iterable

from hf_softnce.data.schema import RetrievalSet
from hf_softnce.evaluation.metrics import as_cutoffs, code_search_metrics, first_relevant_rank
from hf_softnce.evaluation.report import CascadeResults
from hf_softnce.retrieval.cascade import Ranking, RetrieverRanker, _per_query


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
