"""Embed texts once with a frozen model, cached on disk keyed by the model's weights, its length, prompt and module
settings, and the texts.

The weighters, the miner and the order labeller all embed a whole corpus before training; a second run
with the same model and texts reads the cached matrix instead of re-encoding it.

Within one process, what an evaluation already encoded is read too (:func:`remember_embeddings`): the main job
evaluates the base model on the whole codebase, then mines with the same weights at the training length; a text
that neither length cuts has the same embedding at both, so only the codes longer than the training length are
encoded again (at 128 tokens, 15 % of CoSQA's codebase).

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
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from filelock import FileLock
from torch import Tensor

from hf_softnce.defaults import cache_dir

logger = logging.getLogger(__name__)

# Document prompts a SentenceTransformer's encode_document looks for, in its order.
DOCUMENT_PROMPTS = ("document", "passage", "corpus")
REMEMBERED_MODELS = 4  # the models whose evaluated embeddings stay in memory (the most recent ones)


@dataclass
class _Remembered:
    max_seq_length: int | None
    rows: dict[str, tuple[int, Tensor]]  # text -> (its token count at max_seq_length, its embedding)


_REMEMBERED: OrderedDict[str, _Remembered] = OrderedDict()


def model_fingerprint(model: torch.nn.Module) -> str:
    """A digest of a model's weights and class: two models with equal weights share cached embeddings."""
    digest = hashlib.sha256(type(model).__name__.encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:20]


def encoding_settings(model, prompt_name: str | None = None) -> str:
    """What decides an embedding besides the weights and the length, as text for a cache key: the prompt the encode
    puts before each text, ``truncate_dim`` and each module's settings (pooling mode, normalization, ...), none of
    which :func:`model_fingerprint`'s weights hold."""
    modules = []
    for module in model if isinstance(model, torch.nn.Sequential) else ():
        config = module.get_config_dict() if hasattr(module, "get_config_dict") else {}
        # The length is keyed on its own: the remembered rows are read across lengths where no token is cut.
        settings = sorted((k, repr(v)) for k, v in config.items() if k != "max_seq_length")
        modules.append((type(module).__name__, settings))
    return repr((_prompt_text(model, prompt_name), getattr(model, "truncate_dim", None), modules))


def texts_fingerprint(texts: Sequence[str], *extra: object) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    for item in extra:
        digest.update(repr(item).encode())
    return digest.hexdigest()[:20]


def prompt_name_for(model, side: str, explicit: str | None = None) -> str | None:
    """The prompt name ``SentenceTransformer.encode_query`` (``side="query"``) or ``encode_document`` uses:
    ``explicit``, else the first of the model's prompts named for that side, else None."""
    if explicit is not None:
        return explicit
    prompts = getattr(model, "prompts", None) or {}
    return next((name for name in (("query",) if side == "query" else DOCUMENT_PROMPTS) if name in prompts), None)


def remember_embeddings(model, texts: Sequence[str], embeddings: Tensor, *, prompt_name: str | None = None) -> None:
    """Keep ``model``'s raw (unnormalized) ``embeddings`` of ``texts`` for :func:`encode_cached` in this process.

    Args:
        model: the SentenceTransformer that encoded them, at its current ``max_seq_length``.
        texts: ``N`` texts; embeddings: ``(N, dim)``, as ``model.encode(texts, prompt_name=prompt_name)`` gave them.

    Kept by the model's weights (:func:`model_fingerprint`) and prompt, with each text's token count, for the
    :data:`REMEMBERED_MODELS` most recent models. A later encode by the same weights reads a text's row when both
    lengths give it the same tokens: the same ``max_seq_length``, or a text shorter than both. Not kept in a
    distributed run, whose ranks must encode alike.
    """
    if _distributed():
        return
    texts = list(texts)
    if len(texts) != len(embeddings):
        raise ValueError(f"remember_embeddings: {len(texts)} texts but {len(embeddings)} embeddings.")
    prompt = _prompt_text(model, prompt_name)
    key = f"{model_fingerprint(model)}|{encoding_settings(model, prompt_name)}"
    counts = _token_counts(model, texts, prompt)
    embeddings = embeddings.detach().float().cpu()
    _REMEMBERED[key] = _Remembered(getattr(model, "max_seq_length", None),
                                   {text: (count, row) for text, count, row in zip(texts, counts, embeddings)})
    _REMEMBERED.move_to_end(key)
    while len(_REMEMBERED) > REMEMBERED_MODELS:
        _REMEMBERED.popitem(last=False)


def forget_embeddings() -> None:
    """Drop every embedding :func:`remember_embeddings` kept."""
    _REMEMBERED.clear()


def _remembered_rows(model, texts: list[str], prompt_name: str | None,
                     fingerprint: str | None = None) -> dict[int, Tensor]:
    """``{row: embedding}`` for the texts whose remembered embedding ``model`` would compute again.

    ``fingerprint``: the model's :func:`model_fingerprint` when the caller has it (hashing the weights is not free).
    """
    if not _REMEMBERED or _distributed():
        return {}
    fingerprint = fingerprint or model_fingerprint(model)
    remembered = _REMEMBERED.get(f"{fingerprint}|{encoding_settings(model, prompt_name)}")
    if remembered is None:
        return {}
    length, before = getattr(model, "max_seq_length", None), remembered.max_seq_length
    known_lengths = length is not None and before is not None
    rows = {}
    for index, text in enumerate(texts):
        hit = remembered.rows.get(text)
        # A count below the remembered length is a whole text; it stays whole at any length at least that long.
        if hit is not None and (length == before or (known_lengths and hit[0] < before and hit[0] <= length)):
            rows[index] = hit[1]
    return rows


def _prompt_text(model, prompt_name: str | None) -> str:
    """The prompt ``model.encode(prompt_name=prompt_name)`` puts before each text ("" for none): a name whose prompt
    is empty (sentence-transformers' default ``{"query": "", "document": ""}``) encodes as no prompt."""
    name = prompt_name if prompt_name is not None else getattr(model, "default_prompt_name", None)
    return (getattr(model, "prompts", None) or {}).get(name, "") if name else ""


def _token_counts(model, texts: list[str], prompt: str, batch_size: int = 512) -> list[int]:
    """Each text's token count as the model reads it (prompt and special tokens in, cut at ``max_seq_length``)."""
    counts = []
    for start in range(0, len(texts), batch_size):
        features = model.preprocess(texts[start : start + batch_size], **({"prompt": prompt} if prompt else {}))
        counts += features["attention_mask"].sum(dim=1).tolist()
    return counts


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized() \
        and torch.distributed.get_world_size() > 1


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

    Returns ``(len(texts), dim)``. Rows the same weights already computed in this process
    (:func:`remember_embeddings`) are read, not encoded again.
    """
    texts = list(texts)
    fingerprint = model_fingerprint(model) if cache else None  # once, for the disk key and the remembered rows

    def encode() -> Tensor:
        known = _remembered_rows(model, texts, prompt_name, fingerprint)
        missing = [index for index in range(len(texts)) if index not in known]
        if known:
            logger.info("Reading %d of %d embeddings from an earlier encoding by the same weights", len(known),
                        len(texts))
        embeddings = None
        if missing:
            embeddings = model.encode(
                [texts[index] for index in missing] if known else texts,
                batch_size=batch_size,
                convert_to_tensor=True,
                normalize_embeddings=normalize,
                prompt_name=prompt_name,
                show_progress_bar=show_progress_bar,
                device=device,
            ).detach().float().cpu()
        if known:
            rows = torch.stack(list(known.values()))
            if normalize:  # as SentenceTransformer.encode(normalize_embeddings=True) does
                rows = torch.nn.functional.normalize(rows, p=2, dim=1)
            whole = torch.empty(len(texts), rows.shape[1], dtype=torch.float32)
            whole[list(known)] = rows
            if missing:
                whole[missing] = embeddings
            embeddings = whole
        return embeddings.contiguous()

    if not cache:
        return encode()
    folder = cache_dir("embeddings") if cache is True else Path(cache)
    folder.mkdir(parents=True, exist_ok=True)
    # The length is part of the key: a text it cuts has another embedding at another length.
    length = getattr(model, "max_seq_length", None)
    key = f"{fingerprint}-{texts_fingerprint(texts, normalize, length, encoding_settings(model, prompt_name))}"
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
