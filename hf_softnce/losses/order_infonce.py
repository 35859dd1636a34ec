"""OrderInfoNCELoss: InfoNCE plus a CoSENT ranking term over graded ("order") labels of the candidates (OASIS)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Any, Literal

import torch
from torch import Tensor

from hf_softnce.batch import CandidateBatch, check_on_device
from hf_softnce.defaults import credit_packaged_model
from hf_softnce.losses.negative_core import NegativeAwareLoss, check_estimator, check_finite
from hf_softnce.weighting.base import RelevanceEstimator

UNLABELED = ("lowest", "ignore")


def cosent_rows(logits: Tensor, labels: Tensor, mask: Tensor) -> Tensor:
    """CoSENT of every row: ``log(1 + sum_{a, b in row, labels[a] > labels[b]} exp(logits[b] - logits[a]))``.

    Only entries where ``mask`` is True take part. Computed as sentence-transformers' ``CoSENTLoss`` does
    (sort by label, suffix ``logcumsumexp``, one ``logsumexp``), batched over rows, so it costs
    ``O(C log C)`` per row rather than a ``C x C`` pair matrix. A row without an ordered pair gives exactly 0.

    Args:
        logits: ``(rows, C)`` scaled similarities (``order_scale * cos``); float32 or wider.
        labels: ``(rows, C)`` order labels; finite where ``mask`` is True (``+inf`` is allowed: above all).
        mask: ``(rows, C)`` bool.

    Returns:
        ``(rows,)`` the CoSENT loss of each row.
    """
    # Masked-out entries sort first (label -inf): never strictly above a real entry, so they never enter a
    # real entry's sum; their own terms are masked after the fact, which keeps their logits finite (a -inf
    # logit inside logcumsumexp would give a NaN gradient) and their gradient exactly 0.
    labels = labels.masked_fill(~mask, float("-inf"))
    labels, order = labels.sort(dim=1)
    logits = logits.gather(1, order)
    mask = mask.gather(1, order)
    higher_start = torch.searchsorted(labels.contiguous(), labels.contiguous(), right=True)
    suffix = torch.logcumsumexp(-logits.flip(1), dim=1).flip(1)
    suffix = torch.cat((suffix, suffix.new_full((len(suffix), 1), float("-inf"))), dim=1)
    terms = (logits + suffix.gather(1, higher_start)).masked_fill(~mask, float("-inf"))
    # e^0 = 1: the "1 +" of log(1 + sum)
    terms = torch.cat((terms.new_zeros(len(terms), 1), terms), dim=1)
    return torch.logsumexp(terms, dim=1)


class OrderInfoNCELoss(NegativeAwareLoss):
    def __init__(
        self,
        model,
        order_source: RelevanceEstimator | None = None,
        *,
        infonce_weight: float = 1.0,
        order_weight: float = 1.0,
        scale: float = 20.0,
        order_scale: float = 20.0,
        gather_across_devices: bool = False,
        mask_duplicates: bool = True,
        duplicate_groups: Mapping[str, Hashable] | Any | None = None,
        across_batch: bool = False,
        unlabeled: Literal["lowest", "ignore"] = "lowest",
    ) -> None:
        """
        OASIS's order-augmented objective: InfoNCE plus a CoSENT ranking term over graded similarity ("order")
        labels of the candidates, so that the model also learns *how* negative each negative is:

        .. math::

            L = w_1 \\cdot \\mathrm{InfoNCE} + w_2 \\cdot \\frac{1}{B} \\sum_i
                \\log\\Big(1 + \\sum_{\\ell_{ia} > \\ell_{ib}} e^{\\lambda (\\cos(q_i, c_b) - \\cos(q_i, c_a))}\\Big)

        where ``l_ij`` is the order label of candidate ``j`` for query ``i`` and ``lambda`` is ``order_scale``
        (OASIS's ``1/tau``). A query's row holds its positive, the in-batch candidates (other rows' positives
        and hard negatives) and its own hard negatives, in MultipleNegativesRankingLoss's layout. Only pairs
        whose labels differ contribute; tied labels give no pair. With ``across_batch=True`` the order term is
        instead one CoSENT over every (query, candidate) pair of the batch, comparing pairs of different
        queries too. Both terms are computed in log space (``logsumexp``/``logcumsumexp``).

        The InfoNCE term is :meth:`NegativeAwareLoss.infonce`, the same code path as
        :class:`~hf_softnce.losses.SoftInfoNCELoss` with uniform weights. A candidate that is a duplicate of the
        query's own positive (same tokens, or the same ``duplicate_groups`` group) takes part in neither term.

        **Where the labels come from.**

        - The ``label`` column: one score per candidate column, the positive's first
          (``[code, negative_1, ..., negative_k]``: what :func:`hf_softnce.mining.label_order` and the miner with
          ``output_scores=True`` write). It labels each query's own positive and hard negatives. The other
          candidates of the row (in-batch codes, which no teacher scored for this query) get, with
          ``unlabeled="lowest"``, the lowest label among the row's own hard negatives — a random in-batch code is
          taken to be at most as relevant as the least relevant mined negative, and ties with it, so it adds
          pairs only below the positive and the more relevant negatives — or, with ``unlabeled="ignore"``, no
          part in the order term. Without hard-negative columns they are always left out.
        - An ``order_source``: any :class:`~hf_softnce.weighting.RelevanceEstimator` (the weighters of
          SoftInfoNCE: BM25Weighter, EmbeddingWeighter, TrainedModelWeighter, PrecomputedWeighter), scoring every
          (query, candidate) pair of the batch. Its score for the query's **own positive is not used: the
          positive is ranked above every candidate** (label ``+inf``; with ``across_batch`` the positives tie
          with each other and sit above every non-positive pair). Query-query estimators score a query's own
          positive through that query itself, which says nothing about the order, and a query-code teacher that
          scores a negative above the positive would otherwise train the negative upwards.
        - Both: the ``label`` column labels the row's own positive and hard negatives, the source the other
          candidates. Use the same teacher for both, so the two sets of scores are on one scale.

        All-equal labels are a documented no-op: the order term is exactly 0 (``log 1``), never NaN. Labels of
        the wrong length, or NaN/infinite labels, raise a ``ValueError``.

        Args:
            model: SentenceTransformer model
            order_source: a relevance estimator from :mod:`hf_softnce.weighting` that scores in-batch pairs;
                ``None`` reads the labels from the ``label`` column only.
            infonce_weight: ``w_1``, weight of the InfoNCE term (0 leaves it out).
            order_weight: ``w_2``, weight of the CoSENT order term (0 leaves it out: the loss is then exactly
                :class:`~sentence_transformers.sentence_transformer.losses.MultipleNegativesRankingLoss`).
            scale: InfoNCE's similarity scale (inverse temperature), as in MultipleNegativesRankingLoss.
            order_scale: CoSENT's scale ``lambda = 1/tau`` on the raw cosine, as ``scale`` in
                :class:`~sentence_transformers.sentence_transformer.losses.CoSENTLoss` (default 20, its default).
            gather_across_devices: gather queries and every candidate column from all ranks (with gradient),
                so each rank scores its queries against the global batch (both terms). Labels stay per rank.
                Local batches may differ in size (a last batch without ``dataloader_drop_last``): they are padded
                to the largest and the padding masked, which gives the one-process loss on all rows.
            mask_duplicates: remove candidates identical to (or in the duplicate group of) the query's positive
                from both terms.
            duplicate_groups: ``{code: dup_group}`` or a Dataset with ``code``/``dup_group`` columns, to remove
                near-duplicates of the positive too.
            across_batch: one CoSENT over all (query, candidate) pairs of this rank's queries, instead of the
                mean of one CoSENT per query row. Labels of different queries are then compared directly, so
                they must be on one scale (a teacher's similarity).
            unlabeled: ``"lowest"`` or ``"ignore"``: the order label of in-batch candidates when the labels come
                from the ``label`` column only (see above).

        References:
            - Gao et al., OASIS: Order-Augmented Strategy for Improved Code Search, ACL 2025:
              https://arxiv.org/abs/2503.08161
            - Huang et al., CoSENT: Consistent Sentence Embedding via Similarity Ranking, TASLP 2024.

        Requirements:
            1. (query, code) pairs or (query, code, negative_1, ..., negative_n) tuples
            2. a ``label`` column with one score per candidate column (positive first), or an ``order_source``

        Inputs:
            +------------------------------------------------+----------------------------------------------+
            | Texts                                          | Labels                                       |
            +================================================+==============================================+
            | (query, code) pairs                            | none (with an order_source), or one score    |
            +------------------------------------------------+----------------------------------------------+
            | (query, code, negative_1, ..., negative_n)     | none (with an order_source), or one score    |
            |                                                | per candidate column, the positive's first   |
            +------------------------------------------------+----------------------------------------------+

        Recommendations:
            - Label with a teacher that knows more than the model being trained (OASIS: a stronger embedding
              model; here e.g. a retriever already trained with InfoNCE): labels from the model itself, or from
              a weaker one, teach it nothing it does not rank already.
            - Refine the labels with :func:`hf_softnce.mining.label_order`: a negative the teacher scores at or
              above the positive is often a false negative; flag it and raise, drop or judge it.
            - Keep labels on one scale within a query (one teacher); ``across_batch=True`` compares queries with
              each other, so it needs one scale across the batch too.
            - ``order_weight=1`` beside ``infonce_weight=1`` (OASIS's setting); the order term adds pairs only
              where labels differ, so all-equal labels train plain InfoNCE.

        Relations:
            - With ``order_weight=0`` it equals
              :class:`~sentence_transformers.sentence_transformer.losses.MultipleNegativesRankingLoss`.
            - With ``infonce_weight=0`` and ``across_batch=True`` it is
              :class:`~sentence_transformers.sentence_transformer.losses.CoSENTLoss` over the batch's (query, candidate)
              pairs; with ``across_batch=False`` the mean over queries of CoSENTLoss on each query's row.
            - :class:`CachedOrderInfoNCELoss` computes the same loss with GradCache, for large batches.
            - :func:`hf_softnce.mining.label_order` writes (and refines) the ``label`` column from a teacher.

        Example:
            ::

                from datasets import Dataset
                from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
                from hf_softnce.defaults import default_model_path
                from hf_softnce.losses import OrderInfoNCELoss

                model = SentenceTransformer(default_model_path())   # or "sentence-transformers/all-MiniLM-L6-v2"
                train_dataset = Dataset.from_dict({
                    "query": ["sort a list", "read a json file", "add two numbers"],
                    "code": ["def sort(xs): return sorted(xs)", "def load(p): return json.load(open(p))",
                             "def add(a, b): return a + b"],
                    "negative_1": ["def sort_desc(xs): return sorted(xs, reverse=True)",
                                   "def load_yaml(p): return yaml.safe_load(open(p))", "def sub(a, b): return a - b"],
                    "negative_2": ["def first(xs): return xs[0]", "def upper(s): return s.upper()",
                                   "def rev(s): return s[::-1]"],
                    # a teacher's order labels, [code, negative_1, negative_2]: hf_softnce.mining.label_order writes them
                    "label": [[1.0, 0.6, 0.1], [1.0, 0.5, 0.0], [1.0, 0.4, 0.1]],
                })
                loss = OrderInfoNCELoss(model, infonce_weight=1.0, order_weight=1.0)
                trainer = SentenceTransformerTrainer(model=model, train_dataset=train_dataset, loss=loss)
                trainer.train()
        """
        check_estimator(type(self).__name__, "order_source", order_source)
        check_finite(
            type(self).__name__, infonce_weight=infonce_weight, order_weight=order_weight, order_scale=order_scale
        )
        super().__init__(
            model,
            scale=scale,
            gather_across_devices=gather_across_devices,
            mask_duplicates=mask_duplicates,
            duplicate_groups=duplicate_groups,
        )
        credit_packaged_model(model)  # the card sentence-transformers writes names the base model
        if infonce_weight < 0 or order_weight < 0:
            raise ValueError(f"infonce_weight and order_weight must be >= 0, got {infonce_weight}, {order_weight}.")
        if infonce_weight == 0 and order_weight == 0:
            raise ValueError("infonce_weight and order_weight are both 0: the loss would be constant.")
        if not order_scale > 0:
            raise ValueError(f"order_scale must be positive, got {order_scale}.")
        if unlabeled not in UNLABELED:
            raise ValueError(f"unlabeled must be one of {UNLABELED}, got {unlabeled!r}.")
        self.order_source = order_source
        self.infonce_weight = infonce_weight
        self.order_weight = order_weight
        self.order_scale = order_scale
        self.across_batch = across_batch
        self.unlabeled = unlabeled
        if order_source is not None:
            order_source.bind(model)

    def estimators(self) -> list[RelevanceEstimator]:
        return [] if self.order_source is None else [self.order_source]

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        sentence_features = list(sentence_features)
        self.sync_tokenization(sentence_features)
        hashes = self.column_hashes(sentence_features)
        return self.compute_loss_from_embeddings(self.embed(sentence_features), labels, hashes)

    def batch_loss(self, scores: Tensor, batch: CandidateBatch) -> Tensor:
        loss = None
        if self.infonce_weight:
            loss = self.infonce_weight * self.infonce(scores, batch)
        if self.order_weight:
            order = self.order_weight * self.order_loss(scores, batch)
            loss = order if loss is None else loss + order
        return loss

    # ----- the order term ----------------------------------------------------------------------------
    def order_loss(self, scores: Tensor, batch: CandidateBatch) -> Tensor:
        """The CoSENT term (unweighted) from InfoNCE's scaled scores ``scale * cos``."""
        labels, participating = self.order_labels(batch)
        # As CoSENTLoss: half-precision scores are upcast before the exponentials.
        logits = scores.float()
        if self.order_scale != self.scale:
            logits = logits * (self.order_scale / self.scale)
        if self.across_batch:
            return cosent_rows(logits.reshape(1, -1), labels.reshape(1, -1), participating.reshape(1, -1))[0]
        return cosent_rows(logits, labels, participating).mean()

    def order_labels(self, batch: CandidateBatch) -> tuple[Tensor, Tensor]:
        """``(labels, participating)``, both ``(batch, candidates)``: each candidate's order label for each
        local query, and whether the pair takes part in the order term (its positive or a kept negative, with
        a label). No gradient."""
        device = batch.negative_mask.device
        rows = torch.arange(batch.batch_size, device=device)
        participating = batch.negative_mask.clone()
        participating[rows, batch.local_rows] = True
        column_labels = self.column_labels(batch)
        if column_labels is None and self.order_source is None:
            raise ValueError(
                f"{type(self).__name__} needs order labels: a 'label' column (one score per candidate column, the "
                "positive's first; see hf_softnce.mining.label_order) or an order_source estimator. Pass "
                "order_weight=0 for plain InfoNCE."
            )
        with torch.no_grad():
            if self.order_source is not None:
                labels = self.estimate_relevance(self.order_source, batch).to(device).clone()
                labels[rows, batch.local_rows] = float("inf")  # the positive above every candidate
            else:
                labels = torch.zeros(participating.shape, device=device)
            if column_labels is not None:
                own = batch.own_column_indices()
                labels.scatter_(1, own, column_labels)
                if self.order_source is None:
                    participating &= self._labeled(batch, participating, own, column_labels, labels)
        return labels, participating

    def _labeled(self, batch: CandidateBatch, participating: Tensor, own: Tensor, column_labels: Tensor, labels):
        """With the label column only: which candidates have a label; fills ``labels`` of in-batch candidates."""
        labeled = torch.zeros_like(participating).scatter_(1, own, True)
        if self.unlabeled == "ignore" or batch.num_columns < 2:
            return labeled
        # The lowest label among the row's own hard negatives that take part (a removed duplicate does not).
        negative_labels = column_labels[:, 1:].masked_fill(~participating.gather(1, own[:, 1:]), float("inf"))
        lowest = negative_labels.min(dim=1, keepdim=True).values
        has_lowest = torch.isfinite(lowest)
        fill = ~labeled & has_lowest
        labels.copy_(torch.where(fill, lowest.expand_as(labels), labels))
        return labeled | fill

    def column_labels(self, batch: CandidateBatch) -> Tensor | None:
        """The ``label`` column as ``(batch, num_columns)`` float, validated; None when there is none."""
        labels = batch.labels
        if labels is None:
            return None
        labels = labels.detach().to(batch.negative_mask.device).float()
        if labels.ndim == 1 and batch.num_columns == 1 and len(labels) == batch.batch_size:
            labels = labels[:, None]  # (query, code, label) pairs: one score per row
        expected = (batch.batch_size, batch.num_columns)
        if tuple(labels.shape) != expected:
            raise ValueError(
                f"{type(self).__name__}: 'label' has shape {tuple(labels.shape)}, but the batch has {expected[0]} "
                f"rows and {expected[1]} candidate column(s) (code + negative_*): give one order label per "
                "candidate column, the positive's first."
            )
        finite = torch.isfinite(labels)
        check_on_device(
            finite.all(),
            lambda: (
                f"{type(self).__name__}: 'label' has NaN or infinite order labels in batch rows "
                f"{(~finite).any(dim=1).nonzero().flatten().tolist()[:10]}."
            ),
        )
        return labels

    def get_config_dict(self) -> dict[str, Any]:
        config = self.base_config()
        config.pop("similarity_fct")  # always cosine: the order term is defined on the raw cosine
        return {
            **config,
            "order_source": None if self.order_source is None else self.order_source.get_config_dict(),
            "infonce_weight": self.infonce_weight,
            "order_weight": self.order_weight,
            "order_scale": self.order_scale,
            "across_batch": self.across_batch,
            "unlabeled": self.unlabeled,
        }

    @property
    def citation(self) -> str:
        return OASIS_CITATION


OASIS_CITATION = """
@inproceedings{zuchen-etal-2025-oasis,
    title={{OASIS}: Order-Augmented Strategy for Improved Code Search},
    author={Gao, Zuchen and Zhan, Zizheng and Li, Xianming and Yu, Erxin and Zhang, Haotian and Chen, Bin and Zhang, Yuqun and Li, Jing},
    booktitle={Proceedings of the 63rd Annual Meeting of the Association for Computational Linguistics (Volume 1: Long Papers)},
    pages={18451--18467},
    year={2025},
    publisher={Association for Computational Linguistics},
    doi={10.18653/v1/2025.acl-long.904},
    url={https://aclanthology.org/2025.acl-long.904/},
    eprint={2503.08161},
    archivePrefix={arXiv},
}
"""
