"""The one interface every relevance estimator implements, for SoftInfoNCE's weights and OrderInfoNCE's labels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from hf_softnce.batch import CandidateBatch, HashIndex, check_on_device, text_index
from hf_softnce.data.schema import resolve_columns


class RelevanceEstimator:
    """Estimates the relevance ``r_ij`` of every candidate ``j`` to every local query ``i`` of a batch.

    Subclasses set the paper's ``default_alpha``/``default_beta``/``default_temperature`` and implement
    :meth:`relevance`. Scores carry no gradient. ``signed`` says whether negative scores are meaningful
    (cosines are; BM25 scores and precomputed relevance are not, and negative ones are rejected).
    """

    default_alpha: float = 1.0
    default_beta: float = 1.0
    default_temperature: float = 1.0
    signed: bool = True

    def bind(self, model, prompt_lengths: tuple[int, ...] = ()) -> None:
        """Called by a loss with the model being trained (its tokenizer defines the text hashes) and the trainer's
        prompt lengths seen so far (each truncates long texts differently); again whenever either changes."""

    def relevance(self, batch: CandidateBatch) -> Tensor:
        raise NotImplementedError

    def get_config_dict(self) -> dict[str, Any]:
        return {"name": type(self).__name__}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config_dict()})"



class UniformWeighter(RelevanceEstimator):
    """All candidates equally relevant: weights are exactly 1 and the loss is MultipleNegativesRankingLoss.

    Defined with the interface because it is the interface's neutral value: SoftInfoNCELoss uses it for
    ``weighter=None``, and the losses import nothing of the estimators but this module."""

    def relevance(self, batch: CandidateBatch) -> Tensor:
        return torch.zeros(batch.negative_mask.shape, device=batch.negative_mask.device)

def _unique(texts: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(texts))


class FittedTextEstimator(RelevanceEstimator):
    """An estimator fitted on the training texts, looking them up by hash at training time.

    ``fit`` takes the training data (a Dataset with ``query``, ``code`` and optional ``negative_*`` columns,
    or lists). A query-query estimator (the paper's BM25 and SimCSE weighting) scores a candidate code through its
    docstring: a batch's positive through its own row's query; a hard negative through the first query it is paired
    with in the training data, or its own text when it is only ever a negative
    (:meth:`candidate_docstring_rows`). A text the estimator never saw is an error, never a silent default.
    """

    def __init__(self) -> None:
        self.queries: list[str] | None = None
        self.codes: list[str] | None = None
        self.code_query_row: Tensor | None = None  # paired query of each code, -1 if none
        self._query_index: HashIndex | None = None
        self._code_index: HashIndex | None = None

    # ----- fitting on texts -------------------------------------------------------------------------
    def fit(self, data, codes: Sequence[str] | None = None, *, negatives: Sequence[str] = ()):
        """Fit on a Dataset (columns as sentence-transformers reads them: ``query``/``code``/``negative_*``,
        ``anchor``/``positive``/``negative_*``, or any names by position), or on ``(queries, codes)`` lists."""
        if hasattr(data, "column_names"):
            columns = resolve_columns(data.column_names, f"{type(self).__name__}.fit data")
            queries, codes = list(data[columns.query]), list(data[columns.code])
            negatives = [text for column in columns.negatives for text in data[column]]
        else:
            queries = list(data)
            codes = list(codes) if codes is not None else []
        if codes and len(codes) != len(queries):
            raise ValueError(f"fit got {len(queries)} queries but {len(codes)} codes; they must pair up.")
        if not queries:
            raise ValueError(f"{type(self).__name__}.fit got no queries.")
        self.queries = _unique(queries)
        query_row = {text: row for row, text in enumerate(self.queries)}
        paired: dict[str, int] = {}
        for query, code in zip(queries, codes):
            paired.setdefault(code, query_row[query])
        self.codes = _unique([*codes, *negatives])
        self.code_query_row = torch.tensor([paired.get(code, -1) for code in self.codes], dtype=torch.long)
        self._fit_texts()
        self._query_index = self._code_index = None
        return self

    def _fit_texts(self) -> None:
        """Build the representations of ``self.queries`` and ``self.codes``."""
        raise NotImplementedError

    # ----- binding to the trained model's tokenizer --------------------------------------------------
    def bind(self, model, prompt_lengths: tuple[int, ...] = ()) -> None:
        if self.queries is None:
            raise RuntimeError(
                f"{type(self).__name__} is not fitted: call .fit(train_dataset) before building the loss."
            )
        self._query_index = text_index(model, self.queries, prompt_lengths=prompt_lengths)
        self._code_index = text_index(model, self.codes, prompt_lengths=prompt_lengths) if self.codes else HashIndex(
            torch.empty(0, dtype=torch.long)
        )

    def _lookup(self, index: HashIndex | None, hashes: Tensor, what: str) -> Tensor:
        if index is None:
            raise RuntimeError(f"{type(self).__name__} is not bound to a model: pass it to a hf_softnce loss.")
        rows = index.lookup(hashes)
        check_on_device(
            (rows >= 0).all(),
            lambda: (
                f"{type(self).__name__}: {int((rows < 0).sum())} of {len(rows)} {what} texts were not seen by "
                "fit(). Fit the estimator on the data you train on (its query, code and negative_* columns). "
                "Texts are matched by their token ids (prompts removed, at every truncation a prompt causes): "
                "a tokenizer change, or a data collator with its own max_length (set model.max_seq_length "
                "instead), also makes a fitted text unknown."
            ),
            KeyError,
        )
        return rows

    def on_device(self, name: str, device: torch.device) -> Tensor:
        """Fitted tensor ``self.<name>`` on ``device``, copied once (not at every step)."""
        cache = self.__dict__.setdefault("_device_copies", {})
        tensor = getattr(self, name)
        key = (name, device)
        if key not in cache or cache[key][0] is not tensor:
            cache[key] = (tensor, tensor.to(device))
        return cache[key][1]

    def query_rows(self, batch: CandidateBatch) -> Tensor:
        return self._lookup(self._query_index, batch.query_hashes[batch.local_rows], "query")

    def candidate_code_rows(self, batch: CandidateBatch) -> Tensor:
        return self._lookup(self._code_index, batch.candidate_hashes, "candidate")

    def candidate_docstring_rows(self, batch: CandidateBatch) -> tuple[Tensor, Tensor]:
        """``(global query rows, negative code rows)`` for a query-query estimator: the fitted row of every query of
        the global batch, which is also how each positive-column candidate is represented (a code answering several
        queries is scored through the one it is paired with in this batch, not through whichever came first in the
        data; this rank's queries are ``rows[batch.local_rows]``); each hard negative by its fitted code (its first
        paired query, or its own text)."""
        queries = self._lookup(self._query_index, batch.query_hashes, "query")
        negatives = self._lookup(self._code_index, batch.candidate_hashes[batch.global_batch:], "candidate")
        return queries, negatives

    def get_config_dict(self) -> dict[str, Any]:
        config = super().get_config_dict()
        if self.queries is not None:
            config.update(fitted_queries=len(self.queries), fitted_codes=len(self.codes))
        return config
