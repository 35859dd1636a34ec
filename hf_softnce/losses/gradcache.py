"""GradCache for hf_softnce's losses: sentence-transformers' CachedLossMixin plus the token-id hashes our
losses need (duplicate masking, estimator lookups), which the mini-batch embedding never sees as a whole."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from sentence_transformers.base.losses.gradcache import CachedLossMixin


class CachedNegativeAwareMixin(CachedLossMixin):
    """Put first in the bases of a ``Cached*`` loss whose uncached parent implements
    ``compute_loss_from_embeddings(embeddings, labels, hashes)``."""

    def setup_gradcache(self, mini_batch_size: int, show_progress_bar: bool) -> None:
        if mini_batch_size < 1:
            raise ValueError(f"mini_batch_size must be >= 1, got {mini_batch_size}.")
        self.mini_batch_size = mini_batch_size
        self.show_progress_bar = show_progress_bar
        self._hashes: list[Tensor] | None = None

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        sentence_features = list(sentence_features)
        self.sync_tokenization(sentence_features)
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
