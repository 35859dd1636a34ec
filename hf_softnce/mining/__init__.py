"""Hard-negative mining from a retriever's ranking, and graded order labels for OrderInfoNCE."""

from hf_softnce.mining.miner import MiningReport
from hf_softnce.mining.miner import RankingHardNegativeMiner
from hf_softnce.mining.order_labels import OrderLabelReport
from hf_softnce.mining.order_labels import label_order
from hf_softnce.mining.order_labels import refine_order_labels

__all__ = ["MiningReport", "OrderLabelReport", "RankingHardNegativeMiner", "label_order", "refine_order_labels"]
