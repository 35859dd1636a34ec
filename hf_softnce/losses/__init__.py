"""hf_softnce's losses, drop-in sentence-transformers losses (one class per module)."""

from hf_softnce.losses.cached_soft_infonce import CachedSoftInfoNCELoss
from hf_softnce.losses.negative_core import NegativeAwareLoss, soft_negative_weights
from hf_softnce.losses.soft_infonce import SoftInfoNCELoss

__all__ = ["CachedSoftInfoNCELoss", "NegativeAwareLoss", "SoftInfoNCELoss", "soft_negative_weights"]
