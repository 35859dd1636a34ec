"""SoftInfoNCELoss: InfoNCE with a relevance-based weight on every negative (Li et al., EMNLP 2023)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from sentence_transformers.util import cos_sim

from hf_softnce.defaults import credit_packaged_model
from hf_softnce.losses.negative_core import NegativeAwareLoss, check_estimator, check_finite, soft_negative_weights
from hf_softnce.weighting.base import RelevanceEstimator
from hf_softnce.weighting.batch import CandidateBatch
from hf_softnce.weighting.uniform import UniformWeighter

Variant = Literal[
    "soft_infonce", "weighted_infonce", "kl_regularized", "bce", "remove_top_k", "remove_threshold"
]
VARIANTS = ("soft_infonce", "weighted_infonce", "kl_regularized", "bce", "remove_top_k", "remove_threshold")


class SoftInfoNCELoss(NegativeAwareLoss):
    def __init__(
        self,
        model,
        weighter: RelevanceEstimator | None = None,
        *,
        alpha: float | None = None,
        beta: float | None = None,
        weight_temperature: float | None = None,
        min_weight: float = 0.1,
        scale: float = 20.0,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = cos_sim,
        gather_across_devices: bool = False,
        mask_duplicates: bool = True,
        duplicate_groups: Mapping[str, Hashable] | Any | None = None,
        variant: Variant = "soft_infonce",
        remove_top_k: int = 1,
        threshold_ratio: float = 1.0,
    ) -> None:
        """
        Soft-InfoNCE inserts a weight on every negative pair in InfoNCE's denominator:

        .. math::

            L_i = -\\log \\frac{e^{s_{ii}}}{e^{s_{ii}} + \\sum_{j \\ne i} w_{ij} e^{s_{ij}}},\\quad
            w_{ij} = \\max\\Big(0.1, \\frac{\\beta - \\alpha p_{ij}}{\\beta - \\alpha / n_i}\\Big),\\quad
            p_{ij} = \\mathrm{softmax}_j(r_{ij} / t)

        where ``r_ij`` is an estimated relevance of negative ``j`` to query ``i`` (from a ``weighter``) and ``n_i``
        the number of negatives of query ``i``. Relevant negatives (likely false or near-false negatives) are
        pushed away less. Before clipping a row's weights sum to ``n_i``; uniform relevance gives ``w = 1``,
        i.e. exactly :class:`~sentence_transformers.losses.MultipleNegativesRankingLoss`. Computed in log space
        (``logsumexp(s + log w)``), so it is stable under fp16/bf16 autocast. A candidate that is a duplicate of
        the query's own positive (same tokens, or the same ``duplicate_groups`` group) is removed from its
        negatives, not down-weighted.

        Args:
            model: SentenceTransformer model
            weighter: a relevance estimator from :mod:`hf_softnce.weighting` (BM25Weighter, EmbeddingWeighter,
                TrainedModelWeighter, PrecomputedWeighter); ``None`` means uniform, i.e. InfoNCE.
            alpha, beta, weight_temperature: the weight formula's settings; ``None`` takes the weighter's paper
                defaults (BM25: 1.5/0.5/1, SimCSE embedding: 1.3/0.7/0.1, trained model: 1.3/0.7/5). Finite
                numbers. A row with too few negatives for the formula (``beta - alpha / n <= 0``, e.g. a
                sampler's tail batch) is trained with uniform weights; such rows are counted on the device and
                reported, with one warning, by ``loss.undefined_weight_rows`` (and in ``get_config_dict``).
            min_weight: lower clip of the weights (the paper's 0.1).
            scale: similarity scale (inverse temperature), as in MultipleNegativesRankingLoss.
            similarity_fct: similarity between embeddings (cosine by default).
            gather_across_devices: gather queries and every candidate column from all ranks (with gradient),
                so each rank scores its queries against the global batch.
                Local batches may differ in size (a last batch without ``dataloader_drop_last``): they are padded
                to the largest and the padding masked, which gives the one-process loss on all rows.
            mask_duplicates: remove candidates identical to (or in the duplicate group of) the query's positive.
            duplicate_groups: ``{code: dup_group}`` or a Dataset with ``code``/``dup_group`` columns (from
                :mod:`hf_softnce.data`), to remove near-duplicates of the positive too.
            variant: ``"soft_infonce"`` (default) or one of the paper's comparison baselines, sharing this code
                path and the weighter's ``p_ij``: ``"weighted_infonce"`` (cross-entropy with soft targets
                ``[1, p_i]``), ``"kl_regularized"`` (``beta * InfoNCE + alpha * KL(p_i || softmax over
                negatives)``), ``"bce"`` (binary cross-entropy of the softmax against ``[1, p_i]``),
                ``"remove_top_k"`` (drop each query's ``remove_top_k`` most relevant negatives),
                ``"remove_threshold"`` (keep a negative only if its relevance is below ``threshold_ratio``
                times the relevance of the query's own positive, ``r_ij < ratio * r_ii``: the released rule).
            remove_top_k: negatives removed per query by ``variant="remove_top_k"`` (released ``--topk``, 1).
            threshold_ratio: ``ratio`` of ``variant="remove_threshold"`` (released ``--ratio``, default 1).

        References:
            - Li et al., Rethinking Negative Pairs in Code Search, EMNLP 2023: https://arxiv.org/abs/2310.08069

        Requirements:
            1. (query, code) pairs or (query, code, negative_1, ..., negative_n) tuples
            2. a ``label`` column only for :class:`~hf_softnce.weighting.PrecomputedWeighter`

        Inputs:
            +------------------------------------------------+------------------------------------------+
            | Texts                                          | Labels                                   |
            +================================================+==========================================+
            | (query, code) pairs                            | none                                     |
            +------------------------------------------------+------------------------------------------+
            | (query, code, negative_1, ..., negative_n)     | none, or one relevance per code column   |
            +------------------------------------------------+------------------------------------------+

        Recommendations:
            - Give every query enough negatives: the weight formula needs ``beta - alpha / n > 0``, i.e. more than
              ``alpha / beta`` negatives per query (BM25's 1.5 / 0.5: at least 4; 1.3 / 0.7: at least 2). A
              query with fewer (a small tail batch) is trained with uniform weights and counted in
              ``undefined_weight_rows``; a batch of 32 pairs gives each query 31 negatives, far above the bound.
            - To reproduce the paper's BM25 setting use ``BM25Weighter(idf="batch")``: its alpha / beta / t were
              tuned on the released per-batch score. The default ``idf="corpus"`` is stable across batch sizes
              and never negative, but the same alpha / beta / t then weigh differently.
            - Pass ``duplicate_groups=train`` (a dataset with a ``dup_group`` column, as hf_softnce's loaders
              give) and train with ``batch_sampler=BatchSamplers.NO_DUPLICATES``: a duplicate of the positive is
              a false negative, which weights only soften but removal takes out.
            - ``TrainedModelWeighter`` needs a separate, frozen retriever (one trained with ``weighter=None``):
              weights from the model being trained drift with it, so sharing parameters is an error.
            - For batches larger than memory allows, use :class:`CachedSoftInfoNCELoss` (same loss and
              gradients).

        Relations:
            - With ``weighter=None`` it equals :class:`~sentence_transformers.losses.MultipleNegativesRankingLoss`
              (to float precision, value and gradients), and a model card names and cites it as InfoNCE.
            - :class:`~sentence_transformers.losses.MultipleNegativesRankingLoss` with ``hardness_mode`` raises
              the weight of the hardest negatives; Soft-InfoNCE lowers the weight of the most relevant ones.
            - :class:`~sentence_transformers.losses.GISTEmbedLoss` removes candidates a guide model scores above
              the positive: a hard version of ``TrainedModelWeighter``.
            - :class:`CachedSoftInfoNCELoss` computes the same loss with GradCache, for large batches.

        Example:
            ::

                from datasets import Dataset
                from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
                from hf_softnce.defaults import default_model_path
                from hf_softnce.losses import SoftInfoNCELoss
                from hf_softnce.weighting import BM25Weighter

                model = SentenceTransformer(default_model_path())   # or "sentence-transformers/all-MiniLM-L6-v2"
                train_dataset = Dataset.from_dict({
                    "query": ["sort a list", "read a json file", "add two numbers", "reverse a string"],
                    "code": ["def sort(xs): return sorted(xs)", "def load(p): return json.load(open(p))",
                             "def add(a, b): return a + b", "def rev(s): return s[::-1]"],
                    "negative_1": ["def first(xs): return xs[0]", "def save(p, d): json.dump(d, open(p, 'w'))",
                                 "def mul(a, b): return a * b", "def upper(s): return s.upper()"],
                })
                loss = SoftInfoNCELoss(model, BM25Weighter().fit(train_dataset))   # alpha 1.5, beta 0.5, t 1
                trainer = SentenceTransformerTrainer(model=model, train_dataset=train_dataset, loss=loss)
                trainer.train()
        """
        check_estimator(type(self).__name__, "weighter", weighter)
        super().__init__(
            model,
            scale=scale,
            similarity_fct=similarity_fct,
            gather_across_devices=gather_across_devices,
            mask_duplicates=mask_duplicates,
            duplicate_groups=duplicate_groups,
        )
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}.")
        self.weighter = weighter if weighter is not None else UniformWeighter()
        self.alpha = self.weighter.default_alpha if alpha is None else alpha
        self.beta = self.weighter.default_beta if beta is None else beta
        self.weight_temperature = (
            self.weighter.default_temperature if weight_temperature is None else weight_temperature
        )
        check_finite(
            type(self).__name__, alpha=self.alpha, beta=self.beta, weight_temperature=self.weight_temperature
        )
        if not self.weight_temperature > 0:
            raise ValueError(f"weight_temperature must be positive, got {self.weight_temperature}.")
        if min_weight < 0:
            raise ValueError(f"min_weight must be >= 0, got {min_weight}.")
        self.min_weight = min_weight
        self.variant = variant
        self.remove_top_k = remove_top_k
        self.threshold_ratio = threshold_ratio
        self.weighter.bind(model)
        credit_packaged_model(model)  # the card sentence-transformers writes names the base model

    def estimators(self) -> list[RelevanceEstimator]:
        return [self.weighter]

    @property
    def is_uniform(self) -> bool:
        return isinstance(self.weighter, UniformWeighter)

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        sentence_features = list(sentence_features)
        self.sync_tokenization(sentence_features)
        hashes = self.column_hashes(sentence_features)
        return self.compute_loss_from_embeddings(self.embed(sentence_features), labels, hashes)

    def batch_loss(self, scores: Tensor, batch: CandidateBatch) -> Tensor:
        if self.variant == "soft_infonce":
            if self.is_uniform:
                return self.infonce(scores, batch)  # w = 1 exactly: the MNRL fast path
            weights = self.negative_weights(batch)
            return self.infonce(scores, batch, torch.log(weights).masked_fill(~batch.negative_mask, 0.0))
        if self.variant == "remove_threshold":
            batch.negative_mask = batch.negative_mask & ~self.threshold_removed_negatives(batch)
            return self.infonce(scores, batch)
        probabilities = self.relevance_distribution(batch)
        if self.variant == "remove_top_k":
            batch.negative_mask = batch.negative_mask & ~self.removed_negatives(batch, probabilities)
            return self.infonce(scores, batch)
        return self.soft_target_loss(scores, batch, probabilities)

    # ----- weights ------------------------------------------------------------------------------------
    def negative_weights(self, batch: CandidateBatch) -> Tensor:
        relevance = self.estimate_relevance(self.weighter, batch)
        return soft_negative_weights(
            relevance,
            batch.negative_mask,
            self.alpha,
            self.beta,
            self.weight_temperature,
            self.min_weight,
            undefined_rows=self.count_undefined_rows(relevance.device),
        )

    def relevance_distribution(self, batch: CandidateBatch) -> Tensor:
        """``p_ij``: softmax of ``r_ij / t`` over each row's negatives (0 elsewhere), without gradient."""
        relevance = self.estimate_relevance(self.weighter, batch)
        logits = (relevance / self.weight_temperature).masked_fill(~batch.negative_mask, float("-inf"))
        return torch.softmax(logits, dim=1).nan_to_num(0.0)

    def removed_negatives(self, batch: CandidateBatch, probabilities: Tensor) -> Tensor:
        """``remove_top_k``: each row's ``remove_top_k`` most relevant negatives (released GraphCodeBERT/run.py,
        ``args.falsecancel``: ``torch.sort(sim_neg, descending=True)`` then keep ``indices[:, args.topk:]``)."""
        k = min(self.remove_top_k, probabilities.shape[1])
        top = probabilities.masked_fill(~batch.negative_mask, -1.0).topk(k, dim=1).indices
        return torch.zeros_like(batch.negative_mask).scatter_(1, top, True) & batch.negative_mask

    def threshold_removed_negatives(self, batch: CandidateBatch) -> Tensor:
        """``remove_threshold``: negatives with ``r_ij >= ratio * r_ii``, ``r_ii`` the relevance of the row's own
        positive. The released rule (GraphCodeBERT/run.py, the "# threshold" block under ``args.falsecancel``:
        ``mask[i][sim_neg[i] < args.ratio * pos_sim[i]] = 1``, ``pos_sim = sim_matrix[loss_mask == 1]``) keeps
        a negative only below that bound; it compares raw relevance, not the softmax ``p_ij``."""
        relevance = self.estimate_relevance(self.weighter, batch)
        rows = torch.arange(batch.batch_size, device=relevance.device)
        positive_relevance = relevance[rows, batch.local_rows]
        if not bool(torch.isfinite(positive_relevance).all()):
            raise ValueError(
                f"{type(self.weighter).__name__} gave no finite relevance for some queries' own positives, which "
                "variant='remove_threshold' compares every negative with."
            )
        return batch.negative_mask & ~(relevance < self.threshold_ratio * positive_relevance[:, None])

    def soft_target_loss(self, scores: Tensor, batch: CandidateBatch, probabilities: Tensor) -> Tensor:
        rows = torch.arange(batch.batch_size, device=scores.device)
        kept = batch.negative_mask.clone()
        kept[rows, batch.local_rows] = True
        log_probs = torch.log_softmax(scores.masked_fill(~kept, float("-inf")), dim=1)
        targets = probabilities.clone()
        targets[rows, batch.local_rows] = 1.0
        if self.variant == "weighted_infonce":
            return -(targets * log_probs.masked_fill(~kept, 0.0)).sum(dim=1).mean()
        if self.variant == "bce":
            # The mean over the kept pairs, without boolean indexing (a data-dependent shape syncs a GPU).
            terms = F.binary_cross_entropy(log_probs.exp(), targets.clamp(max=1.0), reduction="none")
            return (terms * kept).sum() / kept.sum()
        # kl_regularized: beta * InfoNCE + alpha * KL(p || model's distribution over the negatives)
        negative_log_probs = torch.log_softmax(scores.masked_fill(~batch.negative_mask, float("-inf")), dim=1)
        kl_terms = torch.where(
            probabilities > 0, probabilities * (probabilities.clamp(min=1e-30).log() - negative_log_probs), 0.0
        )
        return self.beta * self.infonce(scores, batch) + self.alpha * kl_terms.sum(dim=1).mean()

    def get_config_dict(self) -> dict[str, Any]:
        return {
            **self.base_config(),
            **({"undefined_weight_rows": self.undefined_weight_rows} if self._undefined_rows is not None else {}),
            "weighter": self.weighter.get_config_dict(),
            "alpha": self.alpha,
            "beta": self.beta,
            "weight_temperature": self.weight_temperature,
            "min_weight": self.min_weight,
            "variant": self.variant,
            **({"remove_top_k": self.remove_top_k} if self.variant == "remove_top_k" else {}),
            **({"threshold_ratio": self.threshold_ratio} if self.variant == "remove_threshold" else {}),
        }

    @property
    def is_infonce(self) -> bool:
        """Uniform weights and no baseline variant: the loss computed is InfoNCE (MultipleNegativesRankingLoss)."""
        return self.is_uniform and self.variant == "soft_infonce"

    @property
    def objective_name(self) -> str:
        """The name a model card gives this loss: "InfoNCE" when it computes InfoNCE, else the class name."""
        return "InfoNCE" if self.is_infonce else type(self).__name__

    @property
    def citation(self) -> str:
        # As MultipleNegativesRankingLoss picks its citation from its settings: uniform weights are InfoNCE.
        return INFONCE_CITATION if self.is_infonce else SOFT_INFONCE_CITATION


SOFT_INFONCE_CITATION = """
@inproceedings{li2023rethinking,
    title={Rethinking Negative Pairs in Code Search},
    author={Li, Haochen and Zhou, Xin and Tuan, Luu Anh and Miao, Chunyan},
    booktitle={Proceedings of the 2023 Conference on Empirical Methods in Natural Language Processing},
    year={2023},
    eprint={2310.08069},
    archivePrefix={arXiv},
    url={https://arxiv.org/abs/2310.08069},
}
"""

# MultipleNegativesRankingLoss's own citation for its default (one-direction) setting: InfoNCE.
INFONCE_CITATION = """
@misc{oord2019representationlearningcontrastivepredictive,
      title={Representation Learning with Contrastive Predictive Coding},
      author={Aaron van den Oord and Yazhe Li and Oriol Vinyals},
      year={2019},
      eprint={1807.03748},
      archivePrefix={arXiv},
      primaryClass={cs.LG},
      url={https://arxiv.org/abs/1807.03748},
}
"""
