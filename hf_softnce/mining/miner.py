"""Ranking-based hard-negative mining (R2PS, Dong et al. 2023), with duplicate-aware exclusion.

A frozen retriever ranks the whole codebase for every query; negatives are taken from that ranking by rank
(a fixed window, the top, or a rank-decaying random draw), never from the query's own positive, its duplicate
group or the other positives of the same query text.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from hf_softnce.data.schema import LABEL_COLUMN, all_columns, identity_out_of_rows, resolve_columns
from hf_softnce.embedding_cache import encode_cached, prompt_name_for
from hf_softnce.mining.corpus import MiningCorpus, read_pairs
from hf_softnce.mining.eligibility import eligible_candidates
from hf_softnce.mining.sampling import STRATEGIES, sample_ranks, window_ranks
from hf_softnce.model_checks import require_bi_encoder
from hf_softnce.retrieval.search import search_score, top_k_search

logger = logging.getLogger(__name__)

# "n-tuple"/"cross-encoder": one row per query with negative_1..k; the other three are the layouts of
# sentence-transformers' mine_hard_negatives, for its losses and evaluators.
OUTPUT_FORMATS = ("n-tuple", "cross-encoder", "triplet", "labeled-pair", "labeled-list")


@dataclass
class MiningReport:
    """What the last :meth:`RankingHardNegativeMiner.mine` call did; nothing it skipped goes unreported."""

    rows: int
    mined: int
    corpus_size: int
    strategy: str
    window_start: int
    skipped_rows: list[int] = field(default_factory=list)
    # Counted among the candidates actually retrieved for each row (the search stops once it has enough).
    dropped_by_absolute_margin: int = 0
    dropped_by_relative_margin: int = 0
    max_search_depth: int = 0
    # Codes never eligible: each row's positive, its duplicate group and the other positives of its query.
    excluded: int = 0

    @property
    def skipped(self) -> int:
        return len(self.skipped_rows)

    def summary(self) -> str:
        text = (
            f"Mined negatives for {self.mined:,} of {self.rows:,} rows against {self.corpus_size:,} unique codes "
            f"(strategy={self.strategy}, window_start={self.window_start}, deepest search={self.max_search_depth})."
        )
        if self.excluded:
            text += f" Excluded {self.excluded:,} (row, code) pairs: positives, their duplicate groups and co-positives."
        if self.dropped_by_absolute_margin or self.dropped_by_relative_margin:
            text += (
                f" Margins dropped {self.dropped_by_absolute_margin:,} (absolute) and "
                f"{self.dropped_by_relative_margin:,} (relative) candidates."
            )
        if self.skipped:
            text += f" Skipped {self.skipped:,} rows with too few eligible negatives (first: {self.skipped_rows[:10]})."
        return text


class RankingHardNegativeMiner:
    """Mine hard negatives for (query, code) pairs from a retriever's ranking of the whole corpus.

    Ranks are counted *after exclusion*: rank 0 is the best-scored corpus entry that is not the row's
    positive, not in its ``dup_group``, not another positive of the same query text and not dropped by a
    margin. So ``window_start=0, num_negatives=31`` are the 31 hardest eligible negatives, and the R2PS window
    ``[floor(lambda*N), floor(lambda*N)+31)`` is ``window_fraction=lambda`` without the released code's defect of
    counting the positive as its own negative.

    Args:
        retriever: a frozen ``SentenceTransformer`` with cosine or dot-product similarity.
        num_negatives: negatives per row (R2PS: 31).
        strategy: ``"window"`` (ranks ``[window_start, window_start + num_negatives)``), ``"top"`` (the same
            with ``window_start=0``), or ``"probabilistic"`` (``num_negatives`` ranks drawn without replacement
            from ``[window_start, window_start + top_k)``, rank ``r`` with weight ``exp(-(r - window_start) /
            temperature)``; reproducible for a given ``seed``).
        window_start: first rank used, as an int (R2PS's ``floor(lambda*N)``).
        window_fraction: ``lambda``: ``window_start = floor(lambda * corpus size)``; exclusive with ``window_start``.
        top_k: size of the probabilistic sampling pool.
        temperature: rank temperature of the probabilistic strategy (in ranks: weight falls by ``e`` every
            ``temperature`` ranks).
        seed: seed of the probabilistic draw.
        absolute_margin: drop candidates scoring above ``positive_score - absolute_margin``.
        relative_margin: drop candidates scoring above ``positive_score - |positive_score| * relative_margin``
            (``positive_score * (1 - relative_margin)`` for a non-negative positive score), as in
            sentence-transformers' ``mine_hard_negatives``.
        on_shortfall: ``"skip"`` leaves out rows with fewer than ``num_negatives`` eligible negatives and counts
            them in :attr:`last_report` (and a warning); ``"error"`` raises instead.
        batch_size: encoding batch size.
        use_faiss: ``None`` uses FAISS when installed; see :func:`hf_softnce.retrieval.top_k_search`.
        cache: embeddings cache (see :func:`hf_softnce.embedding_cache.encode_cached`): ``True``, a folder, or
            ``False``.
        device: encoding device, or a list of devices for sentence-transformers' multi-process encoding. ``None``
            uses every CUDA device when there are several, else the retriever's own device (a CPU process pool
            brings nothing when torch already uses every core).
        query_prompt_name / corpus_prompt_name: prompts for the two sides; ``None`` picks them like
            ``encode_query`` / ``encode_document`` do.
        rows_per_search: rows searched together; bounds the memory of one round of candidates.
        show_progress_bar: show encoding and mining progress.

    Example:
        >>> miner = RankingHardNegativeMiner(SentenceTransformer(default_model_path()), num_negatives=7)
        >>> mined = miner.mine(train, output_scores=True)  # query, code, negative_1..7, label, dup_group, ...
        >>> print(miner.last_report.summary())
    """

    def __init__(
        self,
        retriever,
        *,
        num_negatives: int = 31,
        strategy: Literal["window", "probabilistic", "top"] = "window",
        window_start: int = 0,
        window_fraction: float | None = None,
        top_k: int = 100,
        temperature: float = 10.0,
        seed: int = 0,
        absolute_margin: float | None = None,
        relative_margin: float | None = None,
        on_shortfall: Literal["skip", "error"] = "skip",
        batch_size: int = 64,
        use_faiss: bool | None = None,
        cache: bool | str = True,
        device: str | list[str] | None = None,
        query_prompt_name: str | None = None,
        corpus_prompt_name: str | None = None,
        rows_per_search: int = 4096,
        show_progress_bar: bool = True,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}.")
        if not isinstance(num_negatives, int) or num_negatives < 1:
            raise ValueError(f"num_negatives must be a positive integer, got {num_negatives!r}.")
        if not isinstance(window_start, int) or window_start < 0:
            raise ValueError(f"window_start must be a non-negative integer, got {window_start!r}.")
        if window_fraction is not None:
            if window_start:
                raise ValueError("Give window_start or window_fraction, not both.")
            if not 0.0 <= window_fraction < 1.0:
                raise ValueError(f"window_fraction must lie in [0, 1), got {window_fraction}.")
        if strategy == "top" and (window_start or window_fraction):
            raise ValueError("strategy='top' starts at rank 0; use strategy='window' to start elsewhere.")
        if strategy == "probabilistic":
            if top_k < num_negatives:
                raise ValueError(f"top_k={top_k} must be at least num_negatives={num_negatives}.")
            if not temperature > 0:
                raise ValueError(f"temperature must be positive, got {temperature}.")
        if on_shortfall not in ("skip", "error"):
            raise ValueError(f"on_shortfall must be 'skip' or 'error', got {on_shortfall!r}.")
        # NaN compares false with every score: a NaN margin would drop nothing, silently.
        if absolute_margin is not None and not (math.isfinite(absolute_margin) and absolute_margin >= 0):
            raise ValueError(f"absolute_margin must be a finite number >= 0, got {absolute_margin}.")
        if relative_margin is not None and not 0.0 <= relative_margin < 1.0:
            raise ValueError(f"relative_margin must lie in [0, 1), got {relative_margin}.")
        require_bi_encoder(retriever, type(self).__name__)
        self.retriever = retriever
        self.num_negatives = num_negatives
        self.strategy = strategy
        self.window_start = window_start
        self.window_fraction = window_fraction
        self.top_k = top_k
        self.temperature = temperature
        self.seed = seed
        self.absolute_margin = absolute_margin
        self.relative_margin = relative_margin
        self.on_shortfall = on_shortfall
        self.batch_size = batch_size
        self.use_faiss = use_faiss
        self.cache = cache
        self.device = device
        self.query_prompt_name = query_prompt_name
        self.corpus_prompt_name = corpus_prompt_name
        self.rows_per_search = rows_per_search
        self.show_progress_bar = show_progress_bar
        self.score = search_score(retriever)
        self.last_report: MiningReport | None = None

    # -- public -----------------------------------------------------------------------------------------

    def mine(
        self,
        dataset,
        corpus=None,
        *,
        output_format: str = "n-tuple",
        output_scores: bool = False,
        keep_identity_columns: bool = False,
    ):
        """Add ``negative_1..k`` (and with ``output_scores`` a ``label`` list) to a (query, code) dataset.

        Args:
            dataset: a ``datasets.Dataset`` of (query, code) pairs: ``query``/``code`` by name, or any two text
                columns by position (``anchor``/``positive``, ...); identity columns (``id``, ``dup_group``, ...)
                are read by name (``dup_group`` excludes duplicates) and old negatives/scores are replaced.
            corpus: the codes to rank; ``None`` for the dataset's unique codes, a list of codes, or
                ``{code: dup_group}``. It must contain every positive.
            output_format: ``"n-tuple"`` (query, code, negative_1..k: the bi-encoder losses) or
                ``"cross-encoder"``: the same columns, which is what sentence-transformers' CrossEncoder
                ``MultipleNegativesRankingLoss``/``CachedMultipleNegativesRankingLoss`` take as 1 positive +
                k negatives per query (and what the R2PS ranker loss reads).
                ``"triplet"`` (query, code, negative: one row per negative), ``"labeled-pair"`` (query, code,
                label 1/0: one row per candidate) and ``"labeled-list"`` (query, [candidates], labels [1, 0, ...])
                are sentence-transformers' ``mine_hard_negatives`` formats.
            output_scores: add the retriever's scores. n-tuple: ``label`` = ``[positive, negative_1, ...,
                negative_k]``, one per candidate column (read by ``PrecomputedWeighter`` and ``OrderInfoNCELoss``);
                the other formats name them like ``mine_hard_negatives`` (``scores``, or ``score`` per pair).
            keep_identity_columns: keep the identity columns (``id``, ``dup_group``, ...) after the model's
                columns (n-tuple formats only). Either way the result trains as is with
                ``SentenceTransformerTrainer`` and ``CrossEncoderTrainer``, which tokenize every column of a row
                but the label: kept identity columns stay in the table but out of its rows
                (:func:`hf_softnce.data.identity_out_of_rows`; read them with ``all_columns(mined)["id"]``).

        Returns:
            A ``datasets.Dataset``: the mined rows in input order; :attr:`last_report` says what was skipped.
        """
        if output_format not in OUTPUT_FORMATS:
            raise ValueError(f"output_format must be one of {OUTPUT_FORMATS}, got {output_format!r}.")
        if keep_identity_columns and output_format not in ("n-tuple", "cross-encoder"):
            raise ValueError(f"keep_identity_columns=True needs one row per query (n-tuple), not {output_format!r}.")
        dataset = all_columns(dataset)
        queries, codes, dup_groups = read_pairs(dataset)
        mining_corpus = MiningCorpus.build(codes, dup_groups, corpus)
        positives = mining_corpus.positions_of(codes)
        excluded_groups = mining_corpus.excluded_groups(queries, positives)
        corpus_size = len(mining_corpus)
        start = self._resolve_window_start(corpus_size)
        self._check_corpus_is_large_enough(corpus_size, start)

        unique_queries = list(dict.fromkeys(queries))
        query_row = {query: i for i, query in enumerate(unique_queries)}
        query_of_row = torch.tensor([query_row[query] for query in queries], dtype=torch.long)
        corpus_embeddings = self._encode(mining_corpus.texts, "document")
        query_embeddings = self._encode(unique_queries, "query")

        span = self.top_k if self.strategy == "probabilistic" else self.num_negatives
        needed = start + span  # eligible ranks a row must know before its negatives are settled
        margins = self.absolute_margin is not None or self.relative_margin is not None
        excluded_counts = mining_corpus.excluded_counts(excluded_groups)
        generator = torch.Generator().manual_seed(self.seed)
        report = MiningReport(len(queries), 0, corpus_size, self.strategy, start, excluded=int(excluded_counts.sum()))

        negatives, scores, positive_scores, mined = [], [], [], []
        row_chunks = range(0, len(queries), self.rows_per_search)
        for chunk_start in tqdm(row_chunks, desc="Mining negatives", disable=not self.show_progress_bar):
            rows = torch.arange(chunk_start, min(chunk_start + self.rows_per_search, len(queries)))
            chunk_queries = query_embeddings[query_of_row[rows]]
            chunk_positive_scores = self._pair_scores(chunk_queries, corpus_embeddings[positives[rows]])
            # First search depth: the ranks needed plus what nearly every row excludes (and, with margins, a
            # window's worth more); the rare row with a huge duplicate group is searched again, deeper.
            typical_exclusions = int(torch.quantile(excluded_counts[rows].double(), 0.99).ceil())
            first_depth = min(corpus_size, needed + typical_exclusions + (span if margins else 0))
            ranked_indices, ranked_scores, found = self._eligible_ranking(
                chunk_queries,
                corpus_embeddings,
                mining_corpus.group_ids,
                excluded_groups[rows],
                chunk_positive_scores,
                needed,
                first_depth,
                report,
            )
            if self.strategy == "probabilistic":
                ranks, ok = sample_ranks(found, start, self.num_negatives, self.top_k, self.temperature, generator)
            else:
                ranks, ok = window_ranks(found, start, self.num_negatives)
            if not ok.all():
                self._shortfall(rows[~ok], found[~ok], start, report)
            ranks = ranks[ok]
            negatives.append(ranked_indices[ok].gather(1, ranks))
            scores.append(ranked_scores[ok].gather(1, ranks))
            positive_scores.append(chunk_positive_scores[ok])
            mined.append(rows[ok])

        mined_rows = torch.cat(mined)
        report.mined = int(mined_rows.numel())
        self.last_report = report
        if not report.mined:
            raise ValueError(f"No row has {self.num_negatives} eligible negative(s): {report.summary()} Loosen the "
                             "margins, or rank a larger corpus.")
        if report.skipped:
            logger.warning(report.summary())
        else:
            logger.info(report.summary())
        return self._output(
            dataset,
            mining_corpus.texts,
            mined_rows,
            torch.cat(negatives),
            torch.cat(positive_scores),
            torch.cat(scores),
            output_scores,
            output_format,
            keep_identity_columns,
        )

    # -- steps ------------------------------------------------------------------------------------------

    def _resolve_window_start(self, corpus_size: int) -> int:
        if self.window_fraction is not None:
            return math.floor(self.window_fraction * corpus_size)
        return self.window_start

    def _check_corpus_is_large_enough(self, corpus_size: int, start: int) -> None:
        # Every row excludes at least its own positive, so corpus_size - 1 candidates is the most any row has.
        available = corpus_size - 1
        if self.strategy == "probabilistic" and self.top_k > available:
            raise ValueError(
                f"top_k={self.top_k} is larger than the corpus allows: {corpus_size} unique codes leave at most "
                f"{available} candidates per query once its positive is excluded."
            )
        if start + self.num_negatives > available:
            raise ValueError(
                f"Ranks [{start}, {start + self.num_negatives}) need at least {start + self.num_negatives} "
                f"negatives per query, but the corpus has {corpus_size} unique codes ({available} besides the "
                "positive). Lower num_negatives or window_start/window_fraction, or mine against a larger corpus."
            )

    def _encode(self, texts: list[str], side: Literal["query", "document"]) -> torch.Tensor:
        return encode_cached(
            self.retriever,
            texts,
            batch_size=self.batch_size,
            prompt_name=self._prompt_name(side),
            cache=self.cache,
            show_progress_bar=self.show_progress_bar,
            device=self._encode_device(),
        )

    def _prompt_name(self, side: str) -> str | None:
        explicit = self.query_prompt_name if side == "query" else self.corpus_prompt_name
        return prompt_name_for(self.retriever, side, explicit)

    def _encode_device(self):
        if self.device is not None:
            return self.device
        if torch.cuda.is_available() and torch.cuda.device_count() > 1:
            return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        return None

    def _pair_scores(self, queries: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        if self.score == "cos":
            queries, codes = F.normalize(queries, dim=-1), F.normalize(codes, dim=-1)
        return (queries * codes).sum(dim=-1)

    def _eligible_ranking(
        self, queries, corpus_embeddings, group_ids, excluded_groups, positive_scores, needed, depth, report
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The first ``needed`` eligible candidates of every row (corpus rows and scores) and how many exist.

        Rows whose search depth held too few eligible candidates (large duplicate groups, strict margins) are
        searched again twice as deep, up to the whole corpus, so the result is exact whatever the depth.
        """
        corpus_size = corpus_embeddings.shape[0]
        rows = queries.shape[0]
        ranked_indices = torch.zeros((rows, needed), dtype=torch.long)
        ranked_scores = torch.full((rows, needed), float("nan"))
        found = torch.zeros(rows, dtype=torch.long)
        pending = torch.arange(rows)
        while pending.numel():
            scores, indices = top_k_search(
                queries[pending], corpus_embeddings, depth, score=self.score, use_faiss=self.use_faiss
            )
            eligibility = eligible_candidates(
                indices,
                scores,
                group_ids,
                excluded_groups[pending],
                positive_scores[pending],
                absolute_margin=self.absolute_margin,
                relative_margin=self.relative_margin,
            )
            count = eligibility.eligible.sum(dim=1)
            settled = (count >= needed) | (depth >= corpus_size)
            eligible = eligibility.eligible[settled]
            rank = eligible.cumsum(dim=1) - 1
            take = eligible & (rank < needed)
            settled_rows = pending[settled]
            row_of_take = take.nonzero(as_tuple=True)[0]
            ranked_indices[settled_rows[row_of_take], rank[take]] = indices[settled][take]
            ranked_scores[settled_rows[row_of_take], rank[take]] = scores[settled][take]
            found[settled_rows] = count[settled].clamp(max=needed)
            report.dropped_by_absolute_margin += int(eligibility.dropped_by_absolute_margin[settled].sum())
            report.dropped_by_relative_margin += int(eligibility.dropped_by_relative_margin[settled].sum())
            report.max_search_depth = max(report.max_search_depth, depth)
            pending = pending[~settled]
            depth = min(corpus_size, depth * 2)
        return ranked_indices, ranked_scores, found

    def _shortfall(self, rows: torch.Tensor, found: torch.Tensor, start: int, report: MiningReport) -> None:
        if self.on_shortfall == "error":
            raise ValueError(
                f"Rows {rows[:10].tolist()} have too few eligible negatives (eligible candidates known: "
                f"{found[:10].tolist()}; needed ranks from {start} for {self.num_negatives} negatives). Relax the "
                "margins, lower num_negatives/window_start, or pass on_shortfall='skip' to leave such rows out."
            )
        report.skipped_rows.extend(rows.tolist())

    def _output(
        self,
        dataset,
        texts,
        rows,
        negatives,
        positive_scores,
        negative_scores,
        output_scores: bool,
        output_format: str = "n-tuple",
        keep_identity_columns: bool = True,
    ):
        columns = resolve_columns(dataset.column_names, "The dataset")
        query, code = columns.query, columns.code
        replaced = [*columns.negatives, *([columns.label] if columns.label else [])]
        if replaced:
            logger.info("Replacing the dataset's existing %s column(s) with the mined ones.", replaced)
        kept = [query, code, *(columns.identity if keep_identity_columns else ())]
        output = dataset.select_columns(kept).select(rows.tolist())
        negative_texts = [[texts[i] for i in row] for row in negatives.tolist()]
        if output_format in ("n-tuple", "cross-encoder"):
            new_columns = []
            for j in range(negatives.shape[1]):
                output = output.add_column(f"negative_{j + 1}", [row[j] for row in negative_texts])
                new_columns.append(f"negative_{j + 1}")
            if output_scores:
                labels = torch.cat([positive_scores.unsqueeze(1), negative_scores], dim=1).tolist()
                output = output.add_column(LABEL_COLUMN, labels)
                new_columns.append(LABEL_COLUMN)
            return identity_out_of_rows(output.select_columns([query, code, *new_columns, *kept[2:]]))
        return _st_format(
            output[query], output[code], negative_texts, positive_scores, negative_scores, query, code,
            output_format, output_scores,
        )


def _st_format(queries, codes, negatives, positive_scores, negative_scores, query, code, output_format, output_scores):
    """sentence-transformers' ``mine_hard_negatives`` layouts (same column names) from one row per query."""
    from datasets import Dataset

    positive_scores, negative_scores = positive_scores.tolist(), negative_scores.tolist()
    if output_format == "triplet":
        data = {query: [], code: [], "negative": []} | ({"scores": []} if output_scores else {})
        for q, c, row, pos, neg_row in zip(queries, codes, negatives, positive_scores, negative_scores):
            for negative, neg in zip(row, neg_row):
                data[query].append(q)
                data[code].append(c)
                data["negative"].append(negative)
                if output_scores:
                    data["scores"].append([pos, neg])
    elif output_format == "labeled-pair":
        target = "score" if output_scores else "label"
        data = {query: [], code: [], target: []}
        for q, c, row, pos, neg_row in zip(queries, codes, negatives, positive_scores, negative_scores):
            for text, score, label in [(c, pos, 1), *((n, s, 0) for n, s in zip(row, neg_row))]:
                data[query].append(q)
                data[code].append(text)
                data[target].append(score if output_scores else label)
    else:  # labeled-list
        data = {query: list(queries), code: [[c, *row] for c, row in zip(codes, negatives)]}
        if output_scores:
            data["scores"] = [[pos, *neg_row] for pos, neg_row in zip(positive_scores, negative_scores)]
        else:
            data["labels"] = [[1] + [0] * len(row) for row in negatives]
    return Dataset.from_dict(data)
