"""Relevance from a frozen, separately loaded InfoNCE-trained retriever (query-code scores)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from hf_softnce.batch import CandidateBatch
from hf_softnce.weighting.embedding import FrozenEncoderEstimator, _model_name


def _storage_pointers(model) -> set[int]:
    return {parameter.data_ptr() for parameter in model.parameters()}


class TrainedModelWeighter(FrozenEncoderEstimator):
    """Query-code score of a frozen retriever trained with InfoNCE beforehand (the paper's third estimator).

    Relevance is ``score_scale * cos(query_i, code_j)``: the retriever's own InfoNCE logits, the scale the
    paper's temperature ``t=5`` was set for. The retriever must be a separate copy: binding it to a loss whose
    model shares any parameter storage with it raises (the paper's released code trains the estimator
    together with the model, which we must not copy).

    Args:
        model: a SentenceTransformer or a path/Hub id of the frozen retriever.
        score_scale: multiplies the cosine, like MultipleNegativesRankingLoss's ``scale``.
    Defaults: alpha=1.3, beta=0.7, temperature=5 (Soft-InfoNCE's trained-model setting).
    """

    default_alpha, default_beta, default_temperature = 1.3, 0.7, 5.0

    def __init__(
        self, model, *, score_scale: float = 20.0, batch_size: int = 64, cache=True, show_progress_bar: bool = True
    ) -> None:
        super().__init__(model, batch_size=batch_size, cache=cache, show_progress_bar=show_progress_bar)
        self.score_scale = score_scale

    @property
    def retriever(self):
        """The frozen retriever whose scores are the relevance."""
        return self.encoder

    def _fit_texts(self) -> None:
        self._query_embeddings = self._encode(self.queries)
        self._code_embeddings = self._encode(self.codes)

    def bind(self, model, prompt_lengths: tuple[int, ...] = ()) -> None:
        if model is self.retriever or _storage_pointers(model) & _storage_pointers(self.retriever):
            raise ValueError(
                "TrainedModelWeighter's retriever shares parameters with the model being trained. Load a "
                "separate, frozen copy, e.g. TrainedModelWeighter(SentenceTransformer(path_of_trained_retriever))."
            )
        super().bind(model, prompt_lengths)

    def relevance(self, batch: CandidateBatch) -> Tensor:
        device = batch.negative_mask.device
        queries = self.on_device("_query_embeddings", device)[self.query_rows(batch)]
        codes = self.on_device("_code_embeddings", device)[self.candidate_code_rows(batch)]
        return self.score_scale * queries @ codes.T

    def get_config_dict(self) -> dict[str, Any]:
        return {**super().get_config_dict(), "model": _model_name(self.retriever), "score_scale": self.score_scale}
