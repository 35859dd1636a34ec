"""The codebase a miner ranks, and which of its entries each query must never get as a negative.

Identical code texts are one corpus entry. Every entry carries an integer group id: entries that share a
``dup_group`` share the id, entries without one get an id of their own. A query's excluded groups are the
groups of every code the dataset pairs it with, so a negative is never the positive, a duplicate of it, or
another positive of the same query text (sentence-transformers' ``mine_hard_negatives`` also treats repeated
queries as multi-positive; the R2PS release excludes nothing).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from hf_softnce.data.schema import resolve_columns

DUP_GROUP_COLUMN = "dup_group"


def _preview(text: str, width: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 3] + "..."


@dataclass
class MiningCorpus:
    """Unique code texts, their group ids and a text -> row lookup."""

    texts: list[str]
    group_ids: torch.Tensor  # (N,) int64
    index: dict[str, int]

    def __len__(self) -> int:
        return len(self.texts)

    @classmethod
    def build(
        cls,
        codes: Sequence[str],
        dup_groups: Sequence[Hashable | None] | None,
        corpus: Sequence[str] | Mapping[str, Hashable | None] | None = None,
    ) -> "MiningCorpus":
        """The corpus: ``corpus`` when given (a list of codes or ``{code: dup_group}``), else the dataset's codes.

        Group labels come from the ``{code: dup_group}`` mapping and from the dataset's ``dup_group`` column;
        one code text given two different labels is an error, since we could not tell which duplicates to exclude.
        """
        labels: dict[str, Hashable | None] = {}

        def assign(text: str, label: Hashable | None, source: str) -> None:
            if label is None:
                labels.setdefault(text, None)
                return
            known = labels.get(text)
            if known is not None and known != label:
                raise ValueError(
                    f"The code {_preview(text)!r} has two dup_group values ({known!r} and {label!r}, the second "
                    f"from {source}); identical code texts must share one duplicate group."
                )
            labels[text] = label

        if corpus is None:
            texts = list(dict.fromkeys(codes))
        elif isinstance(corpus, Mapping):
            texts = list(dict.fromkeys(corpus))
            for text, label in corpus.items():
                assign(text, label, "the corpus mapping")
        elif isinstance(corpus, str):
            raise TypeError("corpus must be a list of code texts or a {code: dup_group} mapping, not one string.")
        else:
            texts = list(dict.fromkeys(corpus))
        if not texts:
            raise ValueError("The corpus is empty: there is no code to mine negatives from.")
        bad = [i for i, text in enumerate(texts) if not isinstance(text, str)]
        if bad:
            raise TypeError(f"Corpus entries must be strings; entry {bad[0]} is {type(texts[bad[0]]).__name__}.")
        index = {text: i for i, text in enumerate(texts)}

        if dup_groups is not None:
            for code, label in zip(codes, dup_groups):
                if code in index:
                    assign(code, label, "the dataset's dup_group column")

        # Group labels can be any hashable (int, str); map them to ints, and give ungrouped entries fresh ids.
        label_ids: dict[Hashable, int] = {}
        group_ids = np.empty(len(texts), dtype=np.int64)
        for i, text in enumerate(texts):
            label = labels.get(text)
            if label is None:
                group_ids[i] = -(i + 1)  # negative ids never collide with label ids (0, 1, ...)
            else:
                group_ids[i] = label_ids.setdefault(label, len(label_ids))
        return cls(texts=texts, group_ids=torch.from_numpy(group_ids), index=index)

    def positions_of(self, codes: Sequence[str]) -> torch.Tensor:
        """Corpus row of each dataset positive; an error names the first positive the corpus lacks."""
        positions = np.empty(len(codes), dtype=np.int64)
        for row, code in enumerate(codes):
            position = self.index.get(code)
            if position is None:
                raise ValueError(
                    f"Row {row}: the positive code {_preview(code)!r} is not in the corpus. A given corpus must "
                    "contain every positive of the dataset (its rank and score are needed for margins and labels)."
                )
            positions[row] = position
        return torch.from_numpy(positions)

    def excluded_groups(self, queries: Sequence[str], positive_positions: torch.Tensor) -> torch.Tensor:
        """``(rows, m)`` group ids each row must not draw negatives from, padded with a value no entry has.

        A row's groups are those of every positive the dataset pairs with the same query text.
        """
        groups_of_query: dict[str, list[int]] = {}
        positive_groups = self.group_ids[positive_positions].tolist()
        for query, group in zip(queries, positive_groups):
            known = groups_of_query.setdefault(query, [])
            if group not in known:
                known.append(group)
        width = max(len(groups) for groups in groups_of_query.values())
        padding = int(self.group_ids.max()) + 1  # no corpus entry carries this id
        table = torch.full((len(queries), width), padding, dtype=torch.int64)
        for row, query in enumerate(queries):
            groups = groups_of_query[query]
            table[row, : len(groups)] = torch.tensor(groups, dtype=torch.int64)
        return table

    def excluded_counts(self, excluded_groups: torch.Tensor) -> torch.Tensor:
        """``(rows,)`` corpus entries each row excludes: how much deeper than its window its search must look."""
        groups, sizes = torch.unique(self.group_ids, return_counts=True)
        size_of = dict(zip(groups.tolist(), sizes.tolist()))
        distinct, row_of = torch.unique(excluded_groups, dim=0, return_inverse=True)
        counts = torch.tensor([sum(size_of.get(g, 0) for g in row) for row in distinct.tolist()], dtype=torch.long)
        return counts[row_of]


def read_pairs(dataset) -> tuple[list[str], list[str], list[Hashable | None] | None]:
    """The ``query``/``code`` columns (and ``dup_group`` when present), with clear errors for unusable rows."""
    if len(dataset) == 0:
        raise ValueError("The dataset is empty: there are no (query, code) pairs to mine negatives for.")
    columns = resolve_columns(dataset.column_names, "The dataset")
    queries, codes = dataset[columns.query], dataset[columns.code]
    for row, (query, code) in enumerate(zip(queries, codes)):
        if not isinstance(query, str) or not query.strip():
            raise ValueError(f"Row {row} has no query text (got {query!r}).")
        if not isinstance(code, str) or not code.strip():
            raise ValueError(f"Row {row} (query {_preview(query)!r}) has no positive code (got {code!r}).")
    dup_groups = dataset[DUP_GROUP_COLUMN] if DUP_GROUP_COLUMN in dataset.column_names else None
    return list(queries), list(codes), (list(dup_groups) if dup_groups is not None else None)
