"""A training batch as hf_softnce's losses and relevance estimators both see it: texts by hash, and the
candidate layout.

The trainer hands a loss tokenized features, not texts. A text is identified inside the loss by a hash of
its token ids (padding and any trainer prompt removed), computed vectorized in torch on the batch's device. Texts
that tokenize identically — including two long functions whose first ``max_seq_length`` tokens agree — are the
same input to the model, so they are the same text for duplicate masking too. Estimators fitted on raw texts look
those texts up by the same hash, computed with the trained model's own tokenizer when the loss binds them.

Neither the losses nor the estimators own this module: both build on it, and it imports neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

# Two 31-bit moduli keep every product inside int64 (ids < 2^18, powers < 2^31, sums of <= 8192 terms).
_MODULI = (2_147_483_647, 2_147_483_629)
_BASES = (1_000_003, 999_983)
_POWERS: dict[tuple[int, str], tuple[Tensor, Tensor]] = {}


def _powers(length: int, device: torch.device) -> tuple[Tensor, Tensor]:
    key = (length, str(device))
    if key not in _POWERS:
        tables = []
        for base, modulus in zip(_BASES, _MODULI):
            values, power = [], 1
            for _ in range(length):
                values.append(power)
                power = power * base % modulus
            tables.append(torch.tensor(values, dtype=torch.int64, device=device))
        _POWERS[key] = tuple(tables)
    return _POWERS[key]


def text_hashes(features: dict[str, Tensor]) -> Tensor:
    """One int64 hash per row of tokenized ``features`` (``input_ids`` + ``attention_mask``)."""
    if "input_ids" not in features:
        raise ValueError(
            "hf_softnce's losses identify texts by their token ids, but the features have no 'input_ids' "
            f"(keys: {sorted(features)}). Models with flattened or non-token inputs are not supported."
        )
    ids = features["input_ids"].long()
    mask = features.get("attention_mask")
    mask = torch.ones_like(ids) if mask is None else mask.long()
    # Position among real tokens, so left and right padding hash alike.
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    prompt_length = features.get("prompt_length")
    if isinstance(prompt_length, Tensor):
        prompt_length = prompt_length.reshape(-1)[:1].to(positions.device)  # one prompt per column
    if prompt_length is not None:
        # A trainer prompt (prompts=) sits at real-token positions 1 .. prompt_length - 1, after the leading
        # special token: hash the text without it, so a prompted text is the same text as the fitted one.
        in_prompt = (positions >= 1) & (positions < prompt_length)
        mask = mask * (~in_prompt)
        positions = torch.where(positions >= prompt_length, positions - (prompt_length - 1), positions)
    hashes = []
    for power, modulus in zip(_powers(ids.shape[1], ids.device), _MODULI):
        terms = (ids % modulus) * power[positions] % modulus * mask
        hashes.append(terms.sum(dim=1) % modulus)
    lengths = mask.sum(dim=1)
    return (hashes[0] * _MODULI[1] + hashes[1]) ^ (lengths << 40)


def hash_texts(model, texts: Sequence[str], batch_size: int = 512, *, prompt_length: int | None = None,
                prompt: str | None = None) -> Tensor:
    """Hashes of raw texts as the trainer will see them: tokenized by ``model.preprocess``.

    ``prompt_length``: hash the texts as they are when the trainer puts a prompt of that many tokens (its
    ``prompt_length``, leading special token included) before them. The prompt itself is left out of every hash,
    but it takes ``prompt_length - 1`` places of ``max_seq_length``, so a long text keeps that many fewer tokens
    of its own: tokenizing it without the prompt at a ``max_length`` shorter by as much gives the same tokens.

    ``prompt``: the prompt itself, when known: the texts are tokenized exactly as the trainer's collator does
    (``model.preprocess(texts, prompt=prompt)``), so a prompt whose last token merges with a text's first one (no
    trailing space: ``"Represent this code"`` + ``"def f"``) hashes as it does in the batch.
    """
    kwargs = {}
    if prompt is not None:
        kwargs["prompt"] = prompt
    elif prompt_length:
        max_seq_length = getattr(_unwrap(model), "max_seq_length", None)
        if max_seq_length is not None:
            kwargs["max_length"] = max(max_seq_length - (prompt_length - 1), 1)
    chunks = []
    for start in range(0, len(texts), batch_size):
        features = model.preprocess(list(texts[start : start + batch_size]), **kwargs)
        chunks.append(text_hashes(features))
    return torch.cat(chunks) if chunks else torch.empty(0, dtype=torch.int64)


def prompt_lengths(sentence_features: Sequence[dict]) -> tuple[int, ...]:
    """The distinct trainer prompt lengths of a batch's columns (Python ints from the collator: no device sync)."""
    lengths = set()
    for features in sentence_features:
        length = features.get("prompt_length")
        if isinstance(length, Tensor):
            length = length.reshape(-1)[0]
        if length is not None:
            lengths.add(int(length))
    return tuple(sorted(lengths))


def text_index(model, texts: Sequence[str], rows: Tensor | None = None, prompt_lengths: Sequence[int] = ()) -> HashIndex:
    """A :class:`HashIndex` of ``texts`` under every truncation the trainer produces for them.

    Why several hashes per text: a text is identified by its token ids, and a prompt (``prompts=``) shortens what
    ``max_seq_length`` leaves of a long text, so the same text reaches the loss as a different token sequence in
    a prompted column than in an unprompted one (or under another prompt). Keying on the raw text would need the
    trainer to carry it into the loss, which it does not; instead each text is hashed once per prompt length the
    batches carry, and all of them point to its row. A text no prompt truncates gets one entry. The unprompted
    hashes come first, so when a truncated text equals another text in full, the full text is the one found.
    """
    rows = torch.arange(len(texts)) if rows is None else rows
    base = hash_texts(model, texts)
    hashes, all_rows = [base], [rows]
    known = known_prompts(model)
    for length in prompt_lengths:
        # The prompts of that length the trainer used, tokenized with the texts as the collator does; and the
        # truncation a prompt of that length causes (a prompt the model's cache does not name, or a loss called
        # outside a trainer).
        prompts = [prompt for prompt, prompt_length in known.items() if prompt_length == length] + [None]
        for prompt in prompts:
            prompted = hash_texts(model, texts, prompt_length=length, prompt=prompt)
            changed = prompted != base
            hashes.append(prompted[changed])
            all_rows.append(rows[changed])
    return HashIndex(torch.cat(hashes), torch.cat(all_rows))


def known_prompts(model) -> dict[str, int]:
    """``{prompt: prompt_length}`` of every prompt ``model`` has tokenized (trainer ``prompts=`` included).

    sentence-transformers measures each prompt once and caches its length by prompt string on the Transformer
    module (``_prompt_length_mapping``, keyed by ``(prompt, *kwargs)``); the batch carries only the length. Read
    here so that fitted texts are tokenized with the prompt itself. Empty when the module keeps no such cache.
    """
    found: dict[str, int] = {}
    # Called at every step with prompts (the loss's tokenization key): look only at the model's own modules (the
    # Transformer is one of them), not at every layer below them.
    model = _unwrap(model)
    modules = model.children() if hasattr(model, "children") else ()
    for module in modules:
        mapping = getattr(module, "_prompt_length_mapping", None)
        if isinstance(mapping, dict):
            for key, length in mapping.items():
                if isinstance(key, tuple):
                    if len(key) != 1:
                        continue  # measured under other tokenizer arguments than the collator's
                    key = key[0]
                if isinstance(key, str) and isinstance(length, int):
                    found[key] = length
    return found


def _unwrap(model):
    """The SentenceTransformer inside a DDP/compile wrapper (which re-exposes ``preprocess`` only)."""
    while not hasattr(model, "max_seq_length"):
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if inner is None:
            break
        model = inner
    return model


class HashIndex:
    """Vectorized lookup from text hashes to row numbers (``searchsorted`` over the sorted hashes)."""

    def __init__(self, hashes: Tensor, rows: Tensor | None = None) -> None:
        rows = torch.arange(len(hashes)) if rows is None else rows
        order = torch.argsort(hashes, stable=True)
        self.sorted_hashes = hashes[order]
        self.sorted_rows = rows[order]
        self._on_device: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def __len__(self) -> int:
        return len(self.sorted_hashes)

    def lookup(self, hashes: Tensor) -> Tensor:
        """Row of every hash, or -1 where the hash is unknown."""
        if len(self.sorted_hashes) == 0:
            return torch.full_like(hashes, -1)
        # Copied to the device once, not at every step.
        if hashes.device not in self._on_device:
            self._on_device[hashes.device] = (self.sorted_hashes.to(hashes.device), self.sorted_rows.to(hashes.device))
        sorted_hashes, sorted_rows = self._on_device[hashes.device]
        position = torch.searchsorted(sorted_hashes, hashes).clamp(max=len(sorted_hashes) - 1)
        found = sorted_hashes[position] == hashes
        return torch.where(found, sorted_rows[position], torch.full_like(hashes, -1))


def check_on_device(condition: Tensor, message, error: type[Exception] = ValueError) -> None:
    """Raise ``error(message)`` unless the 0-dim bool ``condition`` holds, without a host synchronisation.

    On CUDA this is ``torch._assert_async``: the step is not stalled, and a failure surfaces at a later
    kernel launch with ``message``. On CPU the check is synchronous anyway, so the error is raised here, with
    the detailed message (``message`` may be a callable, evaluated only on failure).
    """
    describe = message if callable(message) else (lambda: message)
    if condition.device.type == "cpu":
        try:
            torch._assert_async(condition)
        except RuntimeError:
            raise error(describe()) from None
    else:
        generic = "hf_softnce: a training-step check failed; run the step on CPU for the detailed error."
        torch._assert_async(condition, message if isinstance(message, str) else generic)


@dataclass
class CandidateBatch:
    """A batch as the losses and relevance estimators see it, after any cross-device gather.

    Candidates are laid out like MultipleNegativesRankingLoss's: the positive column of the (global) batch,
    then each hard-negative column, so candidate ``c * global_batch + j`` is row ``j``'s column ``c``.

    Attributes:
        query_hashes: ``(global_batch,)`` text hashes of the queries.
        candidate_hashes: ``(num_candidates,)`` text hashes of the candidates.
        local_rows: ``(batch,)`` positions of this rank's queries in the global batch.
        global_batch: rows per candidate column after the gather.
        num_columns: candidate columns (1 positive + hard-negative columns).
        labels: this rank's ``label`` tensor ``(batch, num_columns)`` or None.
        global_labels: the labels of the global batch (gathered like the candidates), or None.
        rank_weight: what this rank's loss is multiplied by so that the average over the ranks is the mean over
            every row: 1.0, unless the ranks' local batches differ in size (then the gathered batch holds padding
            rows, which are never negatives).
        negative_mask: ``(batch, num_candidates)`` True where a candidate is a negative of the row's query
            (not its own positive, not a duplicate of it).
    """

    query_hashes: Tensor
    candidate_hashes: Tensor
    local_rows: Tensor
    global_batch: int
    num_columns: int
    labels: Tensor | None
    negative_mask: Tensor
    global_labels: Tensor | None = None
    rank_weight: float = 1.0

    @property
    def batch_size(self) -> int:
        return len(self.local_rows)

    @property
    def candidate_query_rows(self) -> Tensor:
        """For each candidate, the global row whose positive it is, or -1 for a hard negative."""
        rows = torch.arange(self.global_batch, device=self.local_rows.device)
        filler = torch.full((self.global_batch * (self.num_columns - 1),), -1, device=rows.device, dtype=rows.dtype)
        return torch.cat([rows, filler])

    def own_column_indices(self) -> Tensor:
        """``(batch, num_columns)`` candidate index of each local row's own positive and hard negatives."""
        columns = torch.arange(self.num_columns, device=self.local_rows.device)
        return columns[None, :] * self.global_batch + self.local_rows[:, None]
