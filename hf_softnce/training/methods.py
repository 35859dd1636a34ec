"""The main job's methods (its table rows) and their run folders, shared by ``main_job`` and ``publish``.

Kept apart from :mod:`hf_softnce.training.main_job` so that :mod:`hf_softnce.training.publish`, which
``main_job`` calls to write the model card, does not import ``main_job`` back.
"""

from __future__ import annotations

# Table rows: (name, config overrides). "{InfoNCE}" is replaced by that seed's InfoNCE model.
METHODS = [
    ("InfoNCE", dict(loss="infonce", weighter="none")),
    ("SoftInfoNCE (BM25)", dict(loss="soft_infonce", weighter="bm25")),
    ("SoftInfoNCE (trained model)", dict(loss="soft_infonce", weighter="trained_model", weighter_model="{InfoNCE}")),
    # OASIS: order labels carry signal only from a teacher that knows more than the student. The teacher is the
    # frozen InfoNCE retriever of the same seed, trained on the same in-domain pairs (never the base model itself).
    ("OrderInfoNCE (InfoNCE teacher)", dict(loss="order_infonce", weighter="trained_model", weighter_model="{InfoNCE}")),
]


def run_slug(name: str) -> str:
    """A method name as a folder name: ``"SoftInfoNCE (BM25)"`` -> ``"softinfonce-bm25"``."""
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")
