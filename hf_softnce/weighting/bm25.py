"""BM25 relevance between queries, as in Soft-InfoNCE's BM25 weighting."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.feature_extraction.text import CountVectorizer
from torch import Tensor

from hf_softnce.batch import CandidateBatch
from hf_softnce.weighting.base import FittedTextEstimator

_WORD = re.compile(r"[A-Za-z][a-z]*|[A-Z]+(?![a-z])|\d+")


def code_aware_words(text: str) -> list[str]:
    """Lower-cased words, with snake_case and camelCase identifiers split into their parts."""
    return [word.lower() for word in _WORD.findall(text)]


class BM25Weighter(FittedTextEstimator):
    """Query-query BM25: a candidate code's relevance to query ``i`` is the BM25 score of its docstring against
    query ``i``: a batch's positive's own row's query; a hard negative's paired query in the training data (the first,
    when several), or its own text for a code seen only as a negative.

    Two IDF choices:

    - ``idf="corpus"`` (default): words from a code-aware regex tokenizer (snake_case and camelCase split), IDF
      ``log((N - n + 0.5) / (n + 0.5) + 1)`` fitted once on all training queries, so never negative. Scores are
      precomputed as sparse matrices: a training step is a sparse row lookup and one sparse product.
    - ``idf="batch"``: the released ``score_BM25`` (Soft-InfoNCE, CodeBERT/run_siamese_test.py and
      GraphCodeBERT/run.py, the ``if args.bm25:`` block of ``train``): terms are the *model's tokenizer ids*
      (special tokens left out, the released ``token > 3`` for RoBERTa), the documents are the batch's candidates'
      docstrings, ``N`` the number of candidates and ``n`` how many of them hold the term, IDF
      ``log((N - n + 0.5) / (n + 0.5))`` (``R = r = 0``), which is negative for a term in more than half of the
      batch; ``dl`` counts a document's non-special tokens, ``avdl`` is the mean token count of the training
      queries with their two special tokens (the released ``avg_len``); every occurrence of a term in query
      ``i`` adds its score (``qf = 1``, so the ``k2`` factor is 1). With (query, code) pairs the candidates are
      the batch's positives, so this is the released score exactly. Relevance is signed.

    The paper's alpha=1.5, beta=0.5, t=1 were tuned on the released scale, ``idf="batch"``; ``"corpus"`` applies
    them to another scale. Measured on the 8-query batch of ``tests/test_weighters.py`` with all-MiniLM-L6-v2's
    tokenizer: negatives' relevance spans [0, 3.90] with corpus IDF and [-3.90, 2.83] with batch IDF, and the
    negative clipped to 0.1 differs (query 0 "read a gzip file ...": the json-file query under corpus IDF, the
    other gzip query under batch IDF). Signed IDF has a released quirk: a negative sharing only common words
    ("a", "the") scores below one sharing nothing (0), so the latter is down-weighted most.

    Args:
        k1, b: BM25's term-frequency saturation and length normalisation (released: 1.2, 0.75).
        idf: ``"corpus"`` or ``"batch"`` (see above).
    Defaults: alpha=1.5, beta=0.5, temperature=1 (Soft-InfoNCE's BM25 setting).

    Example:
        ::

            weighter = BM25Weighter(idf="batch").fit(train_dataset)
            loss = SoftInfoNCELoss(model, weighter)
    """

    default_alpha, default_beta, default_temperature = 1.5, 0.5, 1.0
    signed = False

    def __init__(self, k1: float = 1.2, b: float = 0.75, *, idf: str = "corpus") -> None:
        super().__init__()
        if idf not in ("corpus", "batch"):
            raise ValueError(f"idf must be 'corpus' or 'batch', got {idf!r}.")
        self.k1, self.b, self.idf = k1, b, idf
        self.signed = idf == "batch"  # the released per-batch IDF is negative for terms in most documents

    def _fit_texts(self) -> None:
        if self.idf == "batch":
            self._query_tokens = None  # token ids need the trained model's tokenizer: built in bind()
            return
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
        self._query_documents = documents[:n_queries].T.tocsc()  # (vocab, queries): a positive's own docstring
        self._query_terms = query_counts  # (queries, vocab): query-side term counts
        self.vocabulary_size = len(vectorizer.vocabulary_)

    def _saturate(self, counts: sp.csr_matrix, idf: np.ndarray, average_length: float) -> sp.csr_matrix:
        lengths = np.asarray(counts.sum(axis=1)).ravel()
        counts = counts.tocoo()
        tf = counts.data
        norm = self.k1 * (1 - self.b + self.b * lengths[counts.row] / average_length)
        data = idf[counts.col] * tf * (self.k1 + 1) / (tf + norm)
        return sp.csr_matrix((data.astype(np.float32), (counts.row, counts.col)), shape=counts.shape)

    # ----- idf="batch": the released per-batch score on the model's token ids ---------------------------
    def bind(self, model, prompt_lengths: tuple[int, ...] = ()) -> None:
        super().bind(model, prompt_lengths)
        if self.idf == "batch":
            self._bind_tokens(model)

    def _bind_tokens(self, model) -> None:
        special = torch.tensor(sorted(set(getattr(model.tokenizer, "all_special_ids", []))), dtype=torch.long)
        query_ids, query_lengths = self._token_ids(model, self.queries, special)
        # The released avg_len: mean len(nl_tokens) over the training queries, [CLS] and [SEP] included.
        self.average_length = float(query_lengths.float().mean())
        unpaired = (self.code_query_row < 0).nonzero().flatten()
        own_ids, _ = self._token_ids(model, [self.codes[i] for i in unpaired.tolist()], special)
        width = max(query_ids.shape[1], own_ids.shape[1])
        query_ids = torch.nn.functional.pad(query_ids, (0, width - query_ids.shape[1]), value=-1)
        own_ids = torch.nn.functional.pad(own_ids, (0, width - own_ids.shape[1]), value=-1)
        # Each code's document: its paired query's tokens, or its own text's (rows after the queries).
        document_row = self.code_query_row.clone()
        document_row[unpaired] = torch.arange(len(self.queries), len(self.queries) + len(unpaired))
        self._query_tokens = query_ids
        self._code_tokens = torch.cat([query_ids, own_ids])[document_row]

    @staticmethod
    def _token_ids(model, texts: list[str], special: Tensor, batch_size: int = 512) -> tuple[Tensor, Tensor]:
        """``(texts, max_tokens)`` non-special token ids padded with -1, and each text's full token count."""
        rows, lengths = [], []
        for start in range(0, len(texts), batch_size):
            features = model.preprocess(texts[start : start + batch_size])
            ids, mask = features["input_ids"].long(), features["attention_mask"].bool()
            lengths.append(mask.sum(dim=1))
            keep = mask & ~torch.isin(ids, special)
            rows.extend(row[kept] for row, kept in zip(ids, keep))
        if not rows:
            return torch.empty(0, 1, dtype=torch.long), torch.empty(0, dtype=torch.long)
        padded = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=-1)
        return padded, torch.cat(lengths)

    def _batch_relevance(self, batch: CandidateBatch) -> Tensor:
        if self._query_tokens is None:
            raise RuntimeError("BM25Weighter(idf='batch') is not bound to a model: pass it to a hf_softnce loss.")
        rows, negatives = (r.cpu() for r in self.candidate_docstring_rows(batch))
        queries = self._query_tokens[rows[batch.local_rows.cpu()]]
        documents = torch.cat([self._query_tokens[rows], self._code_tokens[negatives]])  # positives: their queries
        vocabulary, inverse = torch.unique(torch.cat([queries, documents]).flatten(), return_inverse=True)
        inverse = inverse.view(len(queries) + len(documents), -1)
        counts = torch.zeros(inverse.shape[0], len(vocabulary))
        counts.scatter_add_(1, inverse, torch.ones(inverse.shape))
        counts[:, vocabulary < 0] = 0.0  # padding
        query_counts, document_counts = counts[: len(queries)], counts[len(queries) :]
        n_documents = float(len(documents))
        document_frequency = (document_counts > 0).sum(dim=0).float()
        # score_BM25's first factor with R = r = 0: log((N - n + 0.5) / (n + 0.5)), negative when n > N/2.
        idf = torch.log((n_documents - document_frequency + 0.5) / (document_frequency + 0.5))
        lengths = document_counts.sum(dim=1, keepdim=True)
        norm = self.k1 * (1 - self.b + self.b * lengths / self.average_length)
        saturated = idf * (self.k1 + 1) * document_counts / (norm + document_counts)
        return (query_counts @ saturated.T).to(batch.negative_mask.device)

    def relevance(self, batch: CandidateBatch) -> Tensor:
        if self.idf == "batch":
            return self._batch_relevance(batch)
        rows, negatives = (r.cpu().numpy() for r in self.candidate_docstring_rows(batch))
        documents = sp.hstack([self._query_documents[:, rows], self._code_documents[:, negatives]]).tocsc()
        scores = (self._query_terms[rows[batch.local_rows.cpu().numpy()]] @ documents).toarray()
        return torch.from_numpy(scores).to(batch.negative_mask.device)

    def get_config_dict(self) -> dict[str, Any]:
        return {**super().get_config_dict(), "k1": self.k1, "b": self.b, "idf": self.idf}
