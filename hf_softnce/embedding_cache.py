"""Embed texts once with a frozen model, cached on disk keyed by the model's weights and the texts.

The weighters, the miner and the order labeller all embed a whole corpus before training; a second run
with the same model and texts reads the cached matrix instead of re-encoding it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from hf_softnce.defaults import cache_dir

logger = logging.getLogger(__name__)


def model_fingerprint(model: torch.nn.Module) -> str:
    """A digest of a model's weights and class: two models with equal weights share cached embeddings."""
    digest = hashlib.sha256(type(model).__name__.encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:20]


def texts_fingerprint(texts: Sequence[str], *extra: object) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    for item in extra:
        digest.update(repr(item).encode())
    return digest.hexdigest()[:20]


def encode_cached(
    model,
    texts: Sequence[str],
    *,
    batch_size: int = 64,
    normalize: bool = False,
    prompt_name: str | None = None,
    cache: bool | str | Path = True,
    show_progress_bar: bool = True,
    device: str | None = None,
) -> Tensor:
    """``model.encode(texts)`` as a float32 CPU tensor, cached on disk.

    Args:
        model: a frozen SentenceTransformer (or anything with ``encode`` and ``state_dict``).
        texts: the texts, in the order of the returned rows.
        cache: ``True`` for hf_softnce's cache folder, a folder path, or ``False`` to disable caching.
    """
    texts = list(texts)
    path = None
    if cache:
        folder = cache_dir("embeddings") if cache is True else Path(cache)
        folder.mkdir(parents=True, exist_ok=True)
        key = f"{model_fingerprint(model)}-{texts_fingerprint(texts, normalize, prompt_name)}.pt"
        path = folder / key
        if path.exists():
            logger.info("Reading %d cached embeddings from %s", len(texts), path)
            return torch.load(path, map_location="cpu", weights_only=True)
    embeddings = model.encode(
        texts,
        batch_size=batch_size,
        convert_to_tensor=True,
        normalize_embeddings=normalize,
        prompt_name=prompt_name,
        show_progress_bar=show_progress_bar,
        device=device,
    )
    embeddings = embeddings.detach().float().cpu()
    if path is not None:
        # Write then rename, so an interrupted run never leaves a truncated cache file behind.
        tmp = path.with_suffix(".tmp")
        torch.save(embeddings, tmp)
        tmp.replace(path)
    return embeddings
