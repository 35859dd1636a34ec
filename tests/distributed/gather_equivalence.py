"""Run under ``accelerate launch --multi_gpu --num_processes 2``: a loss with gather_across_devices=True on two
ranks (half the batch each) must give the loss and gradients of one process on the concatenated batch.

Usage: gather_equivalence.py LOSS WEIGHTER OUT_JSON [ROWS]   (LOSS: soft | cached_soft | order; WEIGHTER: none | bm25 |
labels; ROWS: each rank's local batch size, e.g. 5,3 for uneven batches; default: half of the 8 rows each)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import build_tiny_model, tiny_model_dir  # noqa: E402
from loss_helpers import CODES, NEGATIVES, QUERIES  # noqa: E402

QUERIES8 = QUERIES + ["Flatten a nested list.", "Read environment variables with defaults."]
CODES8 = CODES + ["def flatten(x):\n    return [b for a in x for b in a]", "def env(k, d=None):\n    return os.environ.get(k, d)"]
NEGATIVES8 = NEGATIVES + ["def chain(x):\n    return list(itertools.chain(x))", "def setenv(k, v):\n    os.environ[k] = v"]
LABELS8 = torch.tensor([[1.0, 0.1 * (i + 1)] for i in range(8)])


def make_loss(name: str, weighter_name: str, model, gather: bool):
    from hf_softnce.losses import CachedSoftInfoNCELoss, SoftInfoNCELoss
    from hf_softnce.weighting import BM25Weighter, PrecomputedWeighter

    weighter = {
        "none": lambda: None,
        "bm25": lambda: BM25Weighter().fit(QUERIES8, CODES8, negatives=NEGATIVES8),
        "labels": lambda: PrecomputedWeighter(),
    }[weighter_name]()
    if name == "soft":
        return SoftInfoNCELoss(model, weighter, gather_across_devices=gather)
    if name == "cached_soft":
        return CachedSoftInfoNCELoss(model, weighter, gather_across_devices=gather, mini_batch_size=3)
    from hf_softnce.losses import OrderInfoNCELoss

    # With "labels" the order term reads the label column; otherwise the estimator scores in-batch pairs.
    order_source = None if weighter_name == "labels" else weighter
    return OrderInfoNCELoss(model, order_source, gather_across_devices=gather)


def loss_and_grads(loss_name, weighter_name, rows, gather):
    model = build_tiny_model(seed=0)
    model.eval()  # no dropout: both runs must see identical embeddings
    loss = make_loss(loss_name, weighter_name, model, gather)
    columns = [[QUERIES8[i] for i in rows], [CODES8[i] for i in rows], [NEGATIVES8[i] for i in rows]]
    features = [model.preprocess(column) for column in columns]
    value = loss(features, LABELS8[rows])
    value.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return value.detach(), grads


def main() -> None:
    loss_name, weighter_name, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    sizes = [int(size) for size in sys.argv[4].split(",")] if len(sys.argv) > 4 else None
    tiny_model_dir(seed=0)  # saved before the process group exists: transformers only saves on rank 0 after
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    sizes = sizes or [len(QUERIES8) // world] * world
    rows = list(range(sum(sizes[:rank]), sum(sizes[: rank + 1])))
    value, grads = loss_and_grads(loss_name, weighter_name, rows, gather=True)
    # What DDP does: average the rank losses and the rank gradients.
    dist.all_reduce(value)
    value /= world
    for g in grads.values():
        dist.all_reduce(g)
        g /= world
    if rank == 0:
        ref_value, ref_grads = loss_and_grads(loss_name, weighter_name, list(range(len(QUERIES8))), gather=False)
        worst = max(
            ((grads[n] - ref_grads[n]).abs().max() / ref_grads[n].abs().max().clamp(min=1.0)).item() for n in ref_grads
        )
        out.write_text(json.dumps({
            "world_size": world,
            "loss_distributed": value.item(),
            "loss_single": ref_value.item(),
            "max_relative_grad_diff": worst,
            "same_parameters": sorted(grads) == sorted(ref_grads),
        }))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
