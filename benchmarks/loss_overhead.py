"""Per-step cost of hf_softnce's losses against MultipleNegativesRankingLoss, side by side in one process.

A full train step (forward, backward, optimizer step) of all-MiniLM-L6-v2 on the same batches of (query, code,
negative) triples from the standard library, code up to 256 tokens, batch sizes 32 and 64. The losses are
interleaved round by round in a shuffled order, and the ratio to MNRL is taken within each round, so machine
noise hits both sides alike. Estimators precompute once before timing (reported separately).

    python -m benchmarks.loss_overhead [--rounds 5] [--batch-sizes 32 64]     (from the repository root)
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

from benchmarks.common import RESULTS, machine, python_pairs, write_json
from hf_softnce.defaults import default_model_path
from hf_softnce.losses import SoftInfoNCELoss
from hf_softnce.weighting import BM25Weighter, EmbeddingWeighter, PrecomputedWeighter, TrainedModelWeighter

TARGETS = {"BM25": 1.02, "precomputed": 1.02, "embedding": 1.05, "trained-model": 1.05, "OrderInfoNCE": 1.03}


def build_losses(model, data):
    frozen = lambda: SentenceTransformer(default_model_path(), device="cpu")  # noqa: E731 - separate copies
    losses, precompute = {"MNRL": MultipleNegativesRankingLoss(model)}, {}
    for name, make in [
        ("BM25", lambda: BM25Weighter().fit(data)),
        ("embedding", lambda: EmbeddingWeighter(frozen(), cache=False).fit(data)),
        ("trained-model", lambda: TrainedModelWeighter(frozen(), cache=False).fit(data)),
        ("precomputed", lambda: PrecomputedWeighter()),
    ]:
        start = time.perf_counter()
        losses[name] = SoftInfoNCELoss(model, make())
        precompute[name] = time.perf_counter() - start
    try:
        from hf_softnce.losses import OrderInfoNCELoss

        losses["OrderInfoNCE"] = OrderInfoNCELoss(model)
    except ImportError:
        pass
    return losses, precompute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--max-seq-length", type=int, default=256)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = SentenceTransformer(default_model_path(), device="cpu")
    model.max_seq_length = args.max_seq_length
    largest = max(args.batch_sizes)
    pairs = python_pairs(largest * (args.rounds + 1))
    codes = pairs["code"]
    # A hard negative per row (the next row's code) and a relevance label for it, so every loss sees 3 columns.
    data = pairs.add_column("negative_1", codes[1:] + codes[:1])
    losses, precompute = build_losses(model, data)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)
    rng = random.Random(0)
    times = {bs: {name: [] for name in losses} for bs in args.batch_sizes}

    for round_index in range(args.rounds + 1):  # round 0 warms up and is discarded
        for bs in args.batch_sizes:
            rows = data.select(range(round_index * bs, (round_index + 1) * bs))
            features = [model.preprocess(rows[c]) for c in ("query", "code", "negative_1")]
            labels = torch.tensor([[1.0, rng.random()] for _ in range(bs)])
            order = list(losses)
            rng.shuffle(order)
            for name in order:
                model.train()
                start = time.perf_counter()
                value = losses[name](features, labels)
                value.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                elapsed = time.perf_counter() - start
                if round_index:
                    times[bs][name].append(elapsed)
        print(f"round {round_index}/{args.rounds} done", flush=True)

    results = {}
    print(f"\n{'loss':<16}" + "".join(f"{'bs ' + str(bs) + ' s/step':>16}{'ratio':>8}" for bs in args.batch_sizes))
    for name in losses:
        row = {}
        line = f"{name:<16}"
        for bs in args.batch_sizes:
            ratios = [t / m for t, m in zip(times[bs][name], times[bs]["MNRL"])]
            row[bs] = {"median_step_s": statistics.median(times[bs][name]), "ratio_to_mnrl": statistics.median(ratios)}
            line += f"{row[bs]['median_step_s']:>16.3f}{row[bs]['ratio_to_mnrl']:>8.3f}"
        results[name] = row
        print(line + (f"   target <= {TARGETS[name]}" if name in TARGETS else ""))
    path = write_json(
        "loss_overhead",
        {
            "model": "all-MiniLM-L6-v2",
            "max_seq_length": args.max_seq_length,
            "rounds": args.rounds,
            "results": results,
            "one_time_precompute_s": precompute,
            "targets": TARGETS,
            "machine": machine(),
        },
    )
    print(f"\nwrote {path} and {plot(results, args.batch_sizes)}")


def plot(results: dict, batch_sizes: list[int]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in results if n != "MNRL"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / len(batch_sizes)
    for k, bs in enumerate(batch_sizes):
        ratios = [results[n][bs]["ratio_to_mnrl"] for n in names]
        bars = ax.bar([i + k * width for i in range(len(names))], ratios, width, label=f"batch {bs}")
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    for i, name in enumerate(names):
        if name in TARGETS:
            ax.hlines(TARGETS[name], i - 0.1, i + 0.8, colors="red", linestyles="dashed", linewidth=1)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks([i + width * (len(batch_sizes) - 1) / 2 for i in range(len(names))], names, fontsize=8)
    ax.set_ylabel("train step time / MNRL")
    all_ratios = [results[n][bs]["ratio_to_mnrl"] for n in names for bs in batch_sizes]
    ax.set_ylim(min(0.9, min(all_ratios) - 0.03), max(1.1, max(all_ratios) + 0.03))
    ax.set_title("Per-step cost vs MultipleNegativesRankingLoss (dashed: target)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = RESULTS / "loss_overhead.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
