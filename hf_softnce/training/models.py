"""Loading models by name: "default" is the packaged all-MiniLM-L6-v2, usable with no Hub access."""

from __future__ import annotations

from sentence_transformers import SentenceTransformer

from hf_softnce.defaults import DEFAULT_MODEL_ID, credit_packaged_model, default_model_path
from hf_softnce.model_checks import check_model_folder


def resolve_model_name(name: str) -> str:
    return default_model_path() if name == "default" else name


def load_model(name: str, *, max_seq_length: int | None = None, device: str | None = None) -> SentenceTransformer:
    path = resolve_model_name(name)
    check_model_folder(path)
    model = SentenceTransformer(path, device=device)
    credit_packaged_model(model)
    if max_seq_length:
        model.max_seq_length = max_seq_length
    return model


def display_name(name: str) -> str:
    """The name shown in tables and cards (the packaged default by its Hub id)."""
    return DEFAULT_MODEL_ID if name == "default" else name
