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


def training_columns(column_names: list[str]) -> list[str]:
    """The columns to hand to SentenceTransformerTrainer, in the order the losses expect."""
    missing = [name for name in (QUERY_COLUMN, CODE_COLUMN) if name not in column_names]
    if missing:
        raise ValueError(f"Training data lacks the column(s) {missing}; it has {column_names}.")
    columns = [QUERY_COLUMN, CODE_COLUMN, *negative_columns(column_names)]
    if LABEL_COLUMN in column_names:
        columns.append(LABEL_COLUMN)
    return columns


def to_training_dataset(dataset):
    """Select (and order) the model's input columns, dropping identity columns the trainer would tokenize."""
    return dataset.select_columns(training_columns(dataset.column_names))


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
