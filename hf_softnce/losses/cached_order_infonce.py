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

        Relations:
            - The same loss, value and gradients, as :class:`OrderInfoNCELoss` on the same batch; choose it when
              the batch (every in-batch negative) does not fit in memory at once.

        Example:
            ::

                from datasets import Dataset
                from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
                from hf_softnce.defaults import default_model_path
                from hf_softnce.losses import CachedOrderInfoNCELoss

                model = SentenceTransformer(default_model_path())   # or "sentence-transformers/all-MiniLM-L6-v2"
                train_dataset = Dataset.from_dict({
                    "query": ["sort a list", "read a json file"],
                    "code": ["def sort(xs): return sorted(xs)", "def load(p): return json.load(open(p))"],
                    "negative_1": ["def first(xs): return xs[0]", "def load_yaml(p): return yaml.safe_load(open(p))"],
                    "label": [[1.0, 0.2], [1.0, 0.7]],   # order labels of [code, negative_1]
                })
                loss = CachedOrderInfoNCELoss(model, mini_batch_size=2)
                trainer = SentenceTransformerTrainer(model=model, train_dataset=train_dataset, loss=loss)
                trainer.train()
        """
        OrderInfoNCELoss.__init__(self, model, order_source, **kwargs)
        self.setup_gradcache(mini_batch_size, show_progress_bar)
