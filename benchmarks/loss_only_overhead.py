"""The extra work hf_softnce's losses add on top of MultipleNegativesRankingLoss, measured precisely.

The full train-step comparison (``benchmarks/loss_overhead.py``) is dominated by the encoder: on 2 CPU cores a
MiniLM step takes 14-45 s and its run-to-run noise (about +-5 %) is larger than the targets' margins. Here the
encoder is taken out: the same real tokenized batches (all-MiniLM-L6-v2's tokenizer, stdlib pairs, code up to 256
tokens) and fixed 384-d embeddings go through each loss's own computation — token hashing, estimator lookup,
weights, loss, and its backward to the embeddings — interleaved, many repetitions, medians. The estimated step
ratio adds that extra time to the median full-step time of MNRL measured by ``loss_overhead.py``.

    python -m benchmarks.loss_only_overhead [--repeats 200]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

from benchmarks.common import RESULTS, machine, python_pairs, write_json
from benchmarks.loss_overhead import TARGETS, build_losses
from hf_softnce.defaults import default_model_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64])
    args = parser.parse_args()

    model = SentenceTransformer(default_model_path(), device="cpu")
    model.max_seq_length = 256
    pairs = python_pairs(max(args.batch_sizes) * 2)
    codes = pairs["code"]
    data = pairs.add_column("negative_1", codes[1:] + codes[:1])
    losses, _ = build_losses(model, data)
    full_step = json.loads((RESULTS / "loss_overhead.json").read_text())["results"]["MNRL"]
    rng = random.Random(0)
    results = {}
    for bs in args.batch_sizes:
        rows = data.select(range(bs))
        features = [model.preprocess(rows[c]) for c in ("query", "code", "negative_1")]
        labels = torch.tensor([[1.0, rng.random()] for _ in range(bs)])
        embeddings = [torch.randn(bs, 384, requires_grad=True) for _ in features]
        times = {name: [] for name in losses}
        for _ in range(args.repeats):
            order = list(losses)
            rng.shuffle(order)
            for name in order:
                loss = losses[name]
                start = time.perf_counter()
                if isinstance(loss, MultipleNegativesRankingLoss):
                    value = loss.compute_loss_from_embeddings(embeddings, labels)
                else:
                    if hasattr(loss, "sync_tokenization"):
                        loss.sync_tokenization()  # part of every step: rehash fitted texts if max_seq_length changed
                    value = loss.compute_loss_from_embeddings(embeddings, labels, loss.column_hashes(features))
                value.backward()
                times[name].append(time.perf_counter() - start)
        mnrl_ms = statistics.median(times["MNRL"]) * 1000
        step_ms = full_step[str(bs)]["median_step_s"] * 1000
        results[bs] = {}
        for name, values in times.items():
            extra_ms = statistics.median(values) * 1000 - mnrl_ms
            results[bs][name] = {
                "loss_ms": statistics.median(values) * 1000,
                "extra_ms_vs_mnrl": extra_ms,
                "estimated_step_ratio": 1 + extra_ms / step_ms,
            }
    print(f"{'loss':<16}" + "".join(f"{'bs' + str(bs) + ' loss ms':>16}{'est. ratio':>12}" for bs in args.batch_sizes))
    for name in losses:
        line = f"{name:<16}"
        for bs in args.batch_sizes:
            r = results[bs][name]
            line += f"{r['loss_ms']:>16.2f}{r['estimated_step_ratio']:>12.4f}"
        print(line + (f"   target <= {TARGETS[name]}" if name in TARGETS else ""))
    path = write_json("loss_only_overhead", {"results": results, "repeats": args.repeats, "machine": machine()})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
