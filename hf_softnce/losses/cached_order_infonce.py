"""CachedOrderInfoNCELoss: OrderInfoNCE with GradCache, for batches larger than memory allows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from sentence_transformers.base.losses.gradcache import CachedLossMixin

from hf_softnce.losses.order_infonce import OrderInfoNCELoss


class CachedOrderInfoNCELoss(CachedLossMixin, OrderInfoNCELoss):
    def __init__(
        self, model, order_source=None, *, mini_batch_size: int = 32, show_progress_bar: bool = False, **kwargs
    ):
        """
        :class:`OrderInfoNCELoss` computed with GradCache (Gao et al., 2021): the batch is embedded in
        mini-batches without gradients, both terms (InfoNCE and the CoSENT order term) and their gradients
        w.r.t. the embeddings are computed over the whole batch, then each mini-batch is re-embedded with
        gradients. Same loss value and gradients as OrderInfoNCELoss on the same batch (up to float rounding);
        activation memory depends on ``mini_batch_size``, not on the batch size — so the order term compares
        as many in-batch candidates as a large batch holds. Built on sentence-transformers' ``CachedLossMixin``.

        Args:
            model: SentenceTransformer model
            order_source: as in :class:`OrderInfoNCELoss`
            mini_batch_size: rows embedded at once; bounds memory, not the number of candidates.
            show_progress_bar: show a progress bar over the mini-batches.
            **kwargs: every other :class:`OrderInfoNCELoss` argument.

        References:
            - Gao et al., OASIS: Order-Augmented Strategy for Improved Code Search, ACL 2025:
              https://arxiv.org/abs/2503.08161
            - Gao et al., Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup, 2021:
              https://arxiv.org/abs/2101.06983

        Inputs:
            As :class:`OrderInfoNCELoss`.

        Example:
            ::

                loss = CachedOrderInfoNCELoss(model, mini_batch_size=16)  # labels from the 'label' column
        """
        OrderInfoNCELoss.__init__(self, model, order_source, **kwargs)
        if mini_batch_size < 1:
            raise ValueError(f"mini_batch_size must be >= 1, got {mini_batch_size}.")
        self.mini_batch_size = mini_batch_size
        self.show_progress_bar = show_progress_bar
        self._hashes: list[Tensor] | None = None

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        sentence_features = list(sentence_features)
        # Hashes come from the token ids, which the mini-batch embedding never sees as a whole.
        self._hashes = self.column_hashes(sentence_features)
        return self.forward_cached(sentence_features, labels)

    def calculate_loss(self, reps: list[list[Tensor]], labels: Tensor | None = None, *, with_backward: bool = False):
        embeddings = [torch.cat(column) for column in reps]
        loss = self.compute_loss_from_embeddings(embeddings, labels, self._hashes)
        if with_backward:
            loss.backward()
            loss = loss.detach()
        return loss

    def get_config_dict(self) -> dict[str, Any]:
        return {**super().get_config_dict(), "mini_batch_size": self.mini_batch_size}
