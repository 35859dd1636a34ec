"""The ranker check's cascade over several seeds, on the report set: each seed's row and their average.

    python -m benchmarks.ranker_seeds --retriever runs/main/infonce/seed-42/final \
        --runs runs/ranker_learning runs/ranker_learning_seed43 --output-dir runs/ranker_seeds

Each ``--runs`` folder is one ``python -m benchmarks.ranker_learning`` run (one ``--seed``: the ranker's head, its
training sample and negatives, and the held-out queries it chose its weight on). Its saved dev-500 top-10 scores
(``rows/*.npz``) are combined again, without training again, at R2PS's plain sum (weight 1, what
``RetrieverRanker(combine="add")`` does) and at the weight that run chose on ``cosqa-heldout``; dev-500
is the same 500 queries for every seed, so the per-query gains over the retriever can be averaged across seeds: the
gain a user of the recipe can expect from a ranker of an unknown seed, with a 95 % bootstrap interval over queries,
beside each seed's own interval and the spread between seeds. ``--against`` pairs each run's dev-500 cascade with
another run's of the same retriever (say, the same seed trained fewer steps), at the same weight rule: whether the
change between the two runs moved the report set. Nothing is chosen here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.ranker_learning import (CASCADE_TOP_K, FUSION_WEIGHTS, cascade_reciprocal_ranks, check_setup,
                                        reciprocal_ranks, report_queries, summary)


def load_run(folder: Path, variant: str) -> dict:
    """One ``benchmarks.ranker_learning`` run: its seed, its row for ``variant`` and its saved dev-500 scores."""
    from hf_softnce.training.plan import run_slug

    results = json.loads((folder / "results.json").read_text())
    if variant not in results["rows"]:
        raise SystemExit(f"{folder / 'results.json'}: no row {variant!r} (rows: {list(results['rows'])})")
    saved = folder / "rows" / f"{run_slug(variant)}.npz"
    if not saved.exists():
        raise SystemExit(f"{saved}: missing: the run kept no dev-500 scores to re-combine (run it again)")
    return {"folder": str(folder), "seed": results["settings"]["seed"], "steps": results["settings"]["steps"],
            "row": results["rows"][variant], "scores": np.load(saved)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retriever", required=True, help="the retriever every run re-ranked (their --retriever)")
    parser.add_argument("--runs", nargs="+", required=True, help="benchmarks.ranker_learning output folders")
    parser.add_argument("--variant", default="released head, no warmup, positive-aware probabilistic 3 from rank 10")
    parser.add_argument("--against", help="another run of the same retriever (e.g. fewer steps): each run's dev-500 "
                        "cascade is also paired with its cascade at the same weight rule")
    parser.add_argument("--output-dir", default="runs/ranker_seeds")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="the main job's settings, as for the runs")
    args = parser.parse_args()

    runs = [load_run(Path(folder), args.variant) for folder in args.runs]
    against = load_run(Path(args.against), args.variant) if args.against else None
    seeds = [r["seed"] for r in runs]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"--runs: two runs share a seed ({seeds}): average different seeds")

    # The same codebase order and dev-500 queries as benchmarks.ranker_learning (its top-10 indices point into them).
    data, _, retriever, _, groups, index, code_emb = check_setup(seeds[0], args.overrides, args.retriever)
    queries, gold_groups = report_queries(data, index, groups)
    scores = retriever.encode(queries, batch_size=64, normalize_embeddings=True, convert_to_numpy=True) @ code_emb.T
    retriever_rr = reciprocal_ranks(scores, groups, gold_groups)

    top = np.argsort(-scores, axis=1)[:, :CASCADE_TOP_K]
    for run in runs + ([against] if against else []):
        if not np.array_equal(run["scores"]["dev_top"], top):
            raise SystemExit(f"{run['folder']}: its dev-500 top codes differ from this retriever's: another retriever?")
    cell = lambda s: f"{s['mean']:+.3f} [{s['low']:+.3f}, {s['high']:+.3f}]"  # noqa: E731
    lines = [f"Cascade: the retriever's top {CASCADE_TOP_K} re-ordered by `cosine + w * score`, {args.variant}; "
             "MRR of the gold code's duplicate group over the whole codebase (dev-500: retriever alone "
             f"{retriever_rr.mean():.3f}); paired 95 % bootstrap intervals over queries. Each seed's `cosqa-heldout` "
             "figure is its own run's (its own 1,000 queries); dev-500 is the same 500 queries for every seed."]
    report_json = {"settings": vars(args), "retriever dev mrr": float(retriever_rr.mean())}
    # w = 1 is R2PS's sum and RetrieverRanker(combine="add"): nothing chosen; the other weight each run chose.
    for mode, title in (("sum", "w = 1 (R2PS's sum) for every seed"),
                        ("chosen", "w chosen on `cosqa-heldout` by each run among " + str(list(FUSION_WEIGHTS)))):
        def cascade_rr(run: dict) -> tuple[float, np.ndarray]:
            weight = 1.0 if mode == "sum" else run["row"]["fusion chosen weight"]
            return weight, cascade_reciprocal_ranks(run["scores"]["dev_top"], run["scores"]["dev_ranker_scores"],
                                                    scores, groups, gold_groups, weight)

        against_rr = cascade_rr(against)[1] if against else None  # once for every run it is paired with
        gains, rows = [], []
        for run in runs:
            weight, run_rr = cascade_rr(run)
            gains.append(run_rr - retriever_rr)
            heldout = run["row"]["cascade add vs retriever" if mode == "sum" else "fusion chosen heldout vs retriever"]
            rows.append({"seed": run["seed"], "steps": run["steps"], "weight": weight, "heldout": heldout,
                         "dev": summary(gains[-1])})
            if against:
                rows[-1]["dev vs against"] = summary(run_rr - against_rr)
        spread = [float(min(g.mean() for g in gains)), float(max(g.mean() for g in gains))]
        report_json[mode] = {"seeds": rows, "average": {"dev": summary(np.mean(gains, axis=0)), "seed spread": spread}}
        extra = f" dev-500: vs {against['steps']} steps, seed {against['seed']} |" if against else ""
        lines += ["", f"{title}:", "",
                  "| ranker seed | steps | w | cosqa-heldout: cascade vs retriever | dev-500: cascade vs retriever |"
                  + extra, "|---|---|---|---|---|" + ("---|" if against else "")]
        lines += [f"| {r['seed']} | {r['steps']} | {r['weight']} | {cell(r['heldout'])} | {cell(r['dev'])} |"
                  + (f" {cell(r['dev vs against'])} |" if against else "") for r in rows]
        lines.append(f"| average of the {len(rows)} seeds, per query | – | – | – | "
                     f"{cell(report_json[mode]['average']['dev'])}; seeds {spread[0]:+.3f} to {spread[1]:+.3f} |"
                     + (" – |" if against else ""))
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps(report_json, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
