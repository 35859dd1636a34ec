"""Uniform relevance: every negative alike, which makes SoftInfoNCE plain InfoNCE."""

from __future__ import annotations

import torch
from torch import Tensor

from hf_softnce.weighting.base import RelevanceEstimator
from hf_softnce.weighting.batch import CandidateBatch


class UniformWeighter(RelevanceEstimator):
    """All candidates equally relevant: weights are exactly 1 and the loss is MultipleNegativesRankingLoss."""

    def relevance(self, batch: CandidateBatch) -> Tensor:
        return torch.zeros(batch.negative_mask.shape, device=batch.negative_mask.device)
