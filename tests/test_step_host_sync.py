"""The training step of every loss runs without a host synchronisation (the CPU side).

With CUDA the step runs under ``torch.cuda.set_sync_debug_mode("error")``. Without it, a TorchFunctionMode
records every call that would synchronise on a GPU (``.item()``, ``bool()``, ``int()``/``float()`` of a tensor,
``.tolist()``, ``.cpu()``, ``.numpy()``, ``nonzero``/``masked_select``/boolean-mask indexing, whose output
shape depends on the data) made from hf_softnce's code during a forward and backward, and asserts there is none.
"""

from __future__ import annotations

import os
import traceback

import pytest
import torch
from torch.overrides import TorchFunctionMode

import hf_softnce
from hf_softnce.losses import (
    CachedOrderInfoNCELoss,
    CachedSoftInfoNCELoss,
    OrderInfoNCELoss,
    SoftInfoNCELoss,
)
from hf_softnce.weighting import EmbeddingWeighter, PrecomputedWeighter, TrainedModelWeighter
from conftest import build_tiny_model
from loss_helpers import CODES, NEGATIVES, QUERIES, features

# The package's own folder: a clone that is itself named hf_softnce holds .venv/.../transformers too.
PACKAGE = os.path.join(os.path.dirname(os.path.abspath(hf_softnce.__file__)), "")
TORCH = os.path.dirname(torch.__file__)
SYNCING = {"item", "__bool__", "__int__", "__float__", "__index__", "tolist", "cpu", "numpy", "nonzero",
           "masked_select", "unique", "argwhere", "nonzero_static"}


def _bool_index(args) -> bool:
    index = args[1] if len(args) > 1 else None
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, torch.Tensor) and p.dtype == torch.bool for p in parts)


class SyncCounter(TorchFunctionMode):
    """Records the hf_softnce source line of every call that would synchronise with a GPU."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in SYNCING or (name == "__getitem__" and _bool_index(args)):
            # The innermost caller outside torch: hf_softnce's own code, not the encoder's forward.
            frames = [f for f in traceback.extract_stack()[:-1] if TORCH not in f.filename and f.filename != __file__]
            if frames and os.path.abspath(frames[-1].filename).startswith(PACKAGE):
                where = os.path.relpath(frames[-1].filename, PACKAGE)
                self.calls.append(f"{name} at {where}:{frames[-1].lineno}")
        return func(*args, **(kwargs or {}))


@pytest.fixture(scope="module")
def model():
    return build_tiny_model()


@pytest.fixture(scope="module")
def encoder():
    return build_tiny_model(seed=1)


def _losses(model, encoder):
    labels = torch.tensor([[0.9, 0.1 + 0.05 * (i % 5)] for i in range(len(QUERIES))])
    fitted = dict(cache=False, show_progress_bar=False)
    return {
        "soft_precomputed": (SoftInfoNCELoss(model, PrecomputedWeighter()), labels),
        "soft_embedding": (
            SoftInfoNCELoss(
                model,
                EmbeddingWeighter(encoder, **fitted).fit(QUERIES, CODES, negatives=NEGATIVES),
                duplicate_groups={code: i // 2 for i, code in enumerate(CODES + NEGATIVES)},
            ),
            None,
        ),
        "soft_trained_model": (SoftInfoNCELoss(model, TrainedModelWeighter(encoder, **fitted).fit(QUERIES, CODES, negatives=NEGATIVES)), None),
        "soft_kl": (SoftInfoNCELoss(model, PrecomputedWeighter(), variant="kl_regularized"), labels),
        "soft_bce": (SoftInfoNCELoss(model, PrecomputedWeighter(), variant="bce"), labels),
        "soft_top_k": (SoftInfoNCELoss(model, PrecomputedWeighter(), variant="remove_top_k"), labels),
        "cached_soft": (CachedSoftInfoNCELoss(model, PrecomputedWeighter(), mini_batch_size=4), labels),
        "order_labels": (OrderInfoNCELoss(model), labels),
        "order_source": (OrderInfoNCELoss(model, EmbeddingWeighter(encoder, **fitted).fit(QUERIES, CODES, negatives=NEGATIVES)), labels),
        "cached_order": (CachedOrderInfoNCELoss(model, mini_batch_size=4), labels),
    }


NAMES = ["soft_precomputed", "soft_embedding", "soft_trained_model", "soft_kl", "soft_bce",
         "soft_top_k", "cached_soft", "order_labels", "order_source", "cached_order"]


@pytest.mark.parametrize("name", NAMES)
def test_training_step_makes_no_host_synchronisation(model, encoder, name):
    loss, labels = _losses(model, encoder)[name]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    feats = [{k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in f.items()}
             for f in features(model, QUERIES, CODES, NEGATIVES)]
    labels = None if labels is None else labels.to(device)
    model.zero_grad()
    if device == "cuda":
        loss(feats, labels)  # first step: one-off copies of fitted tables to the device
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            value = loss(feats, labels)
            if value.requires_grad:
                value.backward()
        finally:
            torch.cuda.set_sync_debug_mode("default")
        return
    counter = SyncCounter()
    with counter:
        value = loss(feats, labels)
        if value.requires_grad:
            value.backward()
    assert counter.calls == []
    assert torch.isfinite(value.detach())


@pytest.mark.parametrize("name", ["soft_precomputed", "soft_kl", "cached_soft", "order_labels"])
def test_config_after_a_step_makes_no_host_synchronisation(model, encoder, name):
    """The card and results read get_config_dict(): it describes settings and never waits for the device."""
    loss, labels = _losses(model, encoder)[name]
    loss(features(model, QUERIES, CODES, NEGATIVES), labels)
    counter = SyncCounter()
    with counter:
        config = loss.get_config_dict()
    assert counter.calls == []
    assert "undefined_weight_rows" not in config and isinstance(config["duplicate_group_count"], int)
