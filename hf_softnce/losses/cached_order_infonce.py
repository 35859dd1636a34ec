"""CachedOrderInfoNCELoss: OrderInfoNCE with GradCache, for batches larger than memory allows."""

from __future__ import annotations

from hf_softnce.losses.gradcache import CachedNegativeAwareMixin
from hf_softnce.losses.order_infonce import OrderInfoNCELoss


class CachedOrderInfoNCELoss(CachedNegativeAwareMixin, OrderInfoNCELoss):
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
        self.setup_gradcache(mini_batch_size, show_progress_bar)
