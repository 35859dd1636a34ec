"""The data schema every part of hf_softnce shares (see DESIGN.md, "Data schema").

Training pairs are a ``datasets.Dataset`` with ``query``, ``code``, optional ``negative_1..k`` and an
optional ``label`` list, plus identity columns that must not reach the model. Evaluation sets are
:class:`RetrievalSet`: the shape of sentence-transformers' InformationRetrievalEvaluator.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

QUERY_COLUMN = "query"
CODE_COLUMN = "code"
LABEL_COLUMN = "label"
NEGATIVE_PREFIX = "negative_"
# Kept for bookkeeping (splits, duplicate groups, licenses, model cards); never tokenized.
IDENTITY_COLUMNS = ("id", "dup_group", "package", "path", "func_name", "language", "line", "license", "docstring")


def negative_columns(column_names: list[str]) -> list[str]:
    """The ``negative_<n>`` columns in numeric order (``negative_10`` after ``negative_9``)."""
    negatives = [name for name in column_names if name.startswith(NEGATIVE_PREFIX)]
    return sorted(negatives, key=lambda name: int(name[len(NEGATIVE_PREFIX) :]))


# The column names sentence-transformers' trainers keep out of tokenization (they become the loss's ``labels``).
SCORE_COLUMNS = ("label", "labels", "score", "scores")


@dataclass(frozen=True)
class Columns:
    """The role of each column of a training dataset, read the way sentence-transformers reads it.

    Text columns are taken by position (the first is the query/anchor, the second its code/positive, the rest
    negatives) whatever their names; ``query``/``code``/``negative_<n>`` are used by name when present. A
    ``label``/``labels``/``score``/``scores`` column carries the scores, and identity columns
    (:data:`IDENTITY_COLUMNS`) are bookkeeping, never model input.
    """

    query: str
    code: str
    negatives: tuple[str, ...] = ()
    label: str | None = None
    identity: tuple[str, ...] = ()

    @property
    def texts(self) -> list[str]:
        return [self.query, self.code, *self.negatives]

    @property
    def inputs(self) -> list[str]:
        """The columns to hand to a trainer, in the order the losses expect."""
        return [*self.texts, *([self.label] if self.label else [])]


def resolve_columns(column_names, what: str = "Training data") -> Columns:
    """Which column is the query, the code, each negative, the scores, and which are identity columns."""
    names = list(column_names)
    identity = tuple(name for name in names if name in IDENTITY_COLUMNS)
    scores = [name for name in names if name in SCORE_COLUMNS]
    if len(scores) > 1:
        raise ValueError(f"{what} has several score columns {scores}; keep one (it has {names}).")
    texts = [name for name in names if name not in identity and name not in scores]
    label = scores[0] if scores else None
    if QUERY_COLUMN in texts and CODE_COLUMN in texts:
        return Columns(QUERY_COLUMN, CODE_COLUMN, tuple(negative_columns(texts)), label, identity)
    if len(texts) < 2:
        raise ValueError(
            f"{what} lacks the column(s) {[QUERY_COLUMN, CODE_COLUMN]}: it needs two text columns (query, then "
            f"code; any names, taken by position) but has {names}, of which {list(identity)} are identity columns"
            + (f" and {label!r} the scores." if label else ".")
        )
    return Columns(texts[0], texts[1], tuple(texts[2:]), label, identity)


def check_label_column(dataset, what: str = "Training data") -> None:
    """Check the score column once, before training: every row a finite number, or a list of finite numbers of one
    length. The losses check each batch too, but only after the set-up and naming rows of the batch, not of the data.
    """
    import math

    label = resolve_columns(dataset.column_names, what).label
    if label is None:
        return
    values = all_columns(dataset)[label]
    shape = _label_shape(values[0]) if len(values) else None
    for row, value in enumerate(values):
        if _label_shape(value) != shape:
            raise ValueError(
                f"{what}: column {label!r} is ragged: row 0 holds {_describe_label(values[0])} but row {row} holds "
                f"{_describe_label(value)}; give every row one score per candidate column (code, then negative_*)."
            )
        scores = value if isinstance(value, (list, tuple)) else [value]
        if not all(isinstance(score, (int, float)) and math.isfinite(score) for score in scores):
            raise ValueError(f"{what}: column {label!r} has a NaN, infinite or missing score in row {row}: {value!r}.")


def _label_shape(value) -> int | None:
    """The number of scores of a list label; None for a single score."""
    return len(value) if isinstance(value, (list, tuple)) else None


def _describe_label(value) -> str:
    count = _label_shape(value)
    return "one number" if count is None else f"a list of {count} score(s)"


def training_columns(column_names: list[str]) -> list[str]:
    """The columns to hand to SentenceTransformerTrainer, in the order the losses expect."""
    return resolve_columns(column_names).inputs


def to_training_dataset(dataset):
    """Select (and order) the model's input columns, dropping identity columns the trainer would tokenize."""
    return all_columns(dataset).select_columns(training_columns(dataset.column_names))


def identity_out_of_rows(dataset):
    """The dataset with its identity columns still in the table but out of every row it hands out.

    sentence-transformers' trainers read a dataset row by row and tokenize every column of a row but the label, so
    an identity column reaches the model as text (``"python"``, a path, a license) or stops the collator
    (``Unsupported input type: int``, naming no column). A format restricted to the model's columns keeps rows,
    and so the trainers and the NO_DUPLICATES sampler, to those; it survives ``select``, ``shuffle``, ``filter``,
    ``train_test_split`` and ``save_to_disk``. The identity columns stay in ``column_names``, ``to_pandas()`` and
    ``all_columns(dataset)["id"]``.
    """
    columns = resolve_columns(dataset.column_names)
    if not columns.identity:
        return dataset
    return dataset.with_format(columns=columns.inputs)


def all_columns(dataset):
    """``dataset`` with every column readable, identity columns included (undoes :func:`identity_out_of_rows`)."""
    format_ = getattr(dataset, "format", None)
    if not format_ or format_.get("columns") is None:
        return dataset
    return dataset.with_format(format_["type"], **format_["format_kwargs"])


def standardize_columns(dataset, what: str = "Training data"):
    """The dataset with its columns renamed to hf_softnce's names: ``query``, ``code``, ``negative_<n>``, ``label``.

    Identity columns are kept (under their own names); anything else is an input column and is renamed by its role.
    """
    columns = resolve_columns(dataset.column_names, what)
    mapping = {columns.query: QUERY_COLUMN, columns.code: CODE_COLUMN}
    mapping.update({name: f"{NEGATIVE_PREFIX}{j}" for j, name in enumerate(columns.negatives, start=1)})
    if columns.label:
        mapping[columns.label] = LABEL_COLUMN
    dropped = [name for name in dataset.column_names if name not in mapping and name not in columns.identity]
    if dropped:
        dataset = dataset.remove_columns(dropped)
    renamed = {old: new for old, new in mapping.items() if old != new}
    # Two renames at once: a column may take a name another one gives up (anchor->query while query->...).
    return dataset.rename_columns(renamed) if renamed else dataset


@dataclass
class RetrievalSet:
    """A code-search evaluation set: rank the whole ``corpus`` for every query.

    Args:
        queries: ``{qid: query text}``
        corpus: ``{cid: code}``, the whole codebase searched for every query
        relevant: ``{qid: {cid, ...}}``, the gold code(s) of each query
        groups: optional ``{cid: dup_group}``; codes sharing a group are duplicates of each other, so an
            evaluator can also count any member of the gold code's group as a hit (reported separately).
        name: short name used in metric keys and tables
    """

    queries: dict[str, str]
    corpus: dict[str, str]
    relevant: dict[str, set[str]]
    groups: dict[str, Hashable] | None = None
    name: str = "code-search"
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.corpus:
            raise ValueError(f"RetrievalSet {self.name!r}: the corpus is empty.")
        unknown = {qid for qid in self.relevant if qid not in self.queries}
        if unknown:
            raise ValueError(f"RetrievalSet {self.name!r}: relevant lists unknown query ids {sorted(unknown)[:5]}.")
        missing = [qid for qid in self.queries if not self.relevant.get(qid)]
        if missing:
            raise ValueError(f"RetrievalSet {self.name!r}: queries without a relevant code: {missing[:5]}.")
        absent = {cid for cids in self.relevant.values() for cid in cids if cid not in self.corpus}
        if absent:
            raise ValueError(f"RetrievalSet {self.name!r}: relevant code ids not in the corpus: {sorted(absent)[:5]}.")

    def __len__(self) -> int:
        return len(self.queries)

    def __repr__(self) -> str:
        # The dataclass repr would print every query and code (~100 KB for CoNaLa's test split).
        groups = f", {len(set(self.groups.values())):,} duplicate groups" if self.groups is not None else ""
        return f"RetrievalSet({self.name!r}, {len(self.queries):,} queries, {len(self.corpus):,} codes{groups})"

    def shrunk(self, max_queries: int | None = None, max_codes: int | None = None) -> "RetrievalSet":
        """A smaller set for a quick check: the first ``max_queries`` queries, and a codebase of their gold codes
        plus the first other codes, ``max_codes`` in all (never fewer than the gold codes). A smaller codebase
        makes every metric higher, so these numbers are a smoke test, not comparable with the whole set's."""
        qids = list(self.queries)[:max_queries] if max_queries else list(self.queries)
        shrunk = self.subset(qids)
        if not max_codes or max_codes >= len(self.corpus):
            return shrunk
        gold = list(dict.fromkeys(cid for q in qids for cid in sorted(self.relevant[q])))
        others = [cid for cid in self.corpus if cid not in set(gold)][: max(0, max_codes - len(gold))]
        shrunk.corpus = {cid: self.corpus[cid] for cid in self.corpus if cid in set(gold) | set(others)}
        if self.groups is not None:
            shrunk.groups = {cid: group for cid, group in self.groups.items() if cid in shrunk.corpus}
        return shrunk

    def subset(self, qids) -> "RetrievalSet":
        """The same corpus searched by a subset of the queries (e.g. for a quick run)."""
        qids = list(qids)
        return RetrievalSet(
            queries={q: self.queries[q] for q in qids},
            corpus=self.corpus,
            relevant={q: self.relevant[q] for q in qids},
            groups=self.groups,
            name=self.name,
            metadata=dict(self.metadata),
        )
