"""Two main-job runs, row by row: paired MRR@1000 differences over the same queries, per CoSQA dev half.

    python -m benchmarks.compare_main_runs OLD/results.json NEW/results.json

Used to choose the full size's batch (README, "The full size"): the rule, fixed before the batch-64 run, was to
adopt it when the mean selection-half MRR of the four retriever rows is higher than at batch 32.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from hf_softnce.evaluation.bootstrap import PairedBootstrap, per_query_values

ROWS = ["InfoNCE", "SoftInfoNCE (BM25)", "SoftInfoNCE (trained model)", "OrderInfoNCE (InfoNCE teacher)"]
HALVES = ("cosqa-select", "cosqa-report")


def reciprocal_ranks(run: dict, halves=HALVES) -> dict[str, float]:
    """``{half/query: reciprocal rank@1000}`` of one seed's per-query ranks (the library's own cut-off)."""
    return {f"{h}/{q}": rr for h in halves for q, rr in per_query_values(run[h], "mrr@1000").items()}


def main(old_path: str, new_path: str) -> None:
    old, new = (json.load(open(p))["per_query_ranks"] for p in (old_path, new_path))
    print("| row | queries | old MRR | new MRR | Δ (new − old) [95% CI] |\n|---|---|---|---|---|")
    selection = {}
    for row in [r for r in ROWS if r in old and r in new]:
        for label, halves in (("selection half", HALVES[:1]), ("report half", HALVES[1:]), ("dev-500", HALVES)):
            a, b = reciprocal_ranks(new[row][0], halves), reciprocal_ranks(old[row][0], halves)
            d = PairedBootstrap(sorted(a)).difference(a, b, given="reciprocal_ranks")
            if label == "selection half":
                selection[row] = (np.mean(list(b.values())), np.mean(list(a.values())))
            print(f"| {row} | {label} | {np.mean(list(b.values())):.4f} | {np.mean(list(a.values())):.4f} "
                  f"| {d.value:+.4f} [{d.low:+.3f}, {d.high:+.3f}] |")
    old_mean, new_mean = (float(np.mean([v[i] for v in selection.values()])) for i in (0, 1))
    print(f"\nselection-half mean over {len(selection)} rows: old {old_mean:.4f}, new {new_mean:.4f}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
