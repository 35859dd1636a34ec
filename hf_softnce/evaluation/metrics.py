"""Code-search metrics with binary relevance: MRR@k, Recall@k and NDCG@k over ranked code ids.

Pure functions with no model in sight: the ``evaluate`` metric module, :class:`CodeSearchEvaluator` and the
cascade evaluation all call :func:`code_search_metrics`, so every number hf_softnce reports comes from here.
Definitions match sentence-transformers' ``InformationRetrievalEvaluator`` (MRR counts the first relevant
hit; Recall@k = relevant hits in the top k / number of relevant ids; NDCG@k with gain 1 and ``log2(rank+1)``
discount, ideal DCG from ``min(k, number of relevant ids)`` hits), so the two agree on the same ranking.

Group-aware ("dedup") variant: large codebases hold duplicated functions, and a duplicate of the gold code
ranked first is not a retrieval error. With ``groups {cid: group}`` every ranked id is replaced by its group,
the ranking keeps the first occurrence of each group (it is a ranking of the deduplicated corpus) and the
gold set becomes the gold codes' groups, so any member of a gold code's group counts as a hit, once.
These numbers are reported next to the plain ones under ``dedup_<metric>@k``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence

import numpy as np

DEFAULT_MRR_AT_K = (1000,)
DEFAULT_RECALL_AT_K = (1, 5, 10)
DEFAULT_NDCG_AT_K = (10,)
DEDUP_PREFIX = "dedup_"


def first_relevant_rank(ranking: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> int:
    """1-based rank of the first relevant code within the top ``k``; 0 when none is there."""
    for rank, cid in enumerate(ranking[:k], start=1):
        if cid in relevant:
            return rank
    return 0


def reciprocal_rank(ranking: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """1 / rank of the first relevant id within the top ``k`` (0 when none is there)."""
    rank = first_relevant_rank(ranking, relevant, k)
    return 1.0 / rank if rank else 0.0


def recall(ranking: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """Share of the relevant ids found in the top ``k``."""
    return sum(cid in relevant for cid in ranking[:k]) / len(relevant)


def ndcg(ranking: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """Normalised discounted cumulative gain at ``k`` with binary gains."""
    dcg = sum(1.0 / math.log2(rank + 1) for rank, cid in enumerate(ranking[:k], start=1) if cid in relevant)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(k, len(relevant)) + 1))
    return dcg / ideal


def collapse_duplicates(
    ranking: Sequence[Hashable], relevant: Collection[Hashable], groups: Mapping[Hashable, Hashable]
) -> tuple[list[tuple], set[tuple]]:
    """Rank duplicate groups instead of codes: each id becomes its group, first occurrence kept.

    Ids without a group are groups of their own. Groups are tagged so that a group name can never equal
    an ungrouped code id.
    """

    def group_of(cid):
        return ("group", groups[cid]) if cid in groups else ("code", cid)

    seen, collapsed = set(), []
    for cid in ranking:
        group = group_of(cid)
        if group not in seen:
            seen.add(group)
            collapsed.append(group)
    return collapsed, {group_of(cid) for cid in relevant}


def as_cutoffs(ks: int | Iterable[int], what: str = "k") -> list[int]:
    """A cut-off or several, as a sorted list of distinct positive ints (an error names ``what`` otherwise)."""
    ks = [ks] if isinstance(ks, (int, np.integer)) else sorted(set(ks))
    if not ks or any(not isinstance(k, (int, np.integer)) or k < 1 for k in ks):
        raise ValueError(f"{what} must be a positive int or a non-empty list of them, got {ks!r}.")
    return [int(k) for k in ks]


def _validate(rankings: Sequence[Sequence[Hashable]], relevant: Sequence[Collection[Hashable]]) -> None:
    if len(rankings) != len(relevant):
        raise ValueError(f"Got {len(rankings)} rankings but {len(relevant)} relevant sets: one of each per query.")
    if not rankings:
        raise ValueError("No queries to evaluate.")
    for i, (ranking, gold) in enumerate(zip(rankings, relevant)):
        if not gold:
            raise ValueError(f"Query {i} has no relevant id: every query needs at least one gold code.")
        if len(set(ranking)) != len(ranking):
            raise ValueError(f"The ranking of query {i} lists the same id twice: a ranking must not repeat ids.")


def _mean_metrics(rankings, relevant, mrr_at_k, recall_at_k, ndcg_at_k) -> dict[str, float]:
    metrics = {}
    for k in mrr_at_k:
        metrics[f"mrr@{k}"] = float(np.mean([reciprocal_rank(r, g, k) for r, g in zip(rankings, relevant)]))
    for k in recall_at_k:
        metrics[f"recall@{k}"] = float(np.mean([recall(r, g, k) for r, g in zip(rankings, relevant)]))
    for k in ndcg_at_k:
        metrics[f"ndcg@{k}"] = float(np.mean([ndcg(r, g, k) for r, g in zip(rankings, relevant)]))
    return metrics


def code_search_metrics(
    rankings: Sequence[Sequence[Hashable]],
    relevant: Sequence[Collection[Hashable]],
    *,
    mrr_at_k: int | Iterable[int] = DEFAULT_MRR_AT_K,
    recall_at_k: int | Iterable[int] = DEFAULT_RECALL_AT_K,
    ndcg_at_k: int | Iterable[int] = DEFAULT_NDCG_AT_K,
    groups: Mapping[Hashable, Hashable] | None = None,
) -> dict[str, float]:
    """Mean MRR@k, Recall@k and NDCG@k over queries.

    Args:
        rankings: per query, code ids best first (the whole codebase or its top ``max(k)``).
        relevant: per query, the gold code ids (non-empty).
        mrr_at_k / recall_at_k / ndcg_at_k: a cut-off or a list of cut-offs for each metric.
        groups: optional ``{cid: duplicate group}``; adds the group-aware ``dedup_<metric>@k`` numbers.

    Returns:
        ``{"mrr@1000": ..., "recall@1": ..., "recall@5": ..., "recall@10": ..., "ndcg@10": ...}``, plus the
        same keys prefixed ``dedup_`` when ``groups`` is given.
    """
    _validate(rankings, relevant)
    ks = (
        as_cutoffs(mrr_at_k, "mrr_at_k"),
        as_cutoffs(recall_at_k, "recall_at_k"),
        as_cutoffs(ndcg_at_k, "ndcg_at_k"),
    )
    relevant = [set(gold) for gold in relevant]
    metrics = _mean_metrics(rankings, relevant, *ks)
    if groups is not None:
        collapsed = [collapse_duplicates(r, g, groups) for r, g in zip(rankings, relevant)]
        dedup = _mean_metrics([r for r, _ in collapsed], [g for _, g in collapsed], *ks)
        metrics.update({DEDUP_PREFIX + key: value for key, value in dedup.items()})
    return metrics
