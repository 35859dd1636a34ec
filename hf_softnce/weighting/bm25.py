"""BM25 relevance between queries, as in Soft-InfoNCE's BM25 weighting."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.feature_extraction.text import CountVectorizer
from torch import Tensor

from hf_softnce.weighting.base import FittedTextEstimator
from hf_softnce.weighting.batch import CandidateBatch

_WORD = re.compile(r"[A-Za-z][a-z]*|[A-Z]+(?![a-z])|\d+")


def code_aware_words(text: str) -> list[str]:
    """Lower-cased words, with snake_case and camelCase identifiers split into their parts."""
    return [word.lower() for word in _WORD.findall(text)]


class BM25Weighter(FittedTextEstimator):
    """Query-query BM25: a candidate code's relevance to query ``i`` is the BM25 score of its docstring
    (the query it is paired with; its own text for a code seen only as a negative) against query ``i``.

    IDF statistics are fitted once on the training queries. Scores are precomputed as sparse matrices, so a
    training step is a sparse row lookup and one sparse matrix product: no per-pair Python loop.

    Args:
        k1, b: BM25's term-frequency saturation and length normalisation.
    Defaults: alpha=1.5, beta=0.5, temperature=1 (Soft-InfoNCE's BM25 setting).

    Example:
        ::

            weighter = BM25Weighter().fit(train_dataset)
            loss = SoftInfoNCELoss(model, weighter)
    """

    default_alpha, default_beta, default_temperature = 1.5, 0.5, 1.0
    signed = False

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        super().__init__()
        self.k1, self.b = k1, b

    def _fit_texts(self) -> None:
        vectorizer = CountVectorizer(tokenizer=code_aware_words, lowercase=False, token_pattern=None)
        query_counts = vectorizer.fit_transform(self.queries).tocsr().astype(np.float32)
        # IDF from the training queries only (BM25's +1 form keeps it non-negative).
        document_frequency = np.asarray((query_counts > 0).sum(axis=0)).ravel()
        n_queries = query_counts.shape[0]
        idf = np.log((n_queries - document_frequency + 0.5) / (document_frequency + 0.5) + 1.0).astype(np.float32)
        average_length = max(float(query_counts.sum()) / n_queries, 1e-6)

        unpaired = (self.code_query_row < 0).nonzero().flatten().tolist()
        unpaired_counts = vectorizer.transform([self.codes[i] for i in unpaired]).tocsr().astype(np.float32)
        documents = self._saturate(sp.vstack([query_counts, unpaired_counts]).tocsr(), idf, average_length)
        # Each code's document row: its paired query's, or its own text's (stacked after the queries).
        document_row = self.code_query_row.clone()
        document_row[unpaired] = torch.arange(n_queries, n_queries + len(unpaired))
        self._code_documents = documents[document_row.numpy()].T.tocsc()  # (vocab, codes)
        self._query_terms = query_counts  # (queries, vocab): query-side term counts
        self.vocabulary_size = len(vectorizer.vocabulary_)

    def _saturate(self, counts: sp.csr_matrix, idf: np.ndarray, average_length: float) -> sp.csr_matrix:
        lengths = np.asarray(counts.sum(axis=1)).ravel()
        counts = counts.tocoo()
        tf = counts.data
        norm = self.k1 * (1 - self.b + self.b * lengths[counts.row] / average_length)
        data = idf[counts.col] * tf * (self.k1 + 1) / (tf + norm)
        return sp.csr_matrix((data.astype(np.float32), (counts.row, counts.col)), shape=counts.shape)

    def relevance(self, batch: CandidateBatch) -> Tensor:
        query_rows = self.query_rows(batch).cpu().numpy()
        code_rows = self.candidate_code_rows(batch).cpu().numpy()
        scores = (self._query_terms[query_rows] @ self._code_documents[:, code_rows]).toarray()
        return torch.from_numpy(scores).to(batch.negative_mask.device)

    def get_config_dict(self) -> dict[str, Any]:
        return {**super().get_config_dict(), "k1": self.k1, "b": self.b}
