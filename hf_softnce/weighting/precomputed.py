"""Relevance read from the dataset's ``label`` column (e.g. retriever scores written by the miner)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from hf_softnce.batch import CandidateBatch
from hf_softnce.weighting.base import RelevanceEstimator


class PrecomputedWeighter(RelevanceEstimator):
    """Per-row relevance of the hard-negative columns, from ``label = [r_pos, r_neg_1, ..., r_neg_k]``.

    The label list has one score per candidate column, the positive's first (the layout
    :class:`~hf_softnce.mining.RankingHardNegativeMiner` writes with ``output_scores=True``); the positive's
    score is not used for weighting, only by ``SoftInfoNCELoss(variant="remove_threshold")`` as ``r_ii``. Candidates a row has no score for (other rows' positives and
    negatives) get the lowest hard-negative score of the batch: random in-batch codes are taken to be at
    most as relevant as the least relevant mined negative.

    Args:
        allow_negative: accept negative scores (signed similarities); by default they are rejected.
    Defaults: alpha=1.3, beta=0.7, temperature=0.1 (the paper's settings for cosine-scale relevance).
    """

    default_alpha, default_beta, default_temperature = 1.3, 0.7, 0.1

    def __init__(self, allow_negative: bool = False) -> None:
        self.allow_negative = allow_negative
        self.signed = allow_negative

    def relevance(self, batch: CandidateBatch) -> Tensor:
        labels = batch.labels
        if labels is None:
            raise ValueError(
                "PrecomputedWeighter needs a 'label' column: a list of relevance scores per row, one per "
                "candidate column (positive first)."
            )
        labels = labels.float()
        if labels.ndim != 2 or labels.shape != (batch.batch_size, batch.num_columns):
            raise ValueError(
                f"PrecomputedWeighter: 'label' has shape {tuple(labels.shape)} but the batch has "
                f"{batch.batch_size} rows and {batch.num_columns} candidate columns (positive + negatives): "
                "give one score per candidate column, the positive's first."
            )
        if batch.num_columns < 2:
            raise ValueError("PrecomputedWeighter scores hard negatives, but the batch has no negative_* column.")
        # The whole (gathered) batch's lowest score, so every rank fills alike.
        fill = (batch.global_labels if batch.global_labels is not None else labels).float()[:, 1:].min()
        # A device tensor, not float(fill): no host synchronisation in the step.
        device = batch.negative_mask.device
        relevance = fill.to(device).expand(batch.batch_size, batch.negative_mask.shape[1]).clone()
        # The positive's own score too: the released threshold baseline compares negatives with it.
        relevance.scatter_(1, batch.own_column_indices(), labels.to(device, relevance.dtype))
        return relevance

    def get_config_dict(self) -> dict[str, Any]:
        return {"name": type(self).__name__, "allow_negative": self.allow_negative}
