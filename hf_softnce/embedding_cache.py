"""Embed texts once with a frozen model, cached on disk keyed by the model's weights and the texts.

The weighters, the miner and the order labeller all embed a whole corpus before training; a second run
with the same model and texts reads the cached matrix instead of re-encoding it.

Safe under concurrency and damage: every rank of an ``accelerate launch`` fits the same estimators at once, so an
entry is computed under a file lock (one process encodes, the others wait and read it) and written under a name
of its own, then renamed into place (``os.replace`` is atomic). An entry records what it holds (its key, shape,
dtype and a checksum of the values): a file that fails to load or does not match is logged by name and recomputed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
from filelock import FileLock
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

    def encode() -> Tensor:
        embeddings = model.encode(
            texts,
            batch_size=batch_size,
            convert_to_tensor=True,
            normalize_embeddings=normalize,
            prompt_name=prompt_name,
            show_progress_bar=show_progress_bar,
            device=device,
        )
        return embeddings.detach().float().cpu().contiguous()

    if not cache:
        return encode()
    folder = cache_dir("embeddings") if cache is True else Path(cache)
    folder.mkdir(parents=True, exist_ok=True)
    key = f"{model_fingerprint(model)}-{texts_fingerprint(texts, normalize, prompt_name)}"
    path = folder / f"{key}.pt"
    # Held while encoding: a process that finds the entry missing encodes it, the others wait and then read it.
    try:
        lock = FileLock(folder / f"{key}.lock")
        lock.acquire()
    except OSError as error:  # a read-only cache (a shared mount): its entries are still worth reading
        logger.warning("Embedding cache folder %s cannot be locked (%s); reading it without writing.", folder,
                       error.strerror or error)
        embeddings = read_entry(path, key, len(texts))
        return encode() if embeddings is None else embeddings
    try:
        embeddings = read_entry(path, key, len(texts))
        if embeddings is None:
            embeddings = encode()
            try:
                write_entry(path, key, embeddings)
            except OSError as error:  # a full disk costs the next run an encode, not this run its result
                logger.warning("Embedding cache file %s could not be written (%s).", path, error.strerror or error)
    finally:
        lock.release()
    return embeddings


def _checksum(embeddings: Tensor) -> str:
    return hashlib.sha256(embeddings.contiguous().view(torch.uint8).numpy().tobytes()).hexdigest()[:20]


def write_entry(path: Path, key: str, embeddings: Tensor) -> None:
    """Save ``embeddings`` with what they are (key, shape, dtype, checksum) under a temporary name of this writer's
    own, then rename it into place: a reader sees the old file or the whole new one, never a part."""
    entry = {
        "key": key,
        "shape": list(embeddings.shape),
        "dtype": str(embeddings.dtype),
        "checksum": _checksum(embeddings),
        "embeddings": embeddings,
    }
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        torch.save(entry, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_entry(path: Path, key: str, rows: int) -> Tensor | None:
    """The cached embeddings of ``key``, or None when there is no entry or it is damaged (logged, by file name)."""
    if not path.exists():
        return None
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
        problem = _entry_problem(entry, key, rows)
    except Exception as error:  # noqa: BLE001 - a truncated zip, an empty file, a pickle: all mean "recompute"
        problem = f"it cannot be read ({type(error).__name__}: {' '.join(str(error).split())[:120]})"
    if problem:
        logger.warning("Embedding cache file %s is damaged or stale: %s; recomputing it.", path, problem)
        return None
    logger.info("Reading %d cached embeddings from %s", rows, path)
    return entry["embeddings"]


def _entry_problem(entry, key: str, rows: int) -> str | None:
    """Why ``entry`` is not the cached embeddings of ``key`` for ``rows`` texts, or None when it is."""
    if not isinstance(entry, dict) or not isinstance(entry.get("embeddings"), Tensor):
        return "it holds no embeddings entry (written by an older version, or not a cache file)"
    embeddings = entry["embeddings"]
    if entry.get("key") != key:
        return f"it holds key {entry.get('key')!r}"
    if embeddings.ndim != 2 or len(embeddings) != rows or list(embeddings.shape) != entry.get("shape"):
        return f"shape {tuple(embeddings.shape)} (recorded {entry.get('shape')}), expected {rows} rows"
    if embeddings.dtype != torch.float32 or entry.get("dtype") != str(torch.float32):
        return f"dtype {embeddings.dtype}, expected torch.float32"
    if entry.get("checksum") != _checksum(embeddings):
        return "its values do not match their checksum"
    return None
