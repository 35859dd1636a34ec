"""The Soft-InfoNCE paper's comparison baselines, chosen with ``SoftInfoNCELoss(variant=...)``.

Each baseline is one objective over the batch SoftInfoNCELoss scores and the weighter's relevance, a function
``(loss, scores, batch) -> loss value`` in :data:`BASELINES`; the loss's settings (``alpha``, ``beta``,
``weight_temperature``, ``remove_top_k``, ``threshold_ratio``) are read from ``loss``. A baseline that removes
negatives scores InfoNCE on a copy of the batch with a narrower ``negative_mask``: the batch the loss built is
never edited.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from hf_softnce.batch import CandidateBatch

if TYPE_CHECKING:
    from hf_softnce.losses.soft_infonce import SoftInfoNCELoss


def relevance_distribution(loss: SoftInfoNCELoss, batch: CandidateBatch) -> Tensor:
    """``p_ij``: softmax of ``r_ij / t`` over each row's negatives (0 elsewhere), without gradient."""
    relevance = loss.estimate_relevance(loss.weighter, batch)
    logits = (relevance / loss.weight_temperature).masked_fill(~batch.negative_mask, float("-inf"))
    return torch.softmax(logits, dim=1).nan_to_num(0.0)


def top_k_removed(loss: SoftInfoNCELoss, batch: CandidateBatch, probabilities: Tensor) -> Tensor:
    """Each row's ``loss.remove_top_k`` most relevant negatives (released GraphCodeBERT/run.py,
    ``args.falsecancel``: ``torch.sort(sim_neg, descending=True)`` then keep ``indices[:, args.topk:]``)."""
    k = min(loss.remove_top_k, probabilities.shape[1])
    top = probabilities.masked_fill(~batch.negative_mask, -1.0).topk(k, dim=1).indices
    return torch.zeros_like(batch.negative_mask).scatter_(1, top, True) & batch.negative_mask


def threshold_removed(loss: SoftInfoNCELoss, batch: CandidateBatch) -> Tensor:
    """Negatives with ``r_ij >= ratio * r_ii``, ``r_ii`` the relevance of the row's own positive. The released rule
    (GraphCodeBERT/run.py, the "# threshold" block under ``args.falsecancel``:
    ``mask[i][sim_neg[i] < args.ratio * pos_sim[i]] = 1``, ``pos_sim = sim_matrix[loss_mask == 1]``) keeps a
    negative only below that bound; it compares raw relevance, not the softmax ``p_ij``."""
    relevance = loss.estimate_relevance(loss.weighter, batch)
    rows = torch.arange(batch.batch_size, device=relevance.device)
    positive_relevance = relevance[rows, batch.local_rows]
    if not bool(torch.isfinite(positive_relevance).all()):
        raise ValueError(
            f"{type(loss.weighter).__name__} gave no finite relevance for some queries' own positives, which "
            "variant='remove_threshold' compares every negative with."
        )
    return batch.negative_mask & ~(relevance < loss.threshold_ratio * positive_relevance[:, None])


def _without(batch: CandidateBatch, removed: Tensor) -> CandidateBatch:
    return dataclasses.replace(batch, negative_mask=batch.negative_mask & ~removed)


def remove_top_k(loss: SoftInfoNCELoss, scores: Tensor, batch: CandidateBatch) -> Tensor:
    """InfoNCE without each query's ``remove_top_k`` most relevant negatives."""
    removed = top_k_removed(loss, batch, relevance_distribution(loss, batch))
    return loss.infonce(scores, _without(batch, removed))


def remove_threshold(loss: SoftInfoNCELoss, scores: Tensor, batch: CandidateBatch) -> Tensor:
    """InfoNCE over the negatives less relevant than ``threshold_ratio`` times the query's own positive."""
    return loss.infonce(scores, _without(batch, threshold_removed(loss, batch)))


def _log_probs_and_targets(scores: Tensor, batch: CandidateBatch, probabilities: Tensor):
    """Over each row's positive and negatives: the model's log-softmax and the soft targets ``[1, p_i]``."""
    rows = torch.arange(batch.batch_size, device=scores.device)
    kept = batch.negative_mask.clone()
    kept[rows, batch.local_rows] = True
    log_probs = torch.log_softmax(scores.masked_fill(~kept, float("-inf")), dim=1)
    targets = probabilities.clone()
    targets[rows, batch.local_rows] = 1.0
    return kept, log_probs, targets


def weighted_infonce(loss: SoftInfoNCELoss, scores: Tensor, batch: CandidateBatch) -> Tensor:
    """Cross-entropy of the model's softmax with the soft targets ``[1, p_i]``."""
    kept, log_probs, targets = _log_probs_and_targets(scores, batch, relevance_distribution(loss, batch))
    return -(targets * log_probs.masked_fill(~kept, 0.0)).sum(dim=1).mean()


def bce(loss: SoftInfoNCELoss, scores: Tensor, batch: CandidateBatch) -> Tensor:
    """Binary cross-entropy of the model's softmax against ``[1, p_i]``, averaged over the kept pairs."""
    kept, log_probs, targets = _log_probs_and_targets(scores, batch, relevance_distribution(loss, batch))
    # The mean over the kept pairs, without boolean indexing (a data-dependent shape syncs a GPU).
    terms = F.binary_cross_entropy(log_probs.exp(), targets.clamp(max=1.0), reduction="none")
    return (terms * kept).sum() / kept.sum()


def kl_regularized(loss: SoftInfoNCELoss, scores: Tensor, batch: CandidateBatch) -> Tensor:
    """``beta * InfoNCE + alpha * KL(p_i || the model's softmax over the negatives)``."""
    probabilities = relevance_distribution(loss, batch)
    negative_log_probs = torch.log_softmax(scores.masked_fill(~batch.negative_mask, float("-inf")), dim=1)
    kl_terms = torch.where(
        probabilities > 0, probabilities * (probabilities.clamp(min=1e-30).log() - negative_log_probs), 0.0
    )
    return loss.beta * loss.infonce(scores, batch) + loss.alpha * kl_terms.sum(dim=1).mean()


Baseline = Callable[["SoftInfoNCELoss", Tensor, CandidateBatch], Tensor]

BASELINES: dict[str, Baseline] = {
    "weighted_infonce": weighted_infonce,
    "kl_regularized": kl_regularized,
    "bce": bce,
    "remove_top_k": remove_top_k,
    "remove_threshold": remove_threshold,
}
