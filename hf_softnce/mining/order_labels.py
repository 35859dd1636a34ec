"""Order labels for OrderInfoNCE (OASIS): a teacher's score for every candidate of a row, then refinement.

``label_order`` adds ``label = [s(code), s(negative_1), ..., s(negative_k)]`` to a (query, code, negative_*)
dataset, the layout :class:`~hf_softnce.losses.OrderInfoNCELoss` and
:class:`~hf_softnce.weighting.PrecomputedWeighter` read. Refinement follows OASIS: negatives that look like
false negatives are flagged — teacher score at or above the positive's, above a threshold fitted with a
two-component Gaussian mixture, or a near-duplicate of the positive — and then raised, dropped or judged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from hf_softnce.data.duplicates import check_similarity_threshold
from hf_softnce.data.schema import CODE_COLUMN, LABEL_COLUMN, QUERY_COLUMN, all_columns, identity_out_of_rows, negative_columns
from hf_softnce.embedding_cache import encode_cached, prompt_name_for

logger = logging.getLogger(__name__)

REASONS = ("above_positive", "gmm", "near_duplicate")
ACTIONS = ("raise", "drop", "judge")
GMM_MAX_SAMPLES = 200_000
Judge = Callable[[str, str, str], "bool | float"]


@dataclass
class OrderLabelReport:
    """What the last :func:`label_order` call did. A negative flagged for several reasons counts once in
    ``flagged`` and once per reason in ``flagged_by_reason``."""

    rows: int
    negatives: int
    teacher: str
    action: str
    flagged: int = 0
    flagged_by_reason: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    raised: int = 0
    dropped: int = 0
    judged: int = 0
    judged_relevant: int = 0  # the judge returned True: label raised by raise_by
    judged_not_relevant: int = 0  # the judge returned False: label kept
    judged_rescored: int = 0  # the judge returned a number: label replaced by it
    rows_without_kept_negatives: int = 0  # rows whose every negative was dropped
    gmm_threshold: float | None = None
    gmm_means: tuple[float, float] | None = None
    gmm_note: str | None = None  # why no GMM threshold was set, when refinement asked for one
    refine: tuple[str, ...] = ()
    examples: list[tuple[int, str, tuple[str, ...]]] = field(default_factory=list)  # (row, column, reasons)

    def summary(self) -> str:
        text = f"Labelled {self.rows:,} rows ({self.negatives:,} negatives) with {self.teacher}."
        if not self.refine:
            return text + " No refinement."
        reasons = ", ".join(f"{reason}: {count:,}" for reason, count in self.flagged_by_reason.items())
        text += f" Flagged {self.flagged:,} negatives ({reasons})"
        if self.gmm_threshold is not None:
            text += f"; GMM threshold {self.gmm_threshold:.4g}"
        text += f". Action {self.action!r}: raised {self.raised:,}, dropped {self.dropped:,}, judged {self.judged:,}"
        if self.judged:
            text += (
                f" ({self.judged_relevant:,} relevant, {self.judged_not_relevant:,} not, "
                f"{self.judged_rescored:,} rescored)"
            )
        text += "."
        if self.rows_without_kept_negatives:
            text += f" {self.rows_without_kept_negatives:,} rows had every negative dropped."
        if self.gmm_note:
            text += f" GMM: {self.gmm_note}"
        return text


def label_order(
    dataset,
    teacher,
    *,
    refine: bool | Iterable[str] = True,
    action: Literal["raise", "drop", "judge"] = "raise",
    raise_by: float = 0.1,
    judge: Judge | None = None,
    near_duplicate_threshold: float = 0.8,
    gmm_posterior: float = 0.5,
    seed: int = 0,
    language: str = "python",
    batch_size: int = 64,
    cache: bool | str = True,
    query_prompt_name: str | None = None,
    corpus_prompt_name: str | None = None,
    show_progress_bar: bool = True,
):
    """Add OASIS order labels (a teacher's scores of every candidate column) to a dataset, and refine them.

    Args:
        dataset: a ``datasets.Dataset`` with ``query``, ``code`` and optional ``negative_1..k`` columns (e.g. the
            miner's output); other columns are kept. An existing ``label`` column is replaced.
        teacher: what scores each (query, candidate) pair:

            - a ``SentenceTransformer``: the cosine of its embeddings (each unique text embedded once, cached on
              disk by :func:`hf_softnce.embedding_cache.encode_cached`);
            - a ``CrossEncoder`` (e.g. the R2PS ranker): ``predict`` on the (query, candidate) pairs, one score
              per pair (a single-output model);
            - ``"bm25"`` or a :class:`~hf_softnce.weighting.BM25Weighter`: query-query BM25 as in Soft-InfoNCE
              (a candidate is scored through the query it is paired with, else its own text); an unfitted
              weighter is fitted on ``dataset``.
        refine: ``True`` for every flag in ``("above_positive", "gmm", "near_duplicate")``, ``False`` for none,
            or a subset:

            - ``"above_positive"``: the negative's teacher score is at or above its positive's;
            - ``"gmm"``: a two-component Gaussian mixture (``sklearn.mixture.GaussianMixture``) is fitted on all
              negative scores of the dataset; the threshold is the lowest negative score, at or above the low
              component's mean, whose posterior for the high-mean component exceeds ``gmm_posterior`` (0.5:
              where the high component becomes the likelier one; the mixture is fitted on at most 200,000 scores
              drawn with ``seed``). Every negative at or above it is flagged. The
              cut is one-sided on purpose: a broad low component can win back the far upper tail, which must not
              unflag the highest scores. With fewer than 4 negatives or a single distinct score no mixture is
              fitted and ``report.gmm_note`` says so;
            - ``"near_duplicate"``: the negative's code, normalized to its tokens
              (:func:`hf_softnce.data.duplicates.normalize_code`: no comments, docstrings or layout), has a
              token-level normalized Levenshtein similarity (rapidfuzz) to the positive's of at least
              ``near_duplicate_threshold``.
        action: what happens to a flagged negative:

            - ``"raise"``: its label is raised by ``raise_by``;
            - ``"drop"``: the n-tuple keeps its columns, so the negative cannot be deleted and there is no
              next-ranked candidate to put in its place. Its text is replaced by the row's positive code and its
              label by the positive's: hf_softnce's losses remove a candidate identical to the query's own
              positive from every term (``mask_duplicates=True``, the default), so the dropped negative takes part
              in nothing for its row. (For another row it is one more copy of an in-batch code.) Don't use it
              with losses that do not mask duplicates, such as plain MultipleNegativesRankingLoss;
            - ``"judge"``: ``judge(query, positive_code, negative_code)`` decides (e.g. an LLM): ``True`` (a false
              negative) raises the label by ``raise_by``, ``False`` keeps it, a number replaces it.
        raise_by: OASIS's adjustment Δ of a flagged (or judged relevant) negative's label.
        judge: the callback of ``action="judge"``.
        near_duplicate_threshold: token similarity at or above which a negative is a near-duplicate.
        gmm_posterior: posterior of the high component above which the GMM threshold lies.
        seed: the mixture's ``random_state``.
        language: language of the codes for normalization, unless the dataset has a ``language`` column.
        batch_size, cache, query_prompt_name, corpus_prompt_name: teacher encoding settings.
        show_progress_bar: bars for the teacher's encoding, the near-duplicate search and the judge's calls.

    Returns:
        ``(dataset, report)``: the dataset with ``label`` (list of floats, ``[code, negative_1..k]``) after the
        negative columns, and an :class:`OrderLabelReport` with the counts of flagged (by reason), raised, dropped
        and judged negatives.

    Example:
        >>> labelled, report = label_order(mined, SentenceTransformer(teacher_path), action="raise", raise_by=0.1)
        >>> print(report.summary())
        >>> loss = OrderInfoNCELoss(model)  # reads the label column
    """
    _check_options(action, judge, gmm_posterior, raise_by, near_duplicate_threshold)
    reasons = _refine_reasons(refine)
    dataset = all_columns(dataset)
    queries, columns, negative_names = _read_rows(dataset)
    scores, teacher_name = _teacher_scores(
        teacher,
        dataset,
        queries,
        columns,
        batch_size=batch_size,
        cache=cache,
        query_prompt_name=query_prompt_name,
        corpus_prompt_name=corpus_prompt_name,
        show_progress_bar=show_progress_bar,
    )
    if not np.isfinite(scores).all():
        bad = np.flatnonzero(~np.isfinite(scores).all(axis=1))
        raise ValueError(f"The teacher produced NaN or infinite scores for rows {bad[:10].tolist()}.")
    return _refine_and_output(
        dataset, queries, columns, negative_names, scores.astype(np.float64), teacher_name, reasons, action,
        raise_by, judge, near_duplicate_threshold, gmm_posterior, seed, language, show_progress_bar,
    )


def refine_order_labels(
    dataset,
    *,
    refine: bool | Iterable[str] = True,
    action: Literal["raise", "drop", "judge"] = "raise",
    raise_by: float = 0.1,
    judge: Judge | None = None,
    near_duplicate_threshold: float = 0.8,
    gmm_posterior: float = 0.5,
    seed: int = 0,
    language: str = "python",
    show_progress_bar: bool = True,
):
    """:func:`label_order`'s refinement alone, on a dataset that already has a ``label`` column
    ``[code, negative_1..k]`` (e.g. the miner's ``output_scores=True`` scores, or labels from elsewhere).

    Same arguments and return value as :func:`label_order`, without the teacher.
    """
    _check_options(action, judge, gmm_posterior, raise_by, near_duplicate_threshold)
    reasons = _refine_reasons(refine)
    dataset = all_columns(dataset)
    queries, columns, negative_names = _read_rows(dataset)
    if LABEL_COLUMN not in dataset.column_names:
        raise ValueError("refine_order_labels needs a 'label' column; use label_order(dataset, teacher) to add one.")
    labels = _read_labels(dataset[LABEL_COLUMN], len(columns))
    return _refine_and_output(
        dataset, queries, columns, negative_names, labels, "label column", reasons, action, raise_by, judge,
        near_duplicate_threshold, gmm_posterior, seed, language, show_progress_bar,
    )


def _refine_and_output(
    dataset, queries, columns, negative_names, labels, teacher_name, reasons, action, raise_by, judge,
    near_duplicate_threshold, gmm_posterior, seed, language, show_progress_bar=True,
):
    report = OrderLabelReport(
        rows=len(queries), negatives=len(queries) * len(negative_names), teacher=teacher_name, action=action,
        refine=reasons,
    )
    if reasons and negative_names:
        languages = list(dataset["language"]) if "language" in dataset.column_names else [language] * len(queries)
        flags = _flag(labels, columns, languages, reasons, near_duplicate_threshold, gmm_posterior, seed, report,
                      show_progress_bar)
        columns = _act(flags, labels, queries, columns, negative_names, action, raise_by, judge, report,
                       show_progress_bar)
    if report.gmm_note:
        logger.warning("label_order: %s", report.gmm_note)
    logger.info(report.summary())
    return _output(dataset, columns, negative_names, labels), report


# ----- inputs ---------------------------------------------------------------------------------------------
def _check_options(action, judge, gmm_posterior, raise_by, near_duplicate_threshold) -> None:
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}, got {action!r}.")
    if action == "judge" and judge is None:
        raise ValueError("action='judge' needs a judge(query, positive, negative) -> bool | float callback.")
    if judge is not None and action != "judge":
        raise ValueError(f"A judge was given but action={action!r}; pass action='judge' to use it.")
    if not 0.0 < gmm_posterior < 1.0:
        raise ValueError(f"gmm_posterior must be in (0, 1), got {gmm_posterior}.")
    if not math.isfinite(raise_by):
        raise ValueError(f"raise_by must be finite, got {raise_by}.")
    check_similarity_threshold(near_duplicate_threshold, "near_duplicate_threshold")


def _read_labels(values, width: int) -> np.ndarray:
    """The ``label`` column as a ``(rows, width)`` float array: one finite score per candidate column."""
    values = list(values)
    if width == 1:  # (query, code, score) pairs may carry a bare number
        values = [[value] if isinstance(value, (int, float)) else value for value in values]
    bad_length = [row for row, value in enumerate(values) if not hasattr(value, "__len__") or len(value) != width]
    if bad_length:
        raise ValueError(
            f"'label' must hold {width} scores per row ([code, negative_1..{width - 1}]); rows {bad_length[:10]} "
            "do not."
        )
    labels = np.asarray(values, dtype=np.float64).reshape(len(values), width)
    finite = np.isfinite(labels).all(axis=1)
    if not finite.all():
        raise ValueError(f"'label' has NaN or infinite scores in rows {np.flatnonzero(~finite)[:10].tolist()}.")
    return labels


def _refine_reasons(refine) -> tuple[str, ...]:
    if refine is True:
        return REASONS
    if refine is False or refine is None:
        return ()
    if isinstance(refine, str):
        refine = [refine]
    reasons = tuple(dict.fromkeys(refine))
    unknown = [reason for reason in reasons if reason not in REASONS]
    if unknown:
        raise ValueError(f"Unknown refinement(s) {unknown}; choose from {REASONS} (or True / False).")
    return reasons


def _read_rows(dataset) -> tuple[list[str], list[list[str]], list[str]]:
    """The queries, and the candidate columns ``[code, negative_1, ...]`` as lists of texts."""
    names = getattr(dataset, "column_names", None)
    if names is None:
        raise TypeError("label_order expects a datasets.Dataset with query, code and optional negative_* columns.")
    missing = [name for name in (QUERY_COLUMN, CODE_COLUMN) if name not in names]
    if missing:
        raise ValueError(f"label_order: the dataset lacks column(s) {missing}; it has {names}.")
    if len(dataset) == 0:
        raise ValueError("label_order got an empty dataset.")
    negative_names = negative_columns(names)
    queries = list(dataset[QUERY_COLUMN])
    columns = [list(dataset[name]) for name in (CODE_COLUMN, *negative_names)]
    for name, texts in zip((QUERY_COLUMN, CODE_COLUMN, *negative_names), (queries, *columns)):
        bad = [row for row, text in enumerate(texts) if not isinstance(text, str)]
        if bad:
            raise ValueError(f"label_order: column {name!r} has non-text values in rows {bad[:10]}.")
    return queries, columns, negative_names


# ----- teacher scores -------------------------------------------------------------------------------------
def _teacher_scores(teacher, dataset, queries, columns, **settings) -> tuple[np.ndarray, str]:
    """``(rows, 1 + k)`` scores of ``[code, negative_1..k]`` for each row's query, and the teacher's name."""
    from sentence_transformers import CrossEncoder, SentenceTransformer

    from hf_softnce.weighting.bm25 import BM25Weighter

    if isinstance(teacher, str):
        if teacher.lower() != "bm25":
            raise ValueError(
                f"teacher={teacher!r}: pass 'bm25', a BM25Weighter, or a loaded SentenceTransformer / CrossEncoder."
            )
        teacher = BM25Weighter()
    if isinstance(teacher, BM25Weighter):
        if teacher.queries is None:
            teacher.fit(dataset)
        return _bm25_scores(teacher, queries, columns), "BM25Weighter"
    if isinstance(teacher, CrossEncoder):
        return _cross_encoder_scores(teacher, queries, columns, settings), _model_name(teacher)
    if isinstance(teacher, SentenceTransformer):
        return _bi_encoder_scores(teacher, queries, columns, settings), _model_name(teacher)
    raise TypeError(
        f"Unsupported teacher {type(teacher).__name__}: use a SentenceTransformer, a CrossEncoder, 'bm25' or a "
        "BM25Weighter."
    )


def _model_name(model) -> str:
    card = getattr(model, "model_card_data", None)
    name = getattr(card, "base_model", None) or getattr(model, "name_or_path", None)
    return f"{type(model).__name__}({name})" if name else type(model).__name__


def _index(texts: Iterable[str]) -> tuple[list[str], dict[str, int]]:
    unique = list(dict.fromkeys(texts))
    return unique, {text: i for i, text in enumerate(unique)}


def _bi_encoder_scores(model, queries, columns, settings) -> np.ndarray:
    unique_queries, query_row = _index(queries)
    unique_codes, code_row = _index(text for column in columns for text in column)

    def encode(texts, explicit, side):
        return encode_cached(
            model, texts, batch_size=settings["batch_size"], normalize=True,
            prompt_name=prompt_name_for(model, side, explicit), cache=settings["cache"],
            show_progress_bar=settings["show_progress_bar"],
        )

    query_embeddings = encode(unique_queries, settings["query_prompt_name"], "query")
    code_embeddings = encode(unique_codes, settings["corpus_prompt_name"], "document")
    query_index = torch.tensor([query_row[q] for q in queries])
    code_index = torch.tensor([[code_row[text] for text in column] for column in columns]).T  # (rows, 1 + k)
    scores = []
    for start in range(0, len(queries), 4096):  # bounds the (rows, 1 + k, dim) gather
        q = query_embeddings[query_index[start : start + 4096]]
        c = code_embeddings[code_index[start : start + 4096]]
        scores.append(torch.einsum("rd,rkd->rk", q, c))
    return torch.cat(scores).double().numpy()


def _cross_encoder_scores(model, queries, columns, settings) -> np.ndarray:
    pairs, pair_row = _index((query, column[row]) for column in columns for row, query in enumerate(queries))
    predictions = model.predict(
        [list(pair) for pair in pairs],
        batch_size=settings["batch_size"],
        show_progress_bar=settings["show_progress_bar"],
        convert_to_numpy=True,
    )
    predictions = np.asarray(predictions, dtype=np.float64)
    if predictions.ndim == 2 and predictions.shape[1] == 1:
        predictions = predictions[:, 0]
    if predictions.ndim != 1:
        raise ValueError(
            f"The CrossEncoder teacher returns {predictions.shape[1:]} scores per pair; order labels need one "
            "(a model with num_labels=1)."
        )
    index = [[pair_row[(query, column[row])] for column in columns] for row, query in enumerate(queries)]
    return predictions[np.asarray(index, dtype=np.int64)]


def _bm25_scores(weighter, queries, columns) -> np.ndarray:
    # BM25Weighter scores through its fitted sparse matrices (query terms x code documents); only the
    # pairs of each row are needed, so an element-wise product of the gathered rows replaces the full product.
    query_row = {text: i for i, text in enumerate(weighter.queries)}
    code_row = {text: i for i, text in enumerate(weighter.codes)}
    unknown_queries = sum(q not in query_row for q in queries)
    unknown_codes = sum(text not in code_row for column in columns for text in column)
    if unknown_queries or unknown_codes:
        raise KeyError(
            f"The BM25Weighter was fitted on other texts: {unknown_queries} queries and {unknown_codes} candidates of "
            "this dataset are unknown to it. Fit it on this dataset (or pass teacher='bm25')."
        )
    rows, k = len(queries), len(columns)
    query_index = np.repeat(np.asarray([query_row[q] for q in queries]), k)
    code_index = np.asarray([[code_row[column[row]] for column in columns] for row in range(rows)]).ravel()
    query_terms = weighter._query_terms[query_index]
    documents = weighter._code_documents[:, code_index].T.tocsr()
    scores = np.asarray(query_terms.multiply(documents).sum(axis=1)).ravel()
    return scores.reshape(rows, k).astype(np.float64)


# ----- refinement -----------------------------------------------------------------------------------------
def _flag(labels, columns, languages, reasons, near_threshold, gmm_posterior, seed, report, progress=False
          ) -> np.ndarray:
    """``(rows, k)`` bit sets of the reasons each negative is flagged for (bit ``i`` = ``REASONS[i]``)."""
    negatives = labels[:, 1:]
    flags = np.zeros(negatives.shape, dtype=np.int64)
    if "above_positive" in reasons:
        flags |= (negatives >= labels[:, :1]).astype(np.int64) << REASONS.index("above_positive")
    if "gmm" in reasons:
        threshold = _gmm_threshold(negatives.ravel(), gmm_posterior, seed, report)
        if threshold is not None:
            flags |= (negatives >= threshold).astype(np.int64) << REASONS.index("gmm")
    if "near_duplicate" in reasons:
        flags |= _near_duplicates(columns, languages, near_threshold, progress).astype(np.int64) << REASONS.index(
            "near_duplicate"
        )
    for bit, reason in enumerate(REASONS):
        report.flagged_by_reason[reason] = int(((flags >> bit) & 1).sum())
    report.flagged = int((flags > 0).sum())
    return flags


def _gmm_threshold(scores: np.ndarray, posterior: float, seed: int, report: OrderLabelReport) -> float | None:
    from sklearn.mixture import GaussianMixture

    if len(scores) < 4 or np.unique(scores).size < 2:
        report.gmm_note = (
            f"no threshold: a two-component mixture needs at least 4 negatives with 2 distinct scores "
            f"(got {len(scores)} with {np.unique(scores).size} distinct)."
        )
        return None
    # A 1-D mixture is pinned down by far fewer points than a mined dataset has; fit on a seeded sample of them.
    sample = scores
    if len(scores) > GMM_MAX_SAMPLES:
        sample = np.random.default_rng(seed).choice(scores, GMM_MAX_SAMPLES, replace=False)
    mixture = GaussianMixture(n_components=2, random_state=seed).fit(sample.reshape(-1, 1))
    means = mixture.means_.ravel()
    high, low = int(np.argmax(means)), int(np.argmin(means))
    report.gmm_means = (float(means[low]), float(means[high]))
    if high == low or means[high] == means[low]:
        report.gmm_note = "no threshold: both mixture components have the same mean."
        return None
    p_high = mixture.predict_proba(scores.reshape(-1, 1))[:, high]
    above = scores[(scores >= means[low]) & (p_high > posterior)]
    if above.size == 0:
        report.gmm_note = f"no negative above the low component's mean has a high-component posterior > {posterior}."
        return None
    report.gmm_threshold = float(above.min())
    return report.gmm_threshold


def _near_duplicates(columns, languages, threshold, progress=False) -> np.ndarray:
    from rapidfuzz.distance import Levenshtein
    from tqdm.auto import tqdm

    from hf_softnce.data.duplicates import normalize_code

    tokens: dict[tuple[str, str], list[str]] = {}

    def tokens_of(code: str, language: str) -> list[str]:
        key = (code, language)
        if key not in tokens:
            tokens[key] = normalize_code(code, language).split(" ")
        return tokens[key]

    positives, negatives = columns[0], columns[1:]
    flags = np.zeros((len(positives), len(negatives)), dtype=bool)
    rows = tqdm(enumerate(zip(positives, languages)), total=len(positives), desc="Finding near-duplicates",
                unit="row", disable=not progress)
    for row, (positive, language) in rows:
        reference = tokens_of(positive, language or "python")
        for j, column in enumerate(negatives):
            similarity = Levenshtein.normalized_similarity(reference, tokens_of(column[row], language or "python"))
            flags[row, j] = similarity >= threshold
    return flags


def _act(flags, labels, queries, columns, negative_names, action, raise_by, judge, report, progress=False
         ) -> list[list[str]]:
    """Apply ``action`` to every flagged negative (labels in place); returns the candidate columns."""
    from tqdm.auto import tqdm

    columns = [list(column) for column in columns]
    rows, negative_index = np.nonzero(flags)
    flagged = zip(rows.tolist(), negative_index.tolist())
    # A judge may be an LLM call per negative: show its progress (raising and dropping are instant).
    for row, j in tqdm(flagged, total=len(rows), desc="Judging flagged negatives", unit="negative",
                       disable=not (progress and action == "judge")):
        column = j + 1
        if len(report.examples) < 10:
            why = tuple(reason for bit, reason in enumerate(REASONS) if flags[row, j] >> bit & 1)
            report.examples.append((row, negative_names[j], why))
        if action == "raise":
            labels[row, column] += raise_by
            report.raised += 1
        elif action == "drop":
            columns[column][row] = columns[0][row]
            labels[row, column] = labels[row, 0]
            report.dropped += 1
        else:
            verdict = judge(queries[row], columns[0][row], columns[column][row])
            report.judged += 1
            if isinstance(verdict, (bool, np.bool_)):
                if verdict:
                    labels[row, column] += raise_by
                    report.judged_relevant += 1
                    report.raised += 1
                else:
                    report.judged_not_relevant += 1
            elif isinstance(verdict, (int, float, np.integer, np.floating)) and math.isfinite(float(verdict)):
                labels[row, column] = float(verdict)
                report.judged_rescored += 1
            else:
                raise TypeError(
                    f"judge returned {verdict!r} for row {row}, {negative_names[j]}: it must return a bool (is it a "
                    "false negative?) or a finite number (the new label)."
                )
    if action == "drop":
        all_dropped = [all(column[row] == columns[0][row] for column in columns[1:]) for row in set(rows.tolist())]
        report.rows_without_kept_negatives = int(sum(all_dropped))
    return columns


def _output(dataset, columns: Sequence[list[str]], negative_names: list[str], labels: np.ndarray):
    replaced = [*negative_names, *([LABEL_COLUMN] if LABEL_COLUMN in dataset.column_names else [])]
    if LABEL_COLUMN in dataset.column_names:
        logger.info("label_order: replacing the dataset's existing 'label' column.")
    output = dataset.remove_columns(replaced) if replaced else dataset
    for name, column in zip(negative_names, columns[1:]):
        output = output.add_column(name, column)
    output = output.add_column(LABEL_COLUMN, labels.tolist())
    new_columns = [QUERY_COLUMN, CODE_COLUMN, *negative_names, LABEL_COLUMN]
    identity = [name for name in output.column_names if name not in new_columns]
    # Training data: whatever identity columns came in stay in the table, out of the rows a trainer tokenizes.
    return identity_out_of_rows(output.select_columns([*new_columns, *identity]))


def as_judge(spec: str) -> Judge:
    """``"package.module:function"`` -> the function, for ``hf-softnce label-order --judge``."""
    import importlib

    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"--judge expects 'module:function', got {spec!r}.")
    function = getattr(importlib.import_module(module_name), attribute)
    if not callable(function):
        raise TypeError(f"{spec} is not callable.")
    return function


__all__ = ["ACTIONS", "REASONS", "OrderLabelReport", "label_order", "refine_order_labels"]
