"""CachedSoftInfoNCELoss: SoftInfoNCE with GradCache, for batches larger than memory allows."""

from __future__ import annotations

from hf_softnce.losses.gradcache import CachedNegativeAwareMixin
from hf_softnce.losses.soft_infonce import SoftInfoNCELoss


class CachedSoftInfoNCELoss(CachedNegativeAwareMixin, SoftInfoNCELoss):
    def __init__(self, model, weighter=None, *, mini_batch_size: int = 32, show_progress_bar: bool = False, **kwargs):
        """
        :class:`SoftInfoNCELoss` computed with GradCache (Gao et al., 2021): the batch is embedded in
        mini-batches without gradients, the loss and its gradients w.r.t. the embeddings are computed over the
        whole batch, then each mini-batch is re-embedded with gradients. Same loss value and gradients as
        SoftInfoNCELoss on the same batch (up to float rounding); activation memory depends on
        ``mini_batch_size``, not on the batch size. Built on sentence-transformers' ``CachedLossMixin``.

        Args:
            model: SentenceTransformer model
            weighter: as in :class:`SoftInfoNCELoss`
            mini_batch_size: rows embedded at once; bounds memory, not the number of negatives.
            show_progress_bar: show a progress bar over the mini-batches.
            **kwargs: every other :class:`SoftInfoNCELoss` argument.

        References:
            - Li et al., Rethinking Negative Pairs in Code Search, EMNLP 2023: https://arxiv.org/abs/2310.08069
            - Gao et al., Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup, 2021:
              https://arxiv.org/abs/2101.06983

        Inputs:
            As :class:`SoftInfoNCELoss`.

        Example:
            ::

                loss = CachedSoftInfoNCELoss(model, BM25Weighter().fit(train_dataset), mini_batch_size=16)
        """
        SoftInfoNCELoss.__init__(self, model, weighter, **kwargs)
        self.setup_gradcache(mini_batch_size, show_progress_bar)
