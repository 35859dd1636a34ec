"""hf_softnce's losses, drop-in sentence-transformers losses (one class per module)."""

from hf_softnce.losses.cached_order_infonce import CachedOrderInfoNCELoss
from hf_softnce.losses.cached_soft_infonce import CachedSoftInfoNCELoss
from hf_softnce.losses.negative_core import NegativeAwareLoss
from hf_softnce.losses.order_infonce import OrderInfoNCELoss
from hf_softnce.losses.r2ps_ranker_loss import R2PSRankerLoss
from hf_softnce.losses.soft_infonce import SoftInfoNCELoss, soft_negative_weights

__all__ = [
    "CachedOrderInfoNCELoss",
    "CachedSoftInfoNCELoss",
    "NegativeAwareLoss",
    "OrderInfoNCELoss",
    "R2PSRankerLoss",
    "SoftInfoNCELoss",
    "soft_negative_weights",
]
