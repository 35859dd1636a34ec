"""The R2PS retriever->ranker cascade: a bi-encoder ranks the whole codebase, a cross-encoder re-ranks its top-k."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping, Sequence

from torch import nn

from hf_softnce.embedding_cache import encode_cached, prompt_name_for, texts_fingerprint
from hf_softnce.model_checks import require_bi_encoder, require_cross_encoder
from hf_softnce.retrieval.search import search_score, top_k_search

Ranking = list[tuple[Hashable, float]]
COMBINE_MODES = ("replace", "add")


class RetrieverRanker:
    """Search a codebase with a retriever, then re-score the retriever's top ``top_k`` with a ranker.

    Args:
        retriever: a SentenceTransformer (cosine or dot similarity); frozen while the cascade is used, since
            its corpus embeddings are computed once and cached (``encode_cached``: on disk and for the last corpus).
        ranker: a CrossEncoder scoring (query, code) pairs, e.g. trained with ``R2PSRankerLoss``.
        top_k: how many of the retriever's best candidates the ranker re-scores (R2PS: 10); 0 re-scores none,
            which is the retriever alone (what a selection falls back to when no setting beats the retriever).
        combine: ``"replace"``: a re-ranked candidate's score is the ranker score (R2PS on CodeSearchNet);
            ``"add"``: retriever score + ``ranker_weight`` x ranker score (R2PS on CoSQA: cosine + ``tanh(logit)``).
        ranker_weight: the ranker score's weight under ``"add"`` (> 0; R2PS: 1). Between the retriever alone (near 0)
            and ``"replace"`` (large): ``tanh`` scores span [-1, 1], cosines of a query's top candidates far less.
        batch_size: encoding and ranking batch size.
        activation_fn: applied to the ranker's logits. ``None`` (default) means ``tanh``, the released R2PS
            ranker's output (R2PS model.py, ``Unixcoder_RR.forward`` returns ``torch.tanh(self.head(outputs))``;
            run_unixcoder_rr_hard.py ``evaluate`` adds it to the retriever's cosine for CoSQA), whatever activation
            the CrossEncoder was saved with; a stock CrossEncoder's sigmoid would change the ``"add"`` ranking.
            Pass ``ranker.activation_fn`` to use the CrossEncoder's own.
        use_faiss: passed to ``top_k_search``.
        cache: ``encode_cached``'s ``cache`` (``True``, a folder, or ``False``).
        show_progress_bar: bars for encoding and re-ranking in :meth:`search` (off by default: a search is
            usually a few queries; :func:`evaluate_cascade` has its own switch, on by default).

    The re-ranked candidates come first, ordered by their new score; candidates beyond ``top_k`` follow in
    the retriever's order with their retriever scores (so scores are not comparable across that boundary
    under ``"replace"``: the list order is the ranking). ``last_latency_ms`` holds the last search's time per
    query of each stage (``retriever``: query encoding and search; ``ranker``: scoring ``top_k`` pairs).
    """

    def __init__(
        self,
        retriever,
        ranker,
        top_k: int = 10,
        combine: str = "replace",
        *,
        ranker_weight: float = 1.0,
        batch_size: int = 32,
        activation_fn: Callable | None = None,
        use_faiss: bool | None = None,
        cache: bool | str = True,
        show_progress_bar: bool = False,
    ) -> None:
        _check_models(retriever, ranker)
        if combine not in COMBINE_MODES:
            raise ValueError(f"combine must be one of {COMBINE_MODES}, got {combine!r}.")
        if not isinstance(top_k, int) or top_k < 0:
            raise ValueError(f"top_k must be an int >= 0 (0: the retriever alone), got {top_k!r}.")
        if not ranker_weight > 0:
            raise ValueError(f"ranker_weight must be > 0 (the ranker score's weight under combine='add'), got "
                             f"{ranker_weight!r}.")
        self.retriever = retriever
        self.ranker = ranker
        self.top_k = top_k
        self.combine = combine
        self.ranker_weight = ranker_weight
        self.batch_size = batch_size
        # tanh, not the CrossEncoder's default sigmoid: see the docstring.
        self.activation_fn = nn.Tanh() if activation_fn is None else activation_fn
        self.use_faiss = use_faiss
        self.cache = cache
        self.show_progress_bar = show_progress_bar
        self.last_latency_ms: dict[str, float] = {}
        self._corpus_memo: tuple[str, object] | None = None

    def search(
        self, queries: str | Sequence[str], corpus: Mapping[Hashable, str] | Sequence[str], top_k: int | None = None
    ) -> list[Ranking]:
        """Ranked ``(code_id, score)`` lists, one per query, best first.

        Args:
            queries: query texts (a single string is one query).
            corpus: ``{code_id: code}``, or a list of codes whose ids are their positions.
            top_k: length of each returned list; ``None`` returns the re-ranked ``self.top_k``. A longer list
                (e.g. 1000 for MRR@1000) continues with the retriever's order.
        """
        queries = [queries] if isinstance(queries, str) else list(queries)
        corpus = _as_corpus_dict(corpus)
        depth = self._depth(top_k, len(corpus))
        candidates, retriever_ms = self._timed(self.retrieve, queries, corpus, max(depth, self.top_k))
        reranked, ranker_ms = self._timed(self.rerank, queries, corpus, candidates)
        self.last_latency_ms = _per_query({"retriever": retriever_ms, "ranker": ranker_ms}, len(queries))
        return [ranking[:depth] for ranking in reranked]

    def retrieve(
        self, queries: Sequence[str], corpus: Mapping[Hashable, str], top_k: int, *,
        show_progress_bar: bool | None = None,
    ) -> list[Ranking]:
        """The retriever's own ranking: top ``top_k`` ``(code_id, score)`` per query.

        ``show_progress_bar``: ``None`` uses the cascade's own setting.
        """
        progress = self.show_progress_bar if show_progress_bar is None else show_progress_bar
        corpus = _as_corpus_dict(corpus)
        self._depth(top_k, len(corpus))
        if not queries:
            return []
        ids = list(corpus)
        query_embeddings = self.retriever.encode_query(
            list(queries), batch_size=self.batch_size, convert_to_tensor=True, show_progress_bar=progress
        )
        scores, indices = top_k_search(
            query_embeddings,
            self._corpus_embeddings([corpus[cid] for cid in ids], show_progress_bar=progress),
            top_k,
            score=search_score(self.retriever),
            use_faiss=self.use_faiss,
        )
        return [
            [(ids[i], s) for i, s in zip(row_indices, row_scores)]
            for row_indices, row_scores in zip(indices.tolist(), scores.tolist())
        ]

    def rerank(
        self, queries: Sequence[str], corpus: Mapping[Hashable, str], candidates: list[Ranking], *,
        show_progress_bar: bool | None = None,
    ) -> list[Ranking]:
        """Re-score the first ``self.top_k`` candidates of each query; the rest keep the retriever's order."""
        progress = self.show_progress_bar if show_progress_bar is None else show_progress_bar
        if len(queries) != len(candidates):
            raise ValueError(f"Got {len(queries)} queries but {len(candidates)} candidate lists.")
        heads = [ranking[: self.top_k] for ranking in candidates]
        pairs = [(query, corpus[cid]) for query, head in zip(queries, heads) for cid, _ in head]
        if not pairs:
            return [list(ranking) for ranking in candidates]
        # One predict call for every query's pairs: the ranker batches across queries.
        ranker_scores = self.ranker.predict(
            pairs, batch_size=self.batch_size, activation_fn=self.activation_fn, show_progress_bar=progress
        ).tolist()
        reranked, start = [], 0
        for head, ranking in zip(heads, candidates):
            scores = ranker_scores[start : start + len(head)]
            start += len(head)
            if self.combine == "add":
                weight = self.ranker_weight
                scores = [retriever_score + weight * score for (_, retriever_score), score in zip(head, scores)]
            # Stable sort: equal new scores keep the retriever's order.
            new_head = sorted(((cid, score) for (cid, _), score in zip(head, scores)), key=lambda item: -item[1])
            reranked.append(new_head + list(ranking[self.top_k :]))
        return reranked

    def _depth(self, top_k: int | None, corpus_size: int) -> int:
        if corpus_size == 0:
            raise ValueError("The corpus is empty: nothing to search.")
        if self.top_k > corpus_size:
            raise ValueError(
                f"The ranker re-scores top_k={self.top_k} candidates but the corpus has only {corpus_size} codes."
            )
        if top_k is None and self.top_k == 0:
            raise ValueError("top_k=None returns the re-ranked top_k candidates, and this cascade re-ranks none "
                             "(top_k=0): pass the list length, e.g. search(queries, corpus, top_k=10).")
        depth = self.top_k if top_k is None else top_k
        if not isinstance(depth, int) or not 1 <= depth <= corpus_size:
            raise ValueError(f"top_k={depth!r} must be an int between 1 and the corpus size ({corpus_size}).")
        return depth

    def _corpus_embeddings(self, codes: list[str], show_progress_bar: bool | None = None):
        # Fingerprinting the texts is cheaper than encode_cached's fingerprint of the retriever's weights.
        key = texts_fingerprint(codes)
        if self._corpus_memo is None or self._corpus_memo[0] != key:
            embeddings = encode_cached(
                self.retriever,
                codes,
                batch_size=self.batch_size,
                prompt_name=prompt_name_for(self.retriever, "document"),
                cache=self.cache,
                show_progress_bar=self.show_progress_bar if show_progress_bar is None else show_progress_bar,
            )
            self._corpus_memo = (key, embeddings)
        return self._corpus_memo[1]

    @staticmethod
    def _timed(function, *args, **kwargs):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        return result, (time.perf_counter() - start) * 1000.0


def _check_models(retriever, ranker) -> None:
    from sentence_transformers import CrossEncoder, SentenceTransformer

    if isinstance(retriever, CrossEncoder) and isinstance(ranker, SentenceTransformer):
        raise TypeError("RetrieverRanker got a CrossEncoder as retriever and a SentenceTransformer as ranker: the "
                        "arguments are swapped; write RetrieverRanker(retriever, ranker), the bi-encoder first.")
    require_bi_encoder(retriever, "RetrieverRanker's retriever")
    require_cross_encoder(ranker, "RetrieverRanker's ranker")


def _as_corpus_dict(corpus: Mapping[Hashable, str] | Sequence[str]) -> Mapping[Hashable, str]:
    if isinstance(corpus, Mapping):
        return corpus
    if isinstance(corpus, str):
        raise TypeError("corpus must be {code_id: code} or a list of codes, not a single string.")
    return dict(enumerate(corpus))


def _per_query(total_ms: dict[str, float], num_queries: int) -> dict[str, float]:
    return {stage: ms / max(num_queries, 1) for stage, ms in total_ms.items()}
