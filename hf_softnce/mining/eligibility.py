"""Which retrieved candidates may serve as negatives: not excluded, and below the positive by a margin.

Margins follow sentence-transformers' ``mine_hard_negatives``: the absolute margin drops candidates scoring
above ``positive - margin``; the relative margin drops those above ``positive - |positive| * margin``, which is
``positive * (1 - margin)`` for the usual non-negative positive score and stays a *lower* bar when it is
negative (sentence-transformers #3819).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Eligibility:
    eligible: Tensor  # (rows, depth) bool
    dropped_by_absolute_margin: Tensor  # (rows, depth) bool, among non-excluded candidates
    dropped_by_relative_margin: Tensor


def eligible_candidates(
    indices: Tensor,
    scores: Tensor,
    group_ids: Tensor,
    excluded_groups: Tensor,
    positive_scores: Tensor,
    *,
    absolute_margin: float | None = None,
    relative_margin: float | None = None,
) -> Eligibility:
    """Mask of usable candidates.

    Args:
        indices / scores: ``(rows, depth)`` retrieved corpus rows and their scores, best first.
        group_ids: ``(N,)`` group id of every corpus entry.
        excluded_groups: ``(rows, m)`` groups each row must not draw from (padding never matches).
        positive_scores: ``(rows,)`` the retriever's score of each row's positive.
    """
    candidate_groups = group_ids[indices]
    excluded = (candidate_groups.unsqueeze(-1) == excluded_groups.unsqueeze(1)).any(dim=-1)
    kept = ~excluded
    by_absolute = torch.zeros_like(kept)
    by_relative = torch.zeros_like(kept)
    if absolute_margin is not None:
        by_absolute = kept & (scores > (positive_scores - absolute_margin).unsqueeze(1))
    if relative_margin is not None:
        threshold = positive_scores - positive_scores.abs() * relative_margin
        by_relative = kept & (scores > threshold.unsqueeze(1))
    return Eligibility(kept & ~by_absolute & ~by_relative, by_absolute, by_relative)
