"""Results as people read them: a short Markdown table of the headline metrics, and dictionaries without
duplicated keys for the JSON files.

:class:`~hf_softnce.evaluation.CodeSearchEvaluator` returns sentence-transformers' keys (``{name}_cosine_mrr@1000``)
beside its headline keys (``{name}_mrr@1000``) with the same values, so that it stays a drop-in
``InformationRetrievalEvaluator``; what hf_softnce prints or saves keeps one copy of each number.
"""

from __future__ import annotations

from collections.abc import Mapping

# (metric key, column title, digits) of the headline table.
HEADLINE = (("mrr@1000", "MRR@1000", 4), ("recall@1", "R@1", 3), ("recall@5", "R@5", 3), ("recall@10", "R@10", 3),
            ("ndcg@10", "NDCG@10", 4))
SCORE_FUNCTIONS = ("cosine", "dot", "euclidean", "manhattan")


def drop_duplicate_keys(metrics: Mapping[str, float]) -> dict[str, float]:
    """``metrics`` without the ``{score function}_`` keys whose value is already under the key without it."""
    kept = {}
    for key, value in metrics.items():
        plain = _without_score_function(key)
        if plain != key and plain in metrics and metrics[plain] == value:
            continue
        kept[key] = value
    return kept


def _without_score_function(key: str) -> str:
    for function in SCORE_FUNCTIONS:
        marker = f"{function}_"
        if key.startswith(marker):
            return key[len(marker):]
        if f"_{marker}" in key:
            return key.replace(f"_{marker}", "_", 1)
    return key


def headline(metrics: Mapping[str, float], prefix: str = "") -> dict[str, float]:
    """The headline numbers (``mrr@1000``, ``recall@1/5/10``, ``ndcg@10``) found under ``prefix``, unprefixed."""
    found = {}
    for key, _, _ in HEADLINE:
        name = f"{prefix}_{key}" if prefix else key
        if name in metrics:
            found[key] = metrics[name]
    return found


def markdown_table(rows: Mapping[str, Mapping[str, float]], *, first_column: str = "model",
                   extra: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """A Markdown table: one row per entry of ``rows`` (its headline metrics), then ``extra`` columns.

    ``extra``: ``{row: {column title: text}}`` (e.g. the number of queries, a difference to the base model).
    """
    extra = extra or {}
    present = [(key, title, digits) for key, title, digits in HEADLINE if any(key in row for row in rows.values())]
    extra_titles = list(dict.fromkeys(title for columns in extra.values() for title in columns))
    lines = ["| " + " | ".join([first_column, *(title for _, title, _ in present), *extra_titles]) + " |",
             "|" + "---|" * (1 + len(present) + len(extra_titles))]
    for label, row in rows.items():
        cells = [f"{row[key]:.{digits}f}" if key in row else "–" for key, _, digits in present]
        cells += [extra.get(label, {}).get(title, "–") for title in extra_titles]
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join(lines)


class CascadeResults(dict):
    """:func:`~hf_softnce.retrieval.evaluate_cascade`'s dictionary, printed as a table (retriever vs cascade)."""

    def __str__(self) -> str:
        latency = self.get("latency_ms_per_query", {})
        rows = {stage: self[stage] for stage in ("retriever", "cascade") if stage in self}
        extra = {stage: {"ms/query": f"{latency[stage]:.1f}"} for stage in rows if stage in latency}
        return markdown_table(rows, first_column="stage", extra=extra)


def split_by_set(metrics: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """``{"test_mrr@1000": .., "cosqa-dev_dedup_mrr@1000": ..}`` -> ``{"test": {"mrr@1000": ..}, "cosqa-dev": {..}}``.

    Keys are split before the longest known metric name they end with (``dedup_`` and score-function prefixes
    included); keys with no known metric are left out.
    """
    names = [key for key, _, _ in HEADLINE]
    known = sorted({*names, *(f"dedup_{name}" for name in names)}, key=len, reverse=True)
    by_set: dict[str, dict[str, float]] = {}
    for key, value in drop_duplicate_keys(metrics).items():
        metric = next((name for name in known if key.endswith(f"_{name}")), None)
        if metric is not None:
            by_set.setdefault(key[: -len(metric) - 1], {})[metric] = value
    return by_set
