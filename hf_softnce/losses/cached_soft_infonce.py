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

        Relations:
            - The same loss, value and gradients, as :class:`SoftInfoNCELoss` on the same batch; choose it when
              the batch (every in-batch negative) does not fit in memory at once.

        Example:
            ::

                from datasets import Dataset
                from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
                from hf_softnce.defaults import default_model_path
                from hf_softnce.losses import CachedSoftInfoNCELoss
                from hf_softnce.weighting import BM25Weighter

                model = SentenceTransformer(default_model_path())   # or "sentence-transformers/all-MiniLM-L6-v2"
                train_dataset = Dataset.from_dict({
                    "query": ["sort a list", "read a json file", "add two numbers", "reverse a string"],
                    "code": ["def sort(xs): return sorted(xs)", "def load(p): return json.load(open(p))",
                             "def add(a, b): return a + b", "def rev(s): return s[::-1]"],
                    "negative_1": ["def first(xs): return xs[0]", "def save(p, d): json.dump(d, open(p, 'w'))",
                                 "def mul(a, b): return a * b", "def upper(s): return s.upper()"],
                })
                loss = CachedSoftInfoNCELoss(model, BM25Weighter().fit(train_dataset), mini_batch_size=2)
                trainer = SentenceTransformerTrainer(model=model, train_dataset=train_dataset, loss=loss)
                trainer.train()
        """
        SoftInfoNCELoss.__init__(self, model, weighter, **kwargs)
        self.setup_gradcache(mini_batch_size, show_progress_bar)
