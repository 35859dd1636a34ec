"""SoftInfoNCELoss: InfoNCE with a relevance-based weight on every negative (Li et al., EMNLP 2023)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, Literal
import warnings

import torch
from torch import Tensor

from sentence_transformers.util import cos_sim

from hf_softnce.batch import CandidateBatch
from hf_softnce.defaults import credit_packaged_model
from hf_softnce.losses.negative_core import NegativeAwareLoss, check_estimator, check_finite
from hf_softnce.losses.soft_infonce_baselines import BASELINES
from hf_softnce.weighting.base import RelevanceEstimator, UniformWeighter

Variant = Literal[
    "soft_infonce", "weighted_infonce", "kl_regularized", "bce", "remove_top_k", "remove_threshold"
]
VARIANTS = ("soft_infonce", *BASELINES)


def soft_negative_weights(
    relevance: Tensor,
    negative_mask: Tensor,
    alpha: float,
    beta: float,
    temperature: float,
    min_weight: float = 0.1,
    undefined_rows: Tensor | None = None,
) -> Tensor:
    """Soft-InfoNCE's weights ``w_ij = (beta - alpha * p_ij) / (beta - alpha / n_i)``, clipped below at
    ``min_weight``, with ``p_ij = softmax_j(r_ij / t)`` over the ``n_i`` negatives of row ``i``.

    Before clipping a row's weights sum to ``n_i``; uniform relevance gives exactly 1 (vanilla InfoNCE).
    Entries outside ``negative_mask`` are 0. The weights carry no gradient.

    A row whose formula is undefined (``beta - alpha / n_i <= 0``: too few negatives, as in a sampler's tail
    batch) gets uniform weights 1, i.e. plain InfoNCE for that row, as MultipleNegativesRankingLoss would
    give it. Such rows are added to ``undefined_rows`` (a 0-dim tensor on the same device), so that they are
    counted without a host synchronisation; the loss warns about them outside the step.
    """
    with torch.no_grad():
        relevance = relevance.float()
        logits = (relevance / temperature).masked_fill(~negative_mask, float("-inf"))
        num_negatives = negative_mask.sum(dim=1, keepdim=True)
        has_negatives = num_negatives > 0
        probabilities = torch.softmax(logits.masked_fill(~has_negatives, 0.0), dim=1)
        denominator = beta - alpha / num_negatives.clamp(min=1)
        undefined = has_negatives & (denominator <= 0)
        if undefined_rows is not None:
            undefined_rows.add_(undefined.sum())
        weights = ((beta - alpha * probabilities) / denominator).clamp(min=min_weight)
        weights = torch.where(undefined, torch.ones_like(weights), weights)
        return weights.masked_fill(~negative_mask, 0.0)


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
        i.e. exactly :class:`~sentence_transformers.sentence_transformer.losses.MultipleNegativesRankingLoss`.
        Computed in log space (``logsumexp(s + log w)``), so it is stable under fp16/bf16 autocast. A candidate
        that is a duplicate of the query's own positive (same tokens, or the same ``duplicate_groups`` group) is
        removed from its negatives, not down-weighted.

        Args:
            model: SentenceTransformer model
            weighter: a relevance estimator from :mod:`hf_softnce.weighting` (BM25Weighter, EmbeddingWeighter,
                TrainedModelWeighter, PrecomputedWeighter); ``None`` means uniform, i.e. InfoNCE.
            alpha, beta, weight_temperature: the weight formula's settings; ``None`` takes the weighter's paper
                defaults (BM25: 1.5/0.5/1, SimCSE embedding: 1.3/0.7/0.1, trained model: 1.3/0.7/5). Finite
                numbers. A row with too few negatives for the formula (``beta - alpha / n <= 0``, e.g. a
                sampler's tail batch) is trained with uniform weights; such rows are counted on the device and
                reported, with one warning, by ``loss.undefined_weight_rows``, read after training.
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
            variant: ``"soft_infonce"`` (default) or one of the paper's comparison baselines
                (:mod:`hf_softnce.losses.soft_infonce_baselines`), scoring the same batch with the weighter's ``p_ij``: ``"weighted_infonce"`` (cross-entropy with soft targets
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
            - With ``weighter=None`` it equals
              :class:`~sentence_transformers.sentence_transformer.losses.MultipleNegativesRankingLoss`
              (to float precision, value and gradients), and a model card names and cites it as InfoNCE.
            - :class:`~sentence_transformers.sentence_transformer.losses.MultipleNegativesRankingLoss` with
              ``hardness_mode`` raises the weight of the hardest negatives; Soft-InfoNCE lowers the weight of the
              most relevant ones.
            - :class:`~sentence_transformers.sentence_transformer.losses.GISTEmbedLoss` removes candidates a guide model
              scores above the positive: a hard version of ``TrainedModelWeighter``.
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
        # Rows whose weights were undefined and fell back to uniform: counted on the device (no host
        # synchronisation in the step), read by `undefined_weight_rows`.
        self._undefined_rows: Tensor | None = None
        self._warned_undefined = False
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
        if self.variant != "soft_infonce":
            return BASELINES[self.variant](self, scores, batch)
        if self.is_uniform:
            return self.infonce(scores, batch)  # w = 1 exactly: the MNRL fast path
        log_weights = torch.log(self.negative_weights(batch)).masked_fill(~batch.negative_mask, 0.0)
        return self.infonce(scores, batch, log_weights)

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
            undefined_rows=self._undefined_row_counter(relevance.device),
        )

    def _undefined_row_counter(self, device: torch.device) -> Tensor:
        if self._undefined_rows is None or self._undefined_rows.device != device:
            previous = 0 if self._undefined_rows is None else self._undefined_rows.to(device)
            self._undefined_rows = torch.zeros((), dtype=torch.long, device=device) + previous
        return self._undefined_rows

    @property
    def undefined_weight_rows(self) -> int:
        """How many rows so far had undefined weights (``beta - alpha / n <= 0``: too few negatives) and were
        trained with uniform weights instead. Reading it synchronises with the device, so read it outside the
        step (``hf-softnce train`` reads it once training ends); the first non-zero read warns once."""
        count = 0 if self._undefined_rows is None else int(self._undefined_rows)
        if count and not self._warned_undefined:
            self._warned_undefined = True
            warnings.warn(
                f"{type(self).__name__}: {count} row(s) had too few negatives for the weight formula "
                "(beta - alpha / n <= 0) and were trained with uniform weights (plain InfoNCE) instead. "
                "Use larger batches or hard negatives, or a smaller alpha / larger beta.",
                stacklevel=2,
            )
        return count

    def get_config_dict(self) -> dict[str, Any]:
        return {
            **self.base_config(),
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
