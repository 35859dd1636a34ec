"""Every row of a main-job table against one reference row, from its committed per-query ranks.

    python -m benchmarks.against_row benchmarks/results/main_full.json --against "InfoNCE + mined negatives"

The main job's table pairs each row with the base model and InfoNCE; a reader deciding between rows on the same
negatives needs them paired with another row. Same method as the table (``training.comparison``): per-query
reciprocal ranks (averaged over a row's seeds), a paired bootstrap over queries (2,000 resamples, seed 0), 95 %
percentile intervals. Writes ``<results>_vs_<row>.{md,json}`` beside the results file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hf_softnce.evaluation.bootstrap import RECIPROCAL_RANKS, PairedBootstrap
from hf_softnce.training.comparison import BASE_ROW, REAL_SETS, merged_ranks, rank_metrics, reciprocal_ranks
from hf_softnce.training.plan import run_slug


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="a main job's results.json (its per_query_ranks)")
    parser.add_argument("--against", default="InfoNCE + mined negatives", help="the reference row")
    args = parser.parse_args()

    path = Path(args.results)
    runs = json.loads(path.read_text())["per_query_ranks"]
    if args.against not in runs:
        raise SystemExit(f"{path}: no row {args.against!r}; rows: {', '.join(runs)}")
    table, lines = {}, [f"Each row minus **{args.against}** in MRR@1000, paired over the same queries (95 % bootstrap "
                        f"interval; from `{path.name}`'s per-query ranks).", "",
                        "| row | " + " | ".join(f"{name} MRR | Δ vs {args.against}" for name in REAL_SETS) + " |",
                        "|---|" + "---|---|" * len(REAL_SETS)]
    for row in (r for r in runs if r not in (BASE_ROW, args.against)):
        cells, table[row] = [], {}
        for name, halves in REAL_SETS.items():
            seeds = min(len(runs[row]), len(runs[args.against]))  # the same seeds on both sides
            ranks = [merged_ranks(run, halves) for run in runs[row][:seeds]]
            reference = [merged_ranks(run, halves) for run in runs[args.against][:seeds]]
            a, b = reciprocal_ranks(ranks), reciprocal_ranks(reference)
            d = PairedBootstrap(sorted(b), n_resamples=2000, seed=0).difference(a, b, given=RECIPROCAL_RANKS)
            mrr = rank_metrics(ranks)["mrr@1000"]
            table[row][name] = {"mrr@1000": mrr, "difference": [d.value, d.low, d.high]}
            cells += [f"{mrr:.4f}", f"{'**' if d.supported else ''}{d.value:+.4f}{'**' if d.supported else ''} "
                                    f"[{d.low:+.4f}, {d.high:+.4f}]"]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    stem = path.with_name(f"{path.stem}_vs_{run_slug(args.against)}")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    stem.with_suffix(".json").write_text(json.dumps({"against": args.against, "source": path.name, "rows": table},
                                                    indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
