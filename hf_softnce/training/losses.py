"""Build the loss a config names, with its relevance estimator fitted on the training data."""

from __future__ import annotations

from datasets import Dataset

from hf_softnce.losses import CachedSoftInfoNCELoss, SoftInfoNCELoss
from hf_softnce.training.config import TrainConfig
from hf_softnce.weighting import (
    BM25Weighter,
    EmbeddingWeighter,
    PrecomputedWeighter,
    RelevanceEstimator,
    TrainedModelWeighter,
)

LOSSES = ("infonce", "soft_infonce", "order_infonce", "mnrl", "gist")
WEIGHTERS = ("none", "bm25", "embedding", "trained_model", "precomputed")
# The settings one loss alone reads (build_loss, build_peer_loss; the order teacher's: recipes/train_order_infonce.py):
# a model card lists them only where that loss trained the model.
LOSS_ONLY_KEYS = {
    "soft_infonce": ("alpha", "beta", "weight_temperature", "min_weight", "variant"),
    "order_infonce": ("order_weight", "order_scale", "order_teacher", "order_refine"),
    "mnrl": ("hardness_mode", "hardness_strength"),
    "gist": ("guide_model", "gist_margin_strategy", "gist_margin", "gist_temperature"),
}
WEIGHTER_KEYS = ("weighter", "weighter_model")  # the weights of soft_infonce, the order labels of order_infonce


def build_weighter(config: TrainConfig, train: Dataset) -> RelevanceEstimator | None:
    if config.weighter not in WEIGHTERS:
        raise ValueError(f"weighter={config.weighter!r}: choose one of {WEIGHTERS}.")
    if config.weighter == "none":
        return None
    if config.weighter == "bm25":
        return BM25Weighter().fit(train)
    if config.weighter == "precomputed":
        return PrecomputedWeighter(allow_negative=True)
    if not config.weighter_model:
        raise ValueError(
            f"weighter={config.weighter!r} needs weighter_model: the frozen encoder (a SimCSE model from "
            "recipes/train_simcse_weighter.py, or an InfoNCE-trained retriever for trained_model)."
        )
    from hf_softnce.training.models import load_model

    encoder = load_model(config.weighter_model, max_seq_length=config.max_seq_length)
    weighter_class = EmbeddingWeighter if config.weighter == "embedding" else TrainedModelWeighter
    return weighter_class(encoder).fit(train)


def build_peer_loss(config: TrainConfig, model):
    """sentence-transformers' own answer to hard and false negatives, built as its documentation builds it.

    ``mnrl``: ``MultipleNegativesRankingLoss(model, scale, hardness_mode=..., hardness_strength=...)`` (hardness
    weighting *raises* hard negatives' weight). ``gist``: ``GISTEmbedLoss(model, guide, temperature, margin_strategy,
    margin)`` with a frozen guide (``guide_model``) that masks candidates it scores above the positive. Neither knows
    duplicate groups: what they do about false negatives is their own. With ``mini_batch_size``, their GradCache
    twins (``CachedMultipleNegativesRankingLoss``, ``CachedGISTEmbedLoss``), as hf_softnce's own losses do.
    """
    from sentence_transformers.sentence_transformer.losses import (
        CachedGISTEmbedLoss, CachedMultipleNegativesRankingLoss, GISTEmbedLoss, MultipleNegativesRankingLoss,
    )

    cached = {"mini_batch_size": config.mini_batch_size} if config.mini_batch_size else {}
    if config.loss == "mnrl":
        mnrl = CachedMultipleNegativesRankingLoss if cached else MultipleNegativesRankingLoss
        return mnrl(model, scale=config.scale, gather_across_devices=config.gather_across_devices,
                    hardness_mode=config.hardness_mode, hardness_strength=config.hardness_strength, **cached)
    if not config.guide_model:
        raise ValueError("loss='gist' needs guide_model: the frozen guide ('default' for the packaged base model, or "
                         "a path / Hub id).")
    from hf_softnce.training.models import load_model

    guide = load_model(config.guide_model, max_seq_length=config.max_seq_length)
    guide.requires_grad_(False)
    gist = CachedGISTEmbedLoss if cached else GISTEmbedLoss
    return gist(model, guide, temperature=config.gist_temperature, margin_strategy=config.gist_margin_strategy,
                margin=config.gist_margin, gather_across_devices=config.gather_across_devices, **cached)


def build_loss(config: TrainConfig, model, train: Dataset, duplicate_groups=None):
    """The loss for ``config.loss``; ``infonce`` is SoftInfoNCE with uniform weights (== MNRL with duplicate groups
    masked); ``mnrl``/``gist`` are sentence-transformers' own losses (:func:`build_peer_loss`)."""
    if config.loss not in LOSSES:
        raise ValueError(f"loss={config.loss!r}: choose one of {LOSSES}.")
    if config.loss in ("mnrl", "gist"):
        return build_peer_loss(config, model)
    common = dict(
        scale=config.scale,
        gather_across_devices=config.gather_across_devices,
        mask_duplicates=config.mask_duplicates,
        duplicate_groups=duplicate_groups,
    )
    if config.loss == "order_infonce":
        from hf_softnce.losses import CachedOrderInfoNCELoss, OrderInfoNCELoss

        order_source = None if config.weighter in ("none", "precomputed") else build_weighter(config, train)
        kwargs = dict(common, order_weight=config.order_weight, order_scale=config.order_scale)
        if config.mini_batch_size:
            return CachedOrderInfoNCELoss(model, order_source, mini_batch_size=config.mini_batch_size, **kwargs)
        return OrderInfoNCELoss(model, order_source, **kwargs)
    weighter = None if config.loss == "infonce" else build_weighter(config, train)
    kwargs = dict(
        common,
        alpha=config.alpha,
        beta=config.beta,
        weight_temperature=config.weight_temperature,
        min_weight=config.min_weight,
        variant=config.variant,
    )
    if config.mini_batch_size:
        return CachedSoftInfoNCELoss(model, weighter, mini_batch_size=config.mini_batch_size, **kwargs)
    return SoftInfoNCELoss(model, weighter, **kwargs)
