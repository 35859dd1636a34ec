"""Code-search data: corpus builder, dataset loaders, duplicate groups, and the shared schema."""

from hf_softnce.data.schema import (
    CODE_COLUMN,
    IDENTITY_COLUMNS,
    LABEL_COLUMN,
    QUERY_COLUMN,
    RetrievalSet,
    negative_columns,
    to_training_dataset,
    training_columns,
)

__all__ = [
    "CODE_COLUMN",
    "IDENTITY_COLUMNS",
    "LABEL_COLUMN",
    "QUERY_COLUMN",
    "RetrievalSet",
    "negative_columns",
    "to_training_dataset",
    "training_columns",
]
