"""The weight of the cascade's ranker score under ``combine="add"``, chosen on ``cosqa-heldout``; nothing is trained.

    python -m benchmarks.cascade_weights --run runs/cf7/seed42 --seed 42 --output-dir runs/cascade_weights
    python -m benchmarks.cascade_full --combine runs/cascade_weights/seed-42/results.json \
        runs/cascade_weights/seed-43/results.json --output runs/cascade_weights/results.json

``--run`` is a ``benchmarks.cascade_full`` output folder of that seed: its retriever
(``rows/<retriever>/seed-N/final``), its trained ranker (``cascade/r2ps-ranker/seed-N/final``) and ``results.json``
(the rows' and the cascade's per-query ranks). R2PS adds the ranker's ``tanh(logit)`` to the retriever's cosine
with weight 1 (on CoSQA); here the weight is a setting of the main job's grid (``cascade_row.CASCADE_GRID``), chosen
as the main job chooses (``hf_softnce.evaluation.choose_cascade_setting``): on ``cosqa-heldout`` by MRR, the
retriever alone tried first so that a tie keeps it.
dev-500 is evaluated once, with the chosen setting.

``results.json`` holds the run's rows, its cascade at weight 1 (:func:`at_one`) and the cascade at the chosen weight
(the run's cascade row name), so ``benchmarks.against_row`` pairs either with the retriever or with each other.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.against_row import pair_against
from benchmarks.cascade_full import RETRIEVERS, cascade_name, plan_settings
from hf_softnce.evaluation import choose_cascade_setting, evaluate_cascade
from hf_softnce.training.cascade_row import CASCADE_GRID, CASCADE_WEIGHTS, memoized_predict
from hf_softnce.training.data import load_task_data
from hf_softnce.training.main_job import make_plan
from hf_softnce.training.models import load_model
from hf_softnce.training.plan import run_slug


def at_one(cascade: str) -> str:
    return f"{cascade}, weight 1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a benchmarks.cascade_full output folder of --seed")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--output-dir", default="runs/cascade_weights")
    args = parser.parse_args()
    from sentence_transformers import CrossEncoder

    from hf_softnce.retrieval import RetrieverRanker

    run_dir, seed = Path(args.run), args.seed
    run = json.loads((run_dir / "results.json").read_text())
    if run["seed"] != seed:
        raise SystemExit(f"{run_dir}/results.json is seed {run['seed']}, not --seed {seed}")
    name, settings = run["retriever"], run["ranker_settings"]
    cascade_row = cascade_name(name)
    retriever_dir = run_dir / "rows" / run_slug(name) / f"seed-{seed}" / "final"
    base = make_plan("full", [seed], list(RETRIEVERS), plan_settings(settings, retriever_dir)).base
    data = load_task_data(base)  # the main job's held-out and dev queries over the whole codebase
    ranker = CrossEncoder(str(run_dir / "cascade" / "r2ps-ranker" / f"seed-{seed}" / "final"))
    ranker.predict = memoized_predict(ranker.predict)  # every setting re-scores a prefix of the same top 20
    deepest = max(k for k, _, _ in CASCADE_GRID)
    cascade = RetrieverRanker(load_model(str(retriever_dir)), ranker, top_k=deepest, combine="add", cache=False)

    def report(top_k, combine, weight, mrr):
        print(f"seed {seed} cosqa-heldout top_k={top_k} combine={combine} weight={weight}: {mrr:.4f}")

    choice = choose_cascade_setting(cascade, data.real_select, CASCADE_GRID, show_progress_bar=False,
                                    on_setting=report)
    print(f"seed {seed}: chosen on cosqa-heldout top_k={choice['top_k']} combine={choice['combine']} "
          f"weight={choice['ranker_weight']}")

    ranks = {}
    for set_name, retrieval_set in (("cosqa-heldout", data.real_select), ("cosqa-dev", data.real_report)):
        per_query: dict = {}
        evaluate_cascade(cascade, retrieval_set, per_query=per_query, show_progress_bar=False)
        # top_k 0: the retriever row's own ranks, as the main job keeps them (cascade_ranks)
        ranks[set_name] = per_query["cascade"] if choice["top_k"] else run["per_query_ranks"][name][-1][set_name]
    rows = {row: r for row, r in run["per_query_ranks"].items() if row != cascade_row}
    settings = {**settings, "ranker_weight": list(CASCADE_WEIGHTS)}
    result = {"rows": run["rows"], "retriever": name, "ranker_settings": settings,
              # not timed: the grid scores each pair once (a memo); the run's own latency is at its own top_k
              "seed": seed, "cascade_choice": choice, "latency_ms_per_query": {},
              "per_query_ranks": {**rows, at_one(cascade_row): run["per_query_ranks"][cascade_row],
                                  cascade_row: [ranks]}}
    out = Path(args.output_dir) / f"seed-{seed}"
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    path.write_text(json.dumps(result, indent=1))
    pair_against(path, name)


if __name__ == "__main__":
    main()
