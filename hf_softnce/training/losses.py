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

LOSSES = ("infonce", "soft_infonce", "order_infonce")
WEIGHTERS = ("none", "bm25", "embedding", "trained_model", "precomputed")


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


def build_loss(config: TrainConfig, model, train: Dataset, duplicate_groups=None):
    """The loss for ``config.loss``; ``infonce`` is SoftInfoNCE with uniform weights (== MNRL)."""
    if config.loss not in LOSSES:
        raise ValueError(f"loss={config.loss!r}: choose one of {LOSSES}.")
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
