"""Evaluate several retrieval sets at once, encoding each distinct corpus only once.

Two halves of one split (e.g. CoSQA dev, one to select on and one to report) share a 6,267-function codebase;
ranking their queries together halves the dominant cost, the corpus encoding.
"""

from __future__ import annotations

import sys

from hf_softnce.data.schema import RetrievalSet
from hf_softnce.evaluation.evaluator import CodeSearchEvaluator
from hf_softnce.evaluation.metrics import code_search_metrics, first_relevant_rank


def evaluate_retrieval_sets(
    model, sets: dict[str, RetrievalSet], *, batch_size: int = 64, per_query: dict | None = None,
    show_progress_bar: bool = True, remember_embeddings: bool = False,
) -> dict[str, float]:
    """``{f"{name}_{metric}": value}`` for every named set, as :class:`CodeSearchEvaluator` would report them.

    ``per_query``: a dict to fill with ``{name: {query_id: rank of the first relevant code}}`` (0 when it is not
    in the top ``max(mrr_at_k)``), the per-query values that paired bootstrap intervals
    (:mod:`hf_softnce.evaluation.bootstrap`) resample.

    ``show_progress_bar``: say which sets are ranked and show the encoding bars (the whole codebase can take
    minutes on a CPU).

    ``remember_embeddings``: keep each corpus's embeddings for a later encode by the same weights in this process
    (:class:`CodeSearchEvaluator`'s argument).
    """
    by_corpus: dict[int, list[str]] = {}
    for name, retrieval_set in sets.items():
        by_corpus.setdefault(id(retrieval_set.corpus), []).append(name)
    metrics: dict[str, float] = {}
    for names in by_corpus.values():
        first = sets[names[0]]
        union = RetrievalSet(
            queries={f"{n}\x00{q}": text for n in names for q, text in sets[n].queries.items()},
            corpus=first.corpus,
            relevant={f"{n}\x00{q}": gold for n in names for q, gold in sets[n].relevant.items()},
            groups=first.groups,
            name="union",
        )
        if show_progress_bar:
            print(f"Evaluating on {', '.join(names)}: {len(union.queries):,} queries against the whole codebase "
                  f"({len(union.corpus):,} codes)", file=sys.stderr)
        evaluator = CodeSearchEvaluator(union, batch_size=batch_size, write_csv=False,
                                        show_progress_bar=show_progress_bar,
                                        remember_embeddings=remember_embeddings)
        ranking_of = dict(zip(evaluator.query_ids, evaluator.rank(model)))
        for name in names:
            qids = [f"{name}\x00{q}" for q in sets[name].queries]
            reference = CodeSearchEvaluator(sets[name], name=name, write_csv=False)
            values = code_search_metrics(
                [ranking_of[q] for q in qids],
                [union.relevant[q] for q in qids],
                mrr_at_k=reference.mrr_at_k,
                recall_at_k=reference.recall_at_k,
                ndcg_at_k=reference.ndcg_at_k,
                groups=sets[name].groups,
            )
            metrics.update({f"{name}_{key}": value for key, value in values.items()})
            if per_query is not None:
                k = max(reference.mrr_at_k)
                per_query[name] = {q.split("\x00", 1)[1]: first_relevant_rank(ranking_of[q], union.relevant[q], k)
                                   for q in qids}
    return metrics
