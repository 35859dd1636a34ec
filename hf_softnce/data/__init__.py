"""Code-search data: corpus builder, dataset loaders, duplicate groups, and the shared schema.

The schema is imported eagerly (every area of the library uses it); the builder, loaders and duplicate
tools load on first use, so ``from hf_softnce.data.schema import ...`` does not pull in ``datasets``
and ``datasketch``.
"""

from importlib import import_module

from hf_softnce.data.schema import (
    CODE_COLUMN,
    IDENTITY_COLUMNS,
    LABEL_COLUMN,
    QUERY_COLUMN,
    SCORE_COLUMNS,
    Columns,
    RetrievalSet,
    all_columns,
    identity_out_of_rows,
    negative_columns,
    resolve_columns,
    standardize_columns,
    to_training_dataset,
    training_columns,
)

# public name -> module that defines it
_LAZY = {
    "build_python_corpus": "hf_softnce.data.corpus",
    "load_codesearchnet": "hf_softnce.data.loaders",
    "load_cosqa": "hf_softnce.data.loaders",
    "load_cosqa_judged_pairs": "hf_softnce.data.loaders",
    "load_advtest": "hf_softnce.data.loaders",
    "load_conala": "hf_softnce.data.conala",
    "repository_style": "hf_softnce.data.augment",
    "search_style_query": "hf_softnce.data.augment",
    "CodeSearchData": "hf_softnce.data.loaders",
    "normalize_code": "hf_softnce.data.duplicates",
    "assign_duplicate_groups": "hf_softnce.data.duplicates",
    "retrieval_set_from_pairs": "hf_softnce.data.duplicates",
    "SkipReport": "hf_softnce.data.report",
    "DataFormatError": "hf_softnce.data.report",
    "find_shared_data_dir": "hf_softnce.data.locate",
}

__all__ = [
    "find_shared_data_dir",
    "CODE_COLUMN",
    "IDENTITY_COLUMNS",
    "LABEL_COLUMN",
    "QUERY_COLUMN",
    "RetrievalSet",
    "SCORE_COLUMNS",
    "Columns",
    "negative_columns",
    "resolve_columns",
    "all_columns",
    "identity_out_of_rows",
    "standardize_columns",
    "to_training_dataset",
    "training_columns",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
