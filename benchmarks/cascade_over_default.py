"""The R2PS cascade over the default retriever at the full size, paired with that retriever.

    python -m benchmarks.cascade_over_default --output-dir runs/cascade_over_default --seed 42

The main job's cascade re-ranks the InfoNCE retriever. This one re-ranks the full table's default row
(SoftInfoNCE (trained model) + mined negatives), its strongest retriever, with the plan's own ranker settings (the
full size's: R2PS's released head, an epoch, 3 negatives drawn from the retriever's own ranking) and the main job's
own choice of ``top_k`` and ``combine`` on ``cosqa-heldout``. Nothing else is chosen here.

Steps, each resumable: the main job at the full size for InfoNCE (the default row's teacher) and the default row, in
``<output-dir>/rows``; the cascade over the default row's model, in ``<output-dir>/cascade``; then ``results.json``
in the main job's format with both rows' per-query ranks, and ``benchmarks.against_row`` pairs the cascade with the
default row (``results_vs_<default row>.{md,json}``). Seeds run one per folder; ``--combine`` puts their
``results.json`` side by side (each row's seeds, as the main job holds them) and pairs the per-query averages:

    python -m benchmarks.cascade_over_default --combine runs/cod42/results.json runs/cod43/results.json \
        --output runs/cascade_over_default.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.against_row import pair_against
from hf_softnce.training.cascade_row import run_cascade
from hf_softnce.training.comparison import BASE_ROW
from hf_softnce.training.data import load_task_data
from hf_softnce.training.main_job import cascade_ranks, make_plan, run_main_job
from hf_softnce.training.manifest import completed, mark_complete
from hf_softnce.training.plan import DEFAULT_ROW, run_slug

CASCADE = f"R2PS cascade ({DEFAULT_ROW} -> ranker)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default="runs/cascade_over_default")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--combine", nargs="+", metavar="RESULTS_JSON", help="seeds' results.json to put together")
    parser.add_argument("--output", default="runs/cascade_over_default.json", help="--combine's results.json")
    args = parser.parse_args()
    if args.combine:
        return combine([Path(path) for path in args.combine], Path(args.output))
    out, seed, methods = Path(args.output_dir), args.seed, ["InfoNCE", DEFAULT_ROW]

    payload = run_main_job("full", out / "rows", seeds=[seed], methods=methods)
    retriever = out / "rows" / run_slug(DEFAULT_ROW) / f"seed-{seed}" / "final"
    folder = out / "cascade" / f"seed-{seed}"
    saved = completed(folder)
    if saved is None:
        plan = make_plan("full", [seed], methods)
        data = load_task_data(plan.base)  # the main job's data: the same training pairs, held-out and dev queries
        per_query, latency, choice = run_cascade(plan.base, data, seed, str(retriever), out / "cascade", CASCADE,
                                                   retriever_name=DEFAULT_ROW)
        saved = {"per_query": per_query, "latency": latency, "choice": choice}
        mark_complete(folder, saved)
    choice = saved["choice"]
    print(f"{CASCADE} seed {seed}: top_k={choice['top_k']}, combine={choice['combine']} (chosen on cosqa-heldout)")

    ranks = cascade_ranks(saved, payload["per_query_ranks"][DEFAULT_ROW][-1])
    result = {"rows": methods, "seed": seed, "cascade_choice": choice, "latency_ms_per_query": saved["latency"],
              "per_query_ranks": {**payload["per_query_ranks"], CASCADE: [ranks]}}
    path = out / "results.json"
    path.write_text(json.dumps(result, indent=1))
    pair_with_default_row(path)


def combine(paths: list[Path], output: Path) -> None:
    """One ``results.json`` holding every seed's per-query ranks (a row's list, seed by seed; the zero-shot base
    once), so that ``against_row`` pairs the per-query averages over the seeds."""
    runs = [json.loads(path.read_text()) for path in paths]
    seeds = [run["seed"] for run in runs]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"--combine: seeds {seeds} repeat; give each seed's results.json once")
    ranks = {row: [r for run in runs for r in run["per_query_ranks"][row]] for row in runs[0]["per_query_ranks"]}
    ranks[BASE_ROW] = runs[0]["per_query_ranks"][BASE_ROW]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"rows": runs[0]["rows"], "seeds": seeds,
                                  "cascade_choices": [run["cascade_choice"] for run in runs],
                                  "latency_ms_per_query": [run["latency_ms_per_query"] for run in runs],
                                  "per_query_ranks": ranks}, indent=1))
    pair_with_default_row(output)


def pair_with_default_row(path: Path) -> None:
    pair_against(path, DEFAULT_ROW)


if __name__ == "__main__":
    main()
