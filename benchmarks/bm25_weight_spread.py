"""How hard each SoftInfoNCE (BM25) setting cuts negatives on CoSQA train batches (no model, no training).

    python -m benchmarks.bm25_weight_spread [--batches 100] [--batch-size 64]

For random batches of CoSQA train pairs (in-batch negatives, the positive's duplicate group masked, as in the main
job), the Soft-InfoNCE weights ``w_ij`` of each row's negatives under the BM25 estimator, per setting: how many
negatives per row fall below 0.5, how many are clipped to ``min_weight``, and the mean lowest weight. Explains the
full size's choice of alpha/beta (README, "The full size"). Writes ``results/cosqa_levers/bm25_weight_spread.json``.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from benchmarks.cosqa_levers import OUT, cosqa_folder
from hf_softnce.losses import soft_negative_weights

SETTINGS = {"paper (alpha 1.5, beta 0.5, t 1)": (1.5, 0.5, 1.0), "t 3 (alpha 1.5, beta 0.5)": (1.5, 0.5, 3.0),
            "alpha 1.3, beta 0.7 (t 1)": (1.3, 0.7, 1.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    from hf_softnce.data import all_columns, load_cosqa
    from hf_softnce.weighting import BM25Weighter

    train = all_columns(load_cosqa(data_dir=cosqa_folder("bm25_weight_spread"), splits=("train",), verbose=False).train)
    queries, codes, groups = train["query"], train["code"], np.asarray(train["dup_group"])
    weighter = BM25Weighter().fit(queries, codes)
    # The estimator's precomputed (queries x vocab) and (vocab x codes) BM25 matrices: the relevance the loss looks up.
    query_row = {text: i for i, text in enumerate(weighter.queries)}
    code_row = {text: i for i, text in enumerate(weighter.codes)}
    rng = np.random.default_rng(0)
    batches = []  # (relevance, negative mask) of each batch, shared by every setting
    for _ in range(args.batches):
        rows = rng.choice(len(queries), args.batch_size, replace=False)
        relevance = weighter._query_terms[[query_row[queries[r]] for r in rows]] @ \
            weighter._code_documents[:, [code_row[codes[r]] for r in rows]]
        batches.append((torch.from_numpy(relevance.toarray()),
                        torch.from_numpy(groups[rows][:, None] != groups[rows][None, :])))
    results = {}
    for name, (alpha, beta, temperature) in SETTINGS.items():
        below, clipped, lowest = [], [], []
        for relevance, mask in batches:
            weights = soft_negative_weights(relevance, mask, alpha, beta, temperature)
            for row_weights, row_mask in zip(weights, mask):
                kept = row_weights[row_mask]
                below.append(int((kept < 0.5).sum()))
                clipped.append(int((kept <= 0.1 + 1e-6).sum()))
                lowest.append(float(kept.min()))
        results[name] = {"below_0.5_per_row": float(np.mean(below)), "clipped_per_row": float(np.mean(clipped)),
                         "mean_lowest_weight": float(np.mean(lowest))}
    print("| setting | negatives per row below 0.5 | clipped to 0.1 | mean lowest weight |\n|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['below_0.5_per_row']:.2f} | {r['clipped_per_row']:.2f} | {r['mean_lowest_weight']:.2f} |")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bm25_weight_spread.json").write_text(json.dumps(
        {"batches": args.batches, "batch_size": args.batch_size, "results": results}, indent=2))


if __name__ == "__main__":
    main()
