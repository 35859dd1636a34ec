"""The WiSE-FT weight of a finished main-job run, chosen on cosqa-heldout without training again.

    python -m benchmarks.wise_ft_weight --run-dir runs/main --weights 1.0 0.5 \
        --output-dir benchmarks/results/wise_ft_quick

Each row of the run was saved averaged with the base at the run's ``wise_ft_weight`` (``w0``); ``reweight`` moves it
to another weight exactly (``base + w / w0 * (saved - base)``), so each weight's model is the same fine-tuning
averaged at that weight. Every such model ranks the whole codebase for ``cosqa-heldout`` and dev-500, and is paired
with the saved row (its per-query ranks from the run) by a bootstrap over queries. One caveat: a row that learns from
a teacher (the default's trained-model weighter) keeps the teacher the run trained, averaged at ``w0``.

The rule, written before the runs: the weight whose **default row** has the highest MRR@1000 on ``cosqa-heldout``;
the run's own weight is kept unless another beats it by more than 0.002. dev-500 is reported only. Each (row,
weight) is written to ``OUTPUT/rows/`` as it finishes; a re-run skips the finished ones.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RULE = ("the weight whose default row has the highest cosqa-heldout MRR@1000; the run's own weight unless another "
        "beats it by more than 0.002")
TIE = 0.002


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="runs/main", help="a finished main-job folder (its results.json)")
    parser.add_argument("--weights", type=float, nargs="+", default=[1.0, 0.5])
    parser.add_argument("--rows", nargs="+", help="rows to re-weight (default: the default row first, then the rest)")
    parser.add_argument("--output-dir", default="benchmarks/results/wise_ft_quick")
    args = parser.parse_args()

    from hf_softnce.training.comparison import BASE_ROW, rank_metrics, reciprocal_ranks
    from hf_softnce.training.data import DEV, HELDOUT
    from hf_softnce.training.main_job import _load_data, make_plan
    from hf_softnce.training.manifest import completed
    from hf_softnce.training.models import load_model
    from hf_softnce.training.plan import DEFAULT_ROW, run_slug
    from hf_softnce.training.run import evaluate_model
    from hf_softnce.training.wise_ft import reweight
    from hf_softnce.evaluation.bootstrap import RECIPROCAL_RANKS, PairedBootstrap

    run_dir, out = Path(args.run_dir), Path(args.output_dir)
    (out / "rows").mkdir(parents=True, exist_ok=True)
    run = json.loads((run_dir / "results.json").read_text())
    saved_weight, seed = run["settings"]["wise_ft_weight"], run["seeds"][0]
    if not saved_weight:
        raise SystemExit(f"{run_dir}/results.json: wise_ft_weight is {saved_weight!r}; nothing to move from.")
    rows = args.rows or sorted((r for r in run["seeds_by_row"] if r != BASE_ROW and (run_dir / run_slug(r)).is_dir()),
                               key=lambda r: r != DEFAULT_ROW)
    # The run's own base model and data (a run with model=... or cosqa_dir=... overrides them).
    same = {k: run["settings"][k] for k in ("model", "cosqa_dir", "max_seq_length") if run["settings"].get(k)}
    data, base_config = _load_data(make_plan(run["size"], overrides=same).base)
    base = load_model(base_config.model)

    saved_ranks = {row: completed(run_dir / run_slug(row) / f"seed-{seed}")["per_query"] for row in rows}
    results = {row: {saved_weight: saved_ranks[row]} for row in rows}
    for row in rows:
        for weight in args.weights:
            path = out / "rows" / f"{run_slug(row)}-w{weight}.json"
            if not path.exists():
                model = load_model(str(run_dir / run_slug(row) / f"seed-{seed}" / "final"))
                reweight(model, base, saved_weight, weight)
                per_query: dict = {}
                evaluate_model(model, data, per_query=per_query)
                path.write_text(json.dumps(per_query))
                print(f"{row} at WiSE-FT {weight}: " + ", ".join(
                    f"{name} {rank_metrics([per_query[name]])['mrr@1000']:.4f}" for name in (HELDOUT, DEV)))
            results[row][weight] = json.loads(path.read_text())

    table, lines = {}, [
        f"WiSE-FT weight of `{run_dir}` ({run['size']} size, seed {seed}, saved at {saved_weight}), moved without "
        f"training again; Δ = paired difference in MRR@1000 against the saved weight, 95% bootstrap interval over "
        f"queries, the whole codebase. Rule: {RULE}.", "",
        "| row | WiSE-FT weight | cosqa-heldout MRR | Δ vs saved | dev-500 MRR | Δ vs saved |",
        "|---|---|---|---|---|---|"]
    for row in rows:
        table[row] = {}
        for weight in sorted(results[row], reverse=True):
            entry, cells = {}, []
            for name in (HELDOUT, DEV):
                ranks, saved = results[row][weight][name], results[row][saved_weight][name]
                mrr = rank_metrics([ranks])["mrr@1000"]
                boot = PairedBootstrap(sorted(saved), n_resamples=2000, seed=0)
                difference = boot.difference(reciprocal_ranks([ranks]), reciprocal_ranks([saved]),
                                             given=RECIPROCAL_RANKS)
                entry[name] = {"mrr@1000": mrr, "vs_saved": [difference.value, difference.low, difference.high]}
                cells += [f"{mrr:.4f}", "–" if weight == saved_weight else
                          f"{difference.value:+.4f} [{difference.low:+.3f}, {difference.high:+.3f}]"]
            table[row][str(weight)] = entry
            lines.append(f"| {row} | {weight}{' (saved)' if weight == saved_weight else ''} | " + " | ".join(cells)
                         + " |")
    chosen = saved_weight
    if DEFAULT_ROW in table:
        heldout = {float(w): e[HELDOUT]["mrr@1000"] for w, e in table[DEFAULT_ROW].items()}
        best = max(heldout, key=heldout.get)
        chosen = best if heldout[best] > heldout[saved_weight] + TIE else saved_weight
        lines += ["", f"Chosen by the rule: **{chosen}**."]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps(
        {"run_dir": str(run_dir), "size": run["size"], "seed": seed, "saved_weight": saved_weight, "rule": RULE,
         "rows": table, "chosen": chosen}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
