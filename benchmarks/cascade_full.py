"""The full size's R2PS cascade over a chosen retriever, paired with that retriever.

    python -m benchmarks.cascade_full --output-dir runs/cascade_full --seed 42
    python -m benchmarks.cascade_full --retriever InfoNCE --set ranker_negatives=7 --output-dir runs/cf7 --seed 42
    python -m benchmarks.cascade_full --retriever InfoNCE --set ranker_model=retriever --output-dir runs/cfr --seed 42

The main job's cascade re-ranks the InfoNCE retriever with the plan's ranker settings. This one re-ranks the
retriever named by ``--retriever`` (default: the full table's default row, SoftInfoNCE (trained model) + mined
negatives, its strongest retriever), with the plan's ranker settings (the full size's: R2PS's released head, an epoch,
3 negatives drawn from the retriever's own ranking) changed only where ``--set ranker_...=...`` says, and the main
job's own choice of ``top_k`` and ``combine`` on ``cosqa-heldout``. Nothing else is chosen here.
``ranker_model=retriever`` starts the ranker from the retriever it re-ranks (that seed's trained model) instead of
the base model.

Steps, each resumable: the main job at the full size for InfoNCE (the default row's teacher) and the default row, in
``<output-dir>/rows`` (a folder holding them already, e.g. a link to an earlier run's ``rows``, is read back); the
cascade over the retriever's model, in ``<output-dir>/cascade``; then ``results.json`` in the main job's format with
the rows' per-query ranks, and ``benchmarks.against_row`` pairs the cascade with its retriever
(``results_vs_<retriever>.{md,json}``). Seeds run one per folder; ``--combine`` puts their ``results.json`` side by
side (each row's seeds, as the main job holds them) and pairs the per-query averages:

    python -m benchmarks.cascade_full --combine runs/cf42/results.json runs/cf43/results.json \
        --output runs/cascade_full.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.against_row import pair_against
from hf_softnce.training.cascade_row import run_cascade
from hf_softnce.training.comparison import BASE_ROW
from hf_softnce.training.config import parse_override
from hf_softnce.training.data import load_task_data
from hf_softnce.training.main_job import cascade_ranks, make_plan, run_main_job
from hf_softnce.training.manifest import completed, mark_complete
from hf_softnce.training.plan import DEFAULT_ROW, run_slug
from hf_softnce.training.report import setting_line

RETRIEVERS = ("InfoNCE", DEFAULT_ROW)  # the main job rows trained here, the default row after its teacher
# ``--set ranker_model=retriever``: the ranker starts from the seed's own retriever, a model already fine-tuned on
# CoSQA's pairs (R2PS starts its ranker from a code-pretrained model, which this machine cannot download)
FROM_RETRIEVER = "retriever"


def cascade_name(retriever: str) -> str:
    return f"R2PS cascade ({retriever} -> ranker)"


CASCADE = cascade_name(DEFAULT_ROW)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default="runs/cascade_full")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--retriever", choices=RETRIEVERS, default=DEFAULT_ROW, help="the row the ranker re-ranks")
    parser.add_argument("--set", action="append", default=[], metavar="RANKER_KEY=VALUE",
                        help="a ranker setting changed from the plan's (ranker_negatives=7); repeatable")
    parser.add_argument("--combine", nargs="+", metavar="RESULTS_JSON", help="seeds' results.json to put together")
    parser.add_argument("--output", default="runs/cascade_full.json", help="--combine's results.json")
    args = parser.parse_args()
    if args.combine:
        return combine([Path(path) for path in args.combine], Path(args.output))
    ranker_settings = dict(map(parse_override, args.set))
    if not all(name.startswith("ranker_") for name in ranker_settings):
        # the rows are the main job's own: a setting of theirs changed here would pair the cascade with another run
        parser.error(f"--set takes ranker settings only (ranker_...), got {sorted(ranker_settings)}")
    out, seed, methods, name = Path(args.output_dir), args.seed, list(RETRIEVERS), args.retriever
    cascade = cascade_name(name)

    payload = run_main_job("full", out / "rows", seeds=[seed], methods=methods)
    retriever = out / "rows" / run_slug(name) / f"seed-{seed}" / "final"
    folder = out / "cascade" / f"seed-{seed}"
    saved = completed(folder)
    if saved is None:
        base = make_plan("full", [seed], methods, plan_settings(ranker_settings, retriever)).base
        data = load_task_data(base)  # the main job's data: the same training pairs, held-out and dev queries
        per_query, latency, choice = run_cascade(base, data, seed, str(retriever), out / "cascade", cascade,
                                                   retriever_name=name)
        saved = {"per_query": per_query, "latency": latency, "choice": choice, "ranker_settings": ranker_settings}
        mark_complete(folder, saved)
    if saved.get("ranker_settings", {}) != ranker_settings:
        raise SystemExit(f"{folder} holds a cascade trained with {saved.get('ranker_settings', {})}, not "
                         f"{ranker_settings}: give another --output-dir")
    choice = saved["choice"]
    print(f"{cascade} seed {seed}: {setting_line(choice)}")

    ranks = cascade_ranks(saved, payload["per_query_ranks"][name][-1])
    result = {"rows": methods, "retriever": name, "ranker_settings": ranker_settings, "seed": seed,
              "cascade_choice": choice, "latency_ms_per_query": saved["latency"],
              "per_query_ranks": {**payload["per_query_ranks"], cascade: [ranks]}}
    path = out / "results.json"
    path.write_text(json.dumps(result, indent=1))
    pair_against(path, name)


def plan_settings(ranker_settings: dict, retriever: Path) -> dict:
    """The ranker settings the plan trains with: ``ranker_model=retriever`` becomes the retriever's folder. The run
    folder keeps the word (``ranker_settings``), so a seed's folder is compared with the command, not a path."""
    if ranker_settings.get("ranker_model") == FROM_RETRIEVER:
        return {**ranker_settings, "ranker_model": str(retriever)}
    return ranker_settings


def combine(paths: list[Path], output: Path) -> None:
    """One ``results.json`` holding every seed's per-query ranks (a row's list, seed by seed; the zero-shot base
    once), so that ``against_row`` pairs the per-query averages over the seeds."""
    runs = [json.loads(path.read_text()) for path in paths]
    seeds = [run["seed"] for run in runs]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"--combine: seeds {seeds} repeat; give each seed's results.json once")
    setups = {(run.get("retriever", DEFAULT_ROW), json.dumps(run.get("ranker_settings", {}), sort_keys=True))
              for run in runs}
    if len(setups) > 1:
        raise SystemExit(f"--combine: the runs differ in retriever or ranker settings {sorted(setups)}")
    ranks = {row: [r for run in runs for r in run["per_query_ranks"][row]] for row in runs[0]["per_query_ranks"]}
    ranks[BASE_ROW] = runs[0]["per_query_ranks"][BASE_ROW]
    output.parent.mkdir(parents=True, exist_ok=True)
    retriever = runs[0].get("retriever", DEFAULT_ROW)  # the first runs of this benchmark re-ranked the default row
    output.write_text(json.dumps({"rows": runs[0]["rows"], "retriever": retriever,
                                  "ranker_settings": runs[0].get("ranker_settings", {}), "seeds": seeds,
                                  "cascade_choices": [run["cascade_choice"] for run in runs],
                                  "latency_ms_per_query": [run["latency_ms_per_query"] for run in runs],
                                  "per_query_ranks": ranks}, indent=1))
    pair_against(output, retriever)


if __name__ == "__main__":
    main()
