"""The shared core of hf_softnce's contrastive losses: candidate layout, cross-device gather, false-negative
masking by duplication, checked relevance and InfoNCE itself. SoftInfoNCE and OrderInfoNCE both build on it; what
only one of them needs lives in its own module.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

import math

import torch
from torch import Tensor, nn

from sentence_transformers.base.losses.merged_forward import embed_columns
from sentence_transformers.util import all_gather, all_gather_with_grad, cos_sim, get_rank, similarity_fct_name

from hf_softnce.batch import (
    CandidateBatch,
    check_on_device,
    hash_texts,
    known_prompts,
    prompt_lengths,
    text_hashes,
    text_index,
)
from hf_softnce.model_checks import require_bi_encoder
from hf_softnce.weighting.base import RelevanceEstimator


def local_batch_sizes(batch_size: int, device: torch.device) -> list[int]:
    """Every rank's local batch size, in rank order: one small all_gather (``[batch_size]`` without a process group).

    Read on the host, because padding to the largest needs it as a shape."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return [batch_size]
    return all_gather(torch.tensor([batch_size], device=device)).tolist()


def pad_rows(tensor: Tensor, rows: int) -> Tensor:
    """``tensor`` with its last row repeated up to ``rows`` rows. The copies are real texts (an estimator finds
    their hashes) and carry no gradient; the loss masks them out."""
    missing = rows - len(tensor)
    if missing <= 0:
        return tensor
    return torch.cat([tensor, tensor[-1:].detach().expand(missing, *tensor.shape[1:])])


def check_estimator(loss_name: str, argument: str, estimator) -> None:
    """A clear TypeError for MultipleNegativesRankingLoss's positional habit ``Loss(model, 30.0)``."""
    if estimator is not None and not isinstance(estimator, RelevanceEstimator):
        raise TypeError(
            f"{loss_name}: {argument} must be a RelevanceEstimator from hf_softnce.weighting or None, got "
            f"{type(estimator).__name__} {estimator!r}. The arguments after {argument} are keyword-only: "
            f"write e.g. {loss_name}(model, scale=30.0)."
        )


def check_finite(loss_name: str, **values: float) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{loss_name}: {name} must be a finite number, got {value!r}.")


def tokenization_key(model, prompt_lengths: tuple[int, ...] = ()) -> tuple:
    """What decides a text's token ids (and so its hashes): the tokenizer, ``max_seq_length``, the lengths of
    the trainer's prompts, which take places of ``max_seq_length`` from long texts, and the prompts themselves (a
    new prompt of a length already seen may change the tokens of the texts after it)."""
    prompts = tuple(sorted(known_prompts(model))) if prompt_lengths else ()
    return (id(getattr(model, "tokenizer", None)), getattr(model, "max_seq_length", None), prompt_lengths, prompts)


def _duplicate_group_index(model, duplicate_groups, prompt_lengths: tuple[int, ...] = ()):
    """``{code text: group}`` (or a Dataset with code/dup_group columns) -> a hash index to group numbers."""
    if duplicate_groups is None:
        return None
    if hasattr(duplicate_groups, "column_names"):
        from hf_softnce.data.schema import all_columns, resolve_columns

        duplicate_groups = all_columns(duplicate_groups)
        if "dup_group" in duplicate_groups.column_names and "code" not in duplicate_groups.column_names:
            # anchor/positive (or any names): the code is the second text column, as the trainer reads it.
            code_column = resolve_columns(duplicate_groups.column_names, "duplicate_groups dataset").code
            duplicate_groups = duplicate_groups.rename_column(code_column, "code")
        missing = [c for c in ("code", "dup_group") if c not in duplicate_groups.column_names]
        if missing:
            raise ValueError(f"duplicate_groups dataset lacks column(s) {missing}.")
        duplicate_groups = dict(zip(duplicate_groups["code"], duplicate_groups["dup_group"]))
    if not isinstance(duplicate_groups, Mapping):
        raise TypeError("duplicate_groups must map code text -> group id, or be a Dataset with code/dup_group.")
    group_number: dict[Hashable, int] = {}
    texts = list(duplicate_groups)
    numbers = torch.tensor([group_number.setdefault(duplicate_groups[t], len(group_number)) for t in texts])
    return text_index(model, texts, numbers, prompt_lengths), len(group_number)


class NegativeAwareLoss(nn.Module):
    """Base of hf_softnce's contrastive losses. Follows MultipleNegativesRankingLoss's conventions exactly:
    the same merged forward, candidate layout (every positive, then every hard-negative column), scale,
    similarity and cross-device gather — so that uniform weights reproduce it to float precision.

    A candidate is removed from a query's negatives (not merely down-weighted) when it tokenizes identically to
    the query's own positive, or shares its duplicate group. This is decided from the inputs, never from an
    embedding similarity of 1.0, which dropout breaks (sentence-transformers #2756).
    """

    def __init__(
        self,
        model,
        *,
        scale: float = 20.0,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = cos_sim,
        gather_across_devices: bool = False,
        mask_duplicates: bool = True,
        duplicate_groups: Mapping[str, Hashable] | Any | None = None,
    ) -> None:
        super().__init__()
        require_bi_encoder(model, type(self).__name__)
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}.")
        self.model = model
        self.scale = scale
        self.similarity_fct = similarity_fct
        self.gather_across_devices = gather_across_devices
        self.mask_duplicates = mask_duplicates
        self._duplicate_groups = duplicate_groups
        group_index = _duplicate_group_index(model, duplicate_groups)
        self._group_index, self.num_duplicate_groups = group_index if group_index else (None, 0)
        self._prompt_lengths: tuple[int, ...] = ()
        self._tokenization = tokenization_key(model)
        self._empty_hash = hash_texts(model, [""])

    # ----- text identity ---------------------------------------------------------------------------
    def estimators(self) -> list[RelevanceEstimator]:
        """The estimators that look texts up by hash (rebound when the tokenization changes)."""
        return []

    def sync_tokenization(self, sentence_features: Iterable[dict] = ()) -> None:
        """Rehash the fitted texts if ``model.max_seq_length``, the tokenizer or the set of trainer prompt lengths
        changed since the loss was built: the lookups (estimators, duplicate groups) then keep matching the
        trainer's features, however a prompt truncates a long text. A Python-side comparison (prompt lengths are
        ints the collator sets), no tensor work unless something changed; a new prompt rehashes once."""
        self._prompt_lengths = tuple(sorted({*self._prompt_lengths, *prompt_lengths(list(sentence_features))}))
        key = tokenization_key(self.model, self._prompt_lengths)
        if key == self._tokenization:
            return
        self._tokenization = key
        self._empty_hash = hash_texts(self.model, [""])
        group_index = _duplicate_group_index(self.model, self._duplicate_groups, self._prompt_lengths)
        self._group_index, self.num_duplicate_groups = group_index if group_index else (None, 0)
        for estimator in self.estimators():
            estimator.bind(self.model, prompt_lengths=self._prompt_lengths)

    # ----- inputs ------------------------------------------------------------------------------------
    def check_not_empty(self, hashes: list[Tensor]) -> None:
        """An empty query or code is an error, as in the loaders: it has nothing to learn from, and it is the same
        text as every other empty one (so each would mask the others as duplicates). Checked on the device."""
        empty_hash = self._empty_hash.to(hashes[0].device)  # one element, copied host -> device, never back
        empty = [(h == empty_hash).sum() for h in hashes]
        queries, candidates = empty[0], sum(empty[1:])
        check_on_device(
            queries + candidates == 0,
            lambda: (
                f"{type(self).__name__}: the batch holds {int(queries)} empty query text(s) and {int(candidates)} "
                "empty code text(s); drop rows with an empty query or code from the training data (hf_softnce's "
                "loaders reject them with errors='raise' and count them with errors='skip')."
            ),
        )

    @staticmethod
    def column_hashes(sentence_features: Iterable[dict[str, Tensor]]) -> list[Tensor]:
        return [text_hashes(features) for features in sentence_features]

    def embed(self, sentence_features: list[dict[str, Tensor]]) -> list[Tensor]:
        return embed_columns(self.model, sentence_features)

    # ----- the batch every loss scores ---------------------------------------------------------------
    def candidate_batch(
        self, embeddings: list[Tensor], hashes: list[Tensor], labels: Tensor | None
    ) -> tuple[Tensor, CandidateBatch]:
        """Scaled similarities ``(batch, candidates)`` of this rank's queries, and the batch description."""
        if len(embeddings) < 2:
            raise ValueError(
                f"{type(self).__name__} needs a query column and a code column (plus optional negative_* "
                f"columns), got {len(embeddings)} column(s)."
            )
        self.check_not_empty(hashes)
        sizes = [len(e) for e in embeddings]
        if len(set(sizes)) != 1:
            raise ValueError(f"{type(self).__name__}: the input columns have different batch sizes {sizes}.")
        batch_size = sizes[0]
        queries, columns = embeddings[0], embeddings[1:]
        query_hashes, column_hashes = hashes[0], hashes[1:]
        offset, global_labels, padding, rank_weight = 0, labels, None, 1.0
        if self.gather_across_devices:
            sizes = local_batch_sizes(batch_size, queries.device)
            largest = max(sizes)
            if min(sizes) != largest:
                # all_gather needs one shape on every rank (a last batch without dataloader_drop_last is
                # smaller): pad to the largest local batch, then mask the padding out of every row's negatives.
                queries, query_hashes = pad_rows(queries, largest), pad_rows(query_hashes, largest)
                columns = [pad_rows(column, largest) for column in columns]
                column_hashes = [pad_rows(h, largest) for h in column_hashes]
                padding = torch.tensor([row >= size for size in sizes for row in range(largest)], device=queries.device)
                # The trainer averages the ranks' losses: weighting each rank's mean by its share of the rows makes
                # that average the mean over every row, as one process on the whole batch gives.
                rank_weight = batch_size * len(sizes) / sum(sizes)
            # Each column is gathered separately, then concatenated: the layout MNRL uses (PR #3453).
            queries = all_gather_with_grad(queries)
            columns = [all_gather_with_grad(column) for column in columns]
            query_hashes = all_gather(query_hashes)
            column_hashes = [all_gather(h) for h in column_hashes]
            if isinstance(labels, Tensor) and labels.ndim > 0:
                global_labels = all_gather(pad_rows(labels, largest))
            offset = get_rank() * largest
        global_batch = len(queries)
        candidates = torch.cat(columns)
        candidate_hashes = torch.cat(column_hashes)
        if len(candidates) < 2:
            raise ValueError(
                f"{type(self).__name__}: a batch of one pair has no negatives. Use a batch size above 1 "
                "or add negative_* columns."
            )
        local_rows = torch.arange(offset, offset + batch_size, device=queries.device)
        scores = self.similarity_fct(queries[local_rows], candidates) * self.scale
        negative_mask = self.negative_mask(local_rows, candidate_hashes)
        if padding is not None:
            negative_mask &= ~padding.repeat(len(columns))[None, :]
        batch = CandidateBatch(
            query_hashes=query_hashes,
            candidate_hashes=candidate_hashes,
            local_rows=local_rows,
            global_batch=global_batch,
            num_columns=len(columns),
            labels=labels,
            negative_mask=negative_mask,
            global_labels=global_labels,
            rank_weight=rank_weight,
        )
        return scores, batch

    def compute_loss_from_embeddings(
        self, embeddings: list[Tensor], labels: Tensor | None, hashes: list[Tensor]
    ) -> Tensor:
        scores, batch = self.candidate_batch(embeddings, hashes, labels)
        loss = self.batch_loss(scores, batch)
        return loss if batch.rank_weight == 1.0 else loss * batch.rank_weight

    def batch_loss(self, scores: Tensor, batch: CandidateBatch) -> Tensor:
        """The loss of this rank's queries from their scaled scores against every candidate."""
        raise NotImplementedError

    def negative_mask(self, local_rows: Tensor, candidate_hashes: Tensor) -> Tensor:
        """True where a candidate counts as a negative of the row's query."""
        device = candidate_hashes.device
        mask = torch.ones(len(local_rows), len(candidate_hashes), dtype=torch.bool, device=device)
        positive_hashes = candidate_hashes[local_rows]
        mask[torch.arange(len(local_rows), device=device), local_rows] = False
        if self.mask_duplicates:
            mask &= candidate_hashes[None, :] != positive_hashes[:, None]
            if self._group_index is not None:
                candidate_groups = self._group_index.lookup(candidate_hashes)
                positive_groups = candidate_groups[local_rows]
                # duplicate_groups maps the training codes: a positive it does not know means the texts no
                # longer match (a different tokenizer or truncation), and masking would stop in silence.
                check_on_device(
                    (positive_groups >= 0).all(),
                    lambda: (
                        f"{type(self).__name__}: {int((positive_groups < 0).sum())} of {len(positive_groups)} "
                        "positive codes of the batch are not in duplicate_groups, so their duplicates cannot be "
                        "masked. Pass duplicate_groups for every training code (e.g. the dataset's code/dup_group "
                        "columns); texts are matched by their token ids (prompts removed) at the model's "
                        "max_seq_length: a data collator with its own max_length truncates otherwise (set "
                        "model.max_seq_length instead)."
                    ),
                    KeyError,
                )
                same_group = (candidate_groups[None, :] == positive_groups[:, None]) & (positive_groups[:, None] >= 0)
                mask &= ~same_group
        return mask

    def estimate_relevance(self, estimator: RelevanceEstimator, batch: CandidateBatch) -> Tensor:
        """The estimator's relevance, checked: finite, and non-negative unless the estimator is signed."""
        with torch.no_grad():
            relevance = estimator.relevance(batch).float()
        if relevance.shape != batch.negative_mask.shape:
            raise ValueError(
                f"{type(estimator).__name__} returned relevance of shape {tuple(relevance.shape)}, expected "
                f"{tuple(batch.negative_mask.shape)} (queries x candidates)."
            )
        # Checked on the device, without a host synchronisation (a CUDA failure surfaces at a later launch).
        checked = relevance.masked_fill(~batch.negative_mask, 0.0)
        check_on_device(
            torch.isfinite(checked).all(),
            f"{type(estimator).__name__} produced NaN or infinite relevance for some negatives.",
        )
        if not estimator.signed:
            check_on_device(
                (checked >= 0).all(),
                f"{type(estimator).__name__} produced negative relevance; relevance must be >= 0 (pass "
                "allow_negative=True to PrecomputedWeighter for signed similarities).",
            )
        return relevance

    @staticmethod
    def positive_scores(scores: Tensor, batch: CandidateBatch) -> Tensor:
        return scores[torch.arange(batch.batch_size, device=scores.device), batch.local_rows]

    @staticmethod
    def infonce(scores: Tensor, batch: CandidateBatch, log_weights: Tensor | None = None) -> Tensor:
        """``mean_i -log(e^{s_i+} / (e^{s_i+} + sum_j w_ij e^{s_ij}))`` in log space; ``log_weights`` over the
        negatives (None: all 1). Non-negatives and removed duplicates are excluded."""
        logits = scores if log_weights is None else scores + log_weights
        positive_position = torch.zeros_like(batch.negative_mask)
        positive_position[torch.arange(batch.batch_size, device=scores.device), batch.local_rows] = True
        logits = logits.masked_fill(~(batch.negative_mask | positive_position), float("-inf"))
        # Written like MNRL's (logsumexp minus positive), so uniform weights match it to float precision.
        return (torch.logsumexp(logits, dim=1) - NegativeAwareLoss.positive_scores(scores, batch)).mean()

    def base_config(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "similarity_fct": similarity_fct_name(self.similarity_fct),
            "gather_across_devices": self.gather_across_devices,
            "mask_duplicates": self.mask_duplicates,
            # A count, not the mapping the argument takes: the card reports it, and a config holds no training data.
            "duplicate_group_count": self.num_duplicate_groups,
        }
