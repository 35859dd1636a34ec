"""Paired bootstrap intervals for differences between models evaluated on the same queries.

500 real queries carry about ±0.02 of noise in MRR; two models ranked on the *same* queries differ far less
noisily, because most of the noise is which queries are hard. Resampling queries with replacement and taking
the mean difference of each resample gives a 95% interval for the difference (Koehn 2004; Efron & Tibshirani
1993, percentile interval). Every comparison of one table uses the same resamples, so the rows are comparable.

The input is what the evaluators return per query — the rank of the first relevant code — and the metric is
named in the call: the per-query value it compares is derived here, with the metric's cut-off. Averaging ranks
and calling the difference "MRR" (a difference of mean ranks of +0.08 between two models whose MRR@1000 is 0.4659
and 0.4660) is the mistake this shape rules out. Per-query reciprocal ranks (e.g. averaged over seeds) are
accepted only when the call says so (``given="reciprocal_ranks"``) and are checked to be in [0, 1].
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

RANKS, RECIPROCAL_RANKS = "ranks", "reciprocal_ranks"
_METRIC = re.compile(r"(mrr|success)@([1-9][0-9]*)")


@dataclass(frozen=True)
class Difference:
    """``value`` = mean(a) - mean(b) of ``metric`` over the queries; ``low``/``high`` its percentile interval."""

    value: float
    low: float
    high: float
    level: float = 0.95
    metric: str = "MRR"

    @property
    def supported(self) -> bool:
        """True when the interval excludes 0: the data support a difference in the sign of ``value``."""
        return self.low > 0 or self.high < 0

    def describe(self) -> str:
        """The difference in the words a user reads: what the interval supports and nothing more."""
        half = (self.high - self.low) / 2
        interval = f"{self.level:.0%} CI [{self.low:+.3f}, {self.high:+.3f}]"
        if not self.supported:
            return f"no measurable difference in {self.metric} ({self.value:+.3f}, {interval})"
        word = "better" if self.value > 0 else "worse"
        return f"{word} by {abs(self.value):.3f} ± {half:.3f} {self.metric} ({interval})"

    def to_dict(self) -> dict:
        return {"metric": self.metric, "diff": self.value, "low": self.low, "high": self.high, "level": self.level,
                "supported": self.supported}


def parse_metric(metric: str) -> tuple[str, int]:
    """``"mrr@1000"`` -> ``("mrr", 1000)``; ``success@k``: a relevant code in the top k (= recall@k for one gold)."""
    match = _METRIC.fullmatch(str(metric).lower())
    if match is None:
        raise ValueError(f"metric must be 'mrr@K' or 'success@K' (e.g. 'mrr@1000'), got {metric!r}.")
    return match.group(1), int(match.group(2))


def per_query_values(ranks: dict, metric: str = "mrr@1000") -> dict:
    """``{query: rank}`` -> ``{query: value of metric}``; rank 0 or None (not found) and ranks beyond K give 0."""
    kind, k = parse_metric(metric)
    values = {}
    for qid, rank in ranks.items():
        if rank is None:
            rank = 0
        if isinstance(rank, bool) or not float(rank).is_integer() or rank < 0:
            raise ValueError(
                f"PairedBootstrap: query {qid!r} has rank {rank!r}; ranks are 1-based ints (0 or None: not found). "
                "For per-query reciprocal ranks pass given='reciprocal_ranks'."
            )
        found = 0 < rank <= k
        values[qid] = (1.0 / rank if kind == "mrr" else 1.0) if found else 0.0
    return values


class PairedBootstrap:
    """Fixed query resamples shared by every comparison on one query set.

    Args:
        query_ids: the queries, in a fixed order; per-query values are looked up by id, so models evaluated
            in any order compare query by query.
        n_resamples: bootstrap resamples (2,000 gives the 2.5/97.5 percentiles to about ±0.001 here).
        seed: the resamples are a function of the seed and the number of queries only.
        level: the interval's coverage.

    Example::

        ranks = {}
        evaluate_retrieval_sets(model_a, {"a": test_set}, per_query=ranks)
        evaluate_retrieval_sets(model_b, {"b": test_set}, per_query=ranks)
        boot = PairedBootstrap(ranks["a"])
        boot.difference(ranks["a"], ranks["b"], metric="mrr@1000").describe()  # "better by 0.021 ± 0.009 MRR@1000 (...)"
    """

    def __init__(self, query_ids, n_resamples: int = 2000, seed: int = 0, level: float = 0.95):
        self.query_ids = list(query_ids)
        if not self.query_ids:
            raise ValueError("PairedBootstrap needs at least one query.")
        if len(set(self.query_ids)) != len(self.query_ids):
            raise ValueError("PairedBootstrap: query ids must be unique.")
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level}.")
        self.level = level
        rng = np.random.default_rng(seed)
        self.indices = rng.integers(0, len(self.query_ids), size=(n_resamples, len(self.query_ids)))

    def _vector(self, per_query: dict) -> np.ndarray:
        missing = [qid for qid in self.query_ids if qid not in per_query]
        if missing:
            raise KeyError(f"PairedBootstrap: {len(missing)} of {len(self.query_ids)} queries have no value "
                           f"(first: {missing[0]!r}).")
        return np.array([per_query[qid] for qid in self.query_ids], dtype=np.float64)

    def difference(self, a: dict, b: dict, *, metric: str = "mrr@1000", given: str = RANKS) -> Difference:
        """``metric`` of model a minus model b with its paired percentile interval.

        Args:
            a, b: ``{query_id: rank of the first relevant code}`` (0 or None: not found), as
                ``evaluate_retrieval_sets(..., per_query=...)`` and ``evaluate_cascade(..., per_query=...)`` fill them.
            metric: ``"mrr@K"`` (reciprocal rank, 0 beyond rank K) or ``"success@K"``.
            given: ``"ranks"``, or ``"reciprocal_ranks"`` for per-query reciprocal ranks already cut off (values
                in [0, 1], e.g. averaged over seeds); then ``metric`` must be an MRR.
        """
        kind, _ = parse_metric(metric)
        if given == RANKS:
            a, b = per_query_values(a, metric), per_query_values(b, metric)
        elif given == RECIPROCAL_RANKS:
            if kind != "mrr":
                raise ValueError(f"given='reciprocal_ranks' compares an MRR, not {metric!r}.")
            for values in (a, b):
                bad = next((qid for qid, value in values.items() if not 0.0 <= value <= 1.0), None)
                if bad is not None:
                    raise ValueError(f"PairedBootstrap: query {bad!r} has reciprocal rank {values[bad]!r}, outside "
                                     "[0, 1]; for ranks pass given='ranks'.")
        else:
            raise ValueError(f"given must be {RANKS!r} or {RECIPROCAL_RANKS!r}, got {given!r}.")
        delta = self._vector(a) - self._vector(b)
        resampled = delta[self.indices].mean(axis=1)
        tail = (1 - self.level) / 2 * 100
        low, high = np.percentile(resampled, [tail, 100 - tail])
        return Difference(float(delta.mean()), float(low), float(high), self.level, metric=_display(metric))


def _display(metric: str) -> str:
    kind, k = parse_metric(metric)
    return f"{'MRR' if kind == 'mrr' else 'Success'}@{k}"
